"""Run Alembic migrations from code (CLI, tests, readiness checks)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % specially; URLs with escaped passwords contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(database_url), revision)


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    """The migrations this code has (read once: they do not change while it runs)."""
    return ScriptDirectory(str(MIGRATIONS_DIR))


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions the connected database is at (none before its first migration)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def unknown_revisions(connection: Connection) -> list[str]:
    """Revisions the connected database is at that this code has no migration for: a newer
    Rapport migrated it (and the code was rolled back since)."""
    script = _script()
    known = {revision.revision for revision in script.walk_revisions()}
    return [revision for revision in current_revisions(connection) if revision not in known]


def schema_problem(connection: Connection) -> tuple[str, str] | None:
    """Why this code cannot use the connected database's schema, and what to do about it;
    ``None`` where the schema is the one it expects (every migration it has applied)."""
    unknown = unknown_revisions(connection)
    if unknown:
        return (
            f"The database was migrated by a newer Rapport (revision {', '.join(unknown)} is"
            " unknown to this version).",
            "Run that version of Rapport, or restore the backup taken before the upgrade.",
        )
    pending = pending_migrations(connection)
    if pending:
        return f"{len(pending)} migration(s) pending.", "Run: rapport migrate"
    return None


def behind(connection: Connection, revision: str) -> bool:
    """Whether ``revision`` is older than the revision the connected database is at, so that
    reaching it would mean a downgrade (``False`` for one this code does not know)."""
    current = current_revisions(connection)
    if not current or revision in ("head", "heads"):
        return False
    if revision == "base":
        return True
    script = _script()
    try:
        target = script.get_revision(revision)
    except Exception:  # unknown or ambiguous: ``upgrade`` says what is wrong with it
        return False
    if target is None or target.revision in current:
        return False
    return any(
        target.revision
        in {ancestor.revision for ancestor in script.iterate_revisions(head, "base")}
        for head in current
        if head is not None
    )


def pending_migrations(connection: Connection) -> list[str]:
    """Revisions not yet applied to the connected database, oldest first."""
    script = _script()
    current = set(current_revisions(connection))
    heads = script.get_heads()
    if set(heads) == current:
        return []
    pending = []
    for revision in script.walk_revisions():
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return list(reversed(pending))
