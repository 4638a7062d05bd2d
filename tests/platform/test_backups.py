"""The backup and restore commands docs/operator-guide.md gives, run as written there."""

from __future__ import annotations

import re
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade
from tests.conftest import make_database_url, migrated_sqlite

GUIDE = (Path(__file__).parents[2] / "docs" / "operator-guide.md").read_text()


def _documented(start: str) -> str:
    """The one command of the guide that starts with ``start`` (a regular expression), as
    written between backticks on one line."""
    (command,) = set(re.findall(rf"`({start}[^`\n]*)`", GUIDE))
    return command


def _key_names(url: str) -> set[str]:
    with open_session(url) as db:
        return {key.name for key in platform.list_api_keys(db)}


def _add_key(url: str, name: str) -> None:
    with open_session(url) as db:
        platform.create_api_key(db, name=name, scopes=[platform.Scope.READ])


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="needs the sqlite3 command")
def test_the_documented_sqlite_restore_works_over_a_database_with_its_wal_left_behind(
    tmp_path: Path,
) -> None:
    # given a database, backed up as the guide says, then written to after the backup
    live = tmp_path / "live" / "rapport.db"
    live.parent.mkdir()
    url = migrated_sqlite(live)
    _add_key(url, "before the backup")
    backup_command = _documented(r'sqlite3 \S+rapport\.db "\.backup ')
    backup = tmp_path / "backup.db"
    subprocess.run(
        ["sqlite3", str(live), f".backup {backup}"], check=True, cwd=tmp_path, timeout=60
    )
    assert backup_command.startswith("sqlite3 ~/.local/share/rapport/rapport.db")
    # and, as a process killed mid-work leaves it, a rapport.db-wal holding later commits
    with closing(sqlite3.connect(live)) as connection:
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        _add_key(url, "after the backup")
        stopped = tmp_path / "stopped"
        stopped.mkdir()
        for suffix in ("", "-wal", "-shm"):
            shutil.copy(f"{live}{suffix}", stopped / f"rapport.db{suffix}")
    database = stopped / "rapport.db"
    assert (stopped / "rapport.db-wal").stat().st_size > 0
    # when it is restored with the documented command
    restore = shlex.split(_documented(r'sqlite3 \S+rapport\.db "\.restore '))
    restore[1], restore[2] = str(database), f".restore {backup}"
    subprocess.run(restore, check=True, timeout=60)
    # then the database is whole and holds what the backup held, nothing later
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _key_names(f"sqlite:///{database}") == {"before the backup"}


def _documented_restore() -> tuple[list[str], list[str]]:
    """The guide's PostgreSQL restore block: its ``dropdb && createdb`` line and its
    ``pg_restore`` line, each split as the shell would."""
    (block,) = re.findall(r"\*\*Restore\*\*.*?```sh\n(.*?)```", GUIDE, re.S)
    recreate, restore = [line.strip() for line in block.strip().splitlines()]
    return shlex.split(recreate), shlex.split(restore)


@pytest.mark.skipif(shutil.which("pg_restore") is None, reason="needs pg_dump and pg_restore")
def test_the_documented_postgresql_restore_works_on_a_new_database_and_over_the_old(
    tmp_path: Path,
) -> None:
    # given a database dumped as the guide says
    url, remove = make_database_url("postgresql", tmp_path)
    fresh, remove_fresh = make_database_url("postgresql", tmp_path)
    try:
        upgrade(url)
        _add_key(url, "before the backup")
        dump = shlex.split(_documented(r"pg_dump ").split(">")[0])
        dump[-1] = _libpq(url)
        backup = tmp_path / "rapport.dump"
        with backup.open("wb") as file:
            subprocess.run(dump, stdout=file, check=True, timeout=120)
        _add_key(url, "after the backup")
        recreate, restore = _documented_restore()
        assert recreate == ["dropdb", "rapport", "&&", "createdb", "-O", "rapport", "rapport"]
        assert restore[0] == "pg_restore"
        assert restore[-3:-1] == ["--dbname", "rapport"]
        assert "--clean" not in restore
        # when the old database is dropped and made again, as the guide says, and the dump
        # restored into it; and restored into a new, empty database
        parsed = make_url(url)
        bin_dir = Path(str(shutil.which("pg_restore"))).parent
        server = [
            "-h",
            str(parsed.host),
            "-p",
            str(parsed.port or 5432),
            "-U",
            str(parsed.username),
        ]
        owner = str(parsed.username)
        # --force, as the guide says for a connection left (this process's pool holds one)
        subprocess.run(
            [str(bin_dir / "dropdb"), "--force", *server, str(parsed.database)],
            check=True,
            timeout=60,
        )
        subprocess.run(
            [str(bin_dir / "createdb"), *server, "-O", owner, str(parsed.database)],
            check=True,
            timeout=60,
        )
        for target in (url, fresh):
            command = [f"--role={owner}" if part == "--role=rapport" else part for part in restore]
            command[-2:] = [_libpq(target), str(backup)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
            # then it succeeds, and the database holds what the dump held
            assert result.returncode == 0, result.stderr
            assert _key_names(target) == {"before the backup"}
    finally:
        remove_fresh()
        remove()


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the connection string pg_dump and pg_restore take."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _as_cron_runs(line: str) -> tuple[str, str]:
    """A crontab line's command and input as cron gives them to the shell: the first
    unescaped ``%`` ends the command (the rest is its input, each further ``%`` a new line)
    and ``\\%`` is a ``%`` (crontab(5))."""
    command = line.split(None, 5)[5]
    parts = re.split(r"(?<!\\)%", command)
    return parts[0].replace("\\%", "%"), "\n".join(parts[1:])


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="needs the sqlite3 command")
def test_the_documented_crontab_line_makes_a_dated_private_sqlite_backup(
    tmp_path: Path,
) -> None:
    # given a database where the guide keeps it, and the backup directory the guide names
    home = tmp_path / "home"
    (home / ".local/share/rapport").mkdir(parents=True)
    migrated_sqlite(home / ".local/share/rapport/rapport.db")
    _add_key(f"sqlite:///{home}/.local/share/rapport/rapport.db", "in the backup")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    (block,) = re.findall(r"```cron\n(.*?)```", GUIDE, re.S)
    (line,) = [line for line in block.splitlines() if "sqlite3" in line]
    line = line.replace("/var/backups/rapport", str(backups))
    # when cron runs it
    command, stdin = _as_cron_runs(line)
    subprocess.run(
        ["/bin/sh", "-c", command],
        input=stdin,
        text=True,
        check=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "SHELL": "/bin/sh"},
        timeout=60,
    )
    # then the day's backup is there, the owner's only, holding the database
    (backup,) = backups.iterdir()
    assert re.fullmatch(r"rapport-\d{4}-\d{2}-\d{2}\.db", backup.name)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert _key_names(f"sqlite:///{backup}") == {"in the backup"}
