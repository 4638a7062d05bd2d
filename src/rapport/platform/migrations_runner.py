"""Run Alembic migrations from code (CLI, tests, readiness checks)."""

from __future__ import annotations

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


def pending_migrations(connection: Connection) -> list[str]:
    """Revisions not yet applied to the connected database, oldest first."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    current = set(MigrationContext.configure(connection).get_current_heads())
    heads = script.get_heads()
    if set(heads) == current:
        return []
    pending = []
    for revision in script.walk_revisions():
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return list(reversed(pending))
