"""What ``rapport`` does with a database whose schema is not this version's, with settings and
ports it cannot use, and with the files it makes (docs/operator-guide.md)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.core import TyperGroup
from typer.testing import CliRunner, Result

from rapport.cli import app
from rapport.platform import jobs
from rapport.platform.db import create_db_engine, open_session
from rapport.platform.migrations_runner import current_revisions, upgrade
from rapport.platform.models import Job
from rapport.platform.settings import get_settings
from tests.conftest import make_database_url

runner = CliRunner()
OLDER = "c14000000001"  # before admin sign-in limits: later migrations are pending there
UNKNOWN = "f99999999999"  # a revision a newer Rapport would have made


@pytest.fixture
def database(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database of ``backend`` that ``rapport`` commands use."""
    url, remove = make_database_url(backend, tmp_path)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    remove()


def _rapport(*arguments: str) -> Result:
    return runner.invoke(app, list(arguments))


def _revisions(url: str) -> tuple[str, ...]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return current_revisions(connection)
    finally:
        engine.dispose()


def _set_revision(url: str, revision: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


@contextmanager
def _taken_port() -> Iterator[int]:
    """A port another program listens on, on 127.0.0.1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def _said(result: Result) -> str:
    return " ".join((result.stdout + result.stderr).split())


def test_worker_refuses_a_database_with_migrations_pending_as_serve_does(database) -> None:
    # given a database an older Rapport migrated
    upgrade(database, OLDER)
    # when the worker runs what is due, and serve starts
    worker = _rapport("worker", "--once")
    with _taken_port() as port:  # were it not refused, it would stop here, not serve
        serve = _rapport("serve", "--port", str(port))
    # then both refuse, the same way, saying to migrate, and nothing ran
    for result in (worker, serve):
        assert result.exit_code == 2, _said(result)
        assert "migration(s) pending. Run: rapport migrate" in _said(result)
        # on stderr, as every refusal, with nothing on stdout
        assert "migration(s) pending" in " ".join(result.stderr.split())
        assert result.stdout == ""
        assert "Ran" not in _said(result)
    # and once migrated, the worker runs
    assert _rapport("migrate").exit_code == 0
    ran = _rapport("worker", "--once")
    assert ran.exit_code == 0, _said(ran)
    assert "Ran " in ran.stdout


def test_a_database_migrated_by_a_newer_rapport_is_named_as_such(database) -> None:
    # given a database a newer Rapport migrated (a revision this code does not know)
    upgrade(database)
    _set_revision(database, UNKNOWN)
    # when serve, the worker and migrate meet it
    for arguments in (("serve",), ("worker", "--once"), ("migrate",)):
        with _taken_port() as port:
            result = _rapport(
                *arguments, *(["--port", str(port)] if arguments[0] == "serve" else [])
            )
        # then each says a newer Rapport migrated it and what to do, not that migrations
        # are pending, and changes nothing
        said = _said(result)
        assert result.exit_code == 2, said
        assert f"migrated by a newer Rapport (revision {UNKNOWN} is unknown" in said, said
        assert "restore the backup" in said
        assert "pending" not in said
        assert "migrated by a newer Rapport" in " ".join(result.stderr.split())
        assert "newer Rapport" not in result.stdout
        assert "Traceback" not in said
    assert _revisions(database) == (UNKNOWN,)


KEY_COMMANDS = (
    ("keys", "list"),
    ("keys", "create", "shop", "--scope", "read"),
    ("keys", "limit", "key_x", "10/second"),
    ("keys", "orders-from-tracking", "key_x", "off"),
    ("keys", "revoke", "key_x"),
)


def _count(url: str, table: str) -> int:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_keys_commands_refuse_a_database_whose_schema_is_not_this_versions(database) -> None:
    # given a database an older Rapport migrated
    upgrade(database, OLDER)
    # when the keys commands meet it, then each refuses as serve does, saying to migrate
    for arguments in KEY_COMMANDS:
        result = _rapport(*arguments)
        said = _said(result)
        assert result.exit_code == 2, said
        assert "migration(s) pending. Run: rapport migrate" in said, said
    # given one a newer Rapport migrated, then each says so and what to do, making no key
    upgrade(database)
    _set_revision(database, UNKNOWN)
    for arguments in KEY_COMMANDS:
        result = _rapport(*arguments)
        said = _said(result)
        assert result.exit_code == 2, said
        assert f"migrated by a newer Rapport (revision {UNKNOWN} is unknown" in said, said
        assert "Created key" not in said
    assert _count(database, "api_keys") == 0


# Every other command that opens the database (a file argument names one in tmp_path).
DATABASE_COMMANDS = (
    ("admin", "create", "ops@example.org", "--password", "a-long-password-1"),
    ("admin", "set-password", "ops@example.org", "--password", "a-long-password-2"),
    ("admin", "unlock", "ops@example.org"),
    ("import", "products", "{csv}"),
    ("import", "customers", "{csv}"),
    ("import", "transactions", "{csv}", "--currency", "EUR"),
    ("fit-customer-value",),
    ("recommend", "train"),
    ("recommend", "versions"),
    ("events", "held"),
    ("events", "retry"),
    ("events", "skip", "evt_x"),
)
# Those that must run on such a database: they migrate it (or say it is a newer one's).
MIGRATING_COMMANDS = {("migrate",), ("init",), ("demo",)}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The paths of every command under ``command`` (a group's subcommands, or itself)."""
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path


def test_every_command_is_checked_for_the_schema_or_migrates_it() -> None:
    # given every rapport command, then each is one checked below, a keys one, or one that
    # migrates: a new command is added to one of the lists
    checked = {
        arguments[:2]
        if arguments[0] in ("admin", "import", "recommend", "events", "keys")
        else arguments[:1]
        for arguments in (*DATABASE_COMMANDS, *KEY_COMMANDS)
    }
    checked |= MIGRATING_COMMANDS | {("serve",), ("worker",)}
    assert set(_commands(typer.main.get_command(app))) == checked


def test_commands_that_open_the_database_refuse_one_whose_schema_is_not_this_versions(
    database, tmp_path: Path
) -> None:
    # given a database an older Rapport migrated, and a catalogue file
    csv = tmp_path / "products.csv"
    csv.write_text("sku,name,price,currency\nSKU-1,Mug,9.90,EUR\n")
    commands = [[a.format(csv=csv) for a in arguments] for arguments in DATABASE_COMMANDS]
    upgrade(database, OLDER)
    # when each command meets it, then each refuses as serve does, saying to migrate
    for arguments in commands:
        result = _rapport(*arguments)
        said = _said(result)
        assert result.exit_code == 2, (arguments, said)
        assert "migration(s) pending. Run: rapport migrate" in said, (arguments, said)
    # given one a newer Rapport migrated, then each says so and what to do, writing nothing
    upgrade(database)
    _set_revision(database, UNKNOWN)
    for arguments in commands:
        result = _rapport(*arguments)
        said = _said(result)
        assert result.exit_code == 2, (arguments, said)
        assert f"migrated by a newer Rapport (revision {UNKNOWN} is unknown" in said, said
    assert _count(database, "admin_users") == 0
    assert _count(database, "products") == 0


def test_migrate_says_the_revision_the_database_is_at_and_never_downgrades(database) -> None:
    # given a database migrated to an older revision
    older = _rapport("migrate", "--revision", OLDER)
    assert older.exit_code == 0, _said(older)
    assert f"is at revision {OLDER}." in _said(older)
    # when it is migrated to head, then the revision it is at is printed, not "head"
    head = _rapport("migrate")
    assert head.exit_code == 0, _said(head)
    (at,) = _revisions(database)
    assert at != OLDER
    assert f"is at revision {at}." in _said(head)
    # when an older revision is asked for, then it is refused with what to do instead
    refused = _rapport("migrate", "--revision", OLDER)
    said = _said(refused)
    assert refused.exit_code == 2, said
    assert f"is at revision {at}, after {OLDER}: rapport migrate only upgrades" in said
    assert f"alembic downgrade {OLDER}" in said
    assert _revisions(database) == (at,)
    # and asking for the revision it is at changes nothing
    again = _rapport("migrate", "--revision", at)
    assert again.exit_code == 0, _said(again)
    assert f"is at revision {at}." in _said(again)


def test_a_worker_stops_taking_jobs_when_the_schema_changes_under_it(database) -> None:
    from rapport.domains import load_tasks

    load_tasks()
    # given a worker on a current database, with a job queued
    upgrade(database)
    with open_session(database) as db:
        job_id = jobs.enqueue(db, kind="platform.prune_finished_jobs", payload={}).id
        db.commit()
    worker = jobs.Worker(database_url=database)
    # when a newer Rapport migrates the database under it
    _set_revision(database, UNKNOWN)
    # then it takes no job: the queued one is still queued, never tried
    assert worker.tick() == 0
    with open_session(database) as db:
        job = db.get(Job, job_id)
        assert job is not None
        assert (job.status, job.attempts) == ("queued", 0)


@pytest.mark.parametrize("variable", ["RAPPORT_API_RATE_LIMIT", "RAPPORT_COUPON_RATE_LIMIT"])
def test_a_bad_rate_limit_setting_is_named(database, monkeypatch, variable) -> None:
    # given a migrated database and a rate limit that is none
    upgrade(database)
    monkeypatch.setenv(variable, "lots")
    get_settings.cache_clear()
    # when serve starts, then it refuses naming the setting and what to do
    result = _rapport("serve", "--port", str(_free_port()))
    said = _said(result)
    assert result.exit_code != 0, said
    assert f"A setting is wrong: {variable}: 'lots' is not a rate limit" in said
    assert "Correct it in the environment" in said


@pytest.mark.parametrize("storage", ["bogus://x", "memcached", "redis:6379"])
def test_a_bad_rate_limit_storage_is_named_with_the_forms_taken(
    database, monkeypatch, storage
) -> None:
    # given a migrated database and a rate-limit storage that is none
    upgrade(database)
    monkeypatch.setenv("RAPPORT_RATE_LIMIT_STORAGE", storage)
    get_settings.cache_clear()
    # when serve starts, then it refuses naming the setting and the forms it takes
    result = _rapport("serve", "--port", str(_free_port()))
    said = _said(result)
    assert result.exit_code == 2, said
    assert (
        f"A setting is wrong: RAPPORT_RATE_LIMIT_STORAGE: {storage!r} is not a rate-limit storage"
        in said
    )
    assert "redis://host:6379" in said
    assert "memcached://host:11211" in said
    assert "Value error" not in said
    assert "Unexpected" not in said
    assert "Correct it in the environment" in said


def test_a_public_base_url_that_is_no_url_is_named_with_what_to_write(
    database, monkeypatch
) -> None:
    # given a public address that is no URL
    monkeypatch.setenv("RAPPORT_PUBLIC_BASE_URL", "notaurl")
    get_settings.cache_clear()
    # when a command reads the settings, then it refuses naming the setting and an example
    result = _rapport("keys", "list")
    said = _said(result)
    assert result.exit_code == 2, said
    assert (
        "A setting is wrong: RAPPORT_PUBLIC_BASE_URL: 'notaurl' is not an absolute http(s) URL"
        in said
    )
    assert "such as https://shop.example.com" in said
    assert "Value error" not in said


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_on_a_port_in_use_says_so_at_once(database) -> None:
    # given a migrated database and a port another program listens on
    upgrade(database)
    with _taken_port() as port:
        # when serve is started on it with one process
        result = _rapport("serve", "--host", "127.0.0.1", "--port", str(port))
    # then it says so and what to do, exit code 1, as with --processes N
    said = _said(result)
    assert result.exit_code == 1, said
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in said
    assert "choose another --port" in said


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://rapport:s3cret@127.0.0.1/rapport", "mysql://u:p@db/rapport"]
)
def test_a_database_url_with_a_driver_not_installed_says_what_to_set(
    tmp_path, monkeypatch, url
) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = _rapport("keys", "list")
    finally:
        get_settings.cache_clear()
    said = _said(result)
    assert result.exit_code == 1, said
    assert "RAPPORT_DATABASE_URL is not a database URL Rapport can use" in said
    assert "postgresql+psycopg://" in said
    assert "Unexpected" not in said
    assert "s3cret" not in said


def test_init_makes_the_data_directory_and_database_readable_by_their_owner_only(
    tmp_path, monkeypatch
) -> None:
    # given a data directory not there yet, and the default (embedded) database
    data = tmp_path / "new" / "rapport"
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(data))
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    previous = os.umask(0o022)
    get_settings.cache_clear()
    try:
        # when rapport init makes them
        result = _rapport("init")
    finally:
        os.umask(previous)
        get_settings.cache_clear()
    assert result.exit_code == 0, _said(result)

    # then the directory, the database and its WAL are the owner's only, like the secrets
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data) == 0o700
    database = data / "rapport.db"
    files = [database, data / "first-run-credentials"]
    others = ("rapport.db-wal", "rapport.db-shm", "secret_key")
    files += [data / name for name in others if (data / name).exists()]
    assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}


@pytest.mark.parametrize("command", ["create", "set-password"])
def test_admin_password_commands_refuse_a_wrong_schema_before_asking_for_the_password(
    database, command: str
) -> None:
    # given a database an older Rapport migrated
    upgrade(database, OLDER)
    # when an admin password command is run without --password
    result = runner.invoke(app, ["admin", command, "ops@example.org"], input="pw\npw\n")
    # then it refuses at once, never asking for a password nobody could set
    said = _said(result)
    assert result.exit_code == 2, said
    assert "migration(s) pending. Run: rapport migrate" in said, said
    assert "Password" not in said, said


def test_admin_create_asks_for_the_password_twice_once_the_schema_is_right(database) -> None:
    # given a migrated database
    upgrade(database)
    # when an admin is created without --password, then the password is asked for twice
    result = runner.invoke(
        app, ["admin", "create", "ops@example.org"], input="a-long-password-1\na-long-password-1\n"
    )
    said = _said(result)
    assert result.exit_code == 0, said
    assert "Password: Repeat for confirmation:" in said, said
    assert "a-long-password-1" not in said
    assert _count(database, "admin_users") == 1


@pytest.mark.parametrize(
    ("command", "email", "refusal"),
    [
        ("create", "ops@example.org", "An admin user ops@example.org already exists"),
        ("set-password", "nobody@example.org", "No admin user nobody@example.org"),
    ],
)
def test_admin_password_commands_refuse_the_user_before_asking_for_the_password(
    database, command: str, email: str, refusal: str
) -> None:
    # given a migrated database with one admin user, ops@example.org
    upgrade(database)
    made = runner.invoke(
        app, ["admin", "create", "ops@example.org", "--password", "a-long-password-1"]
    )
    assert made.exit_code == 0, _said(made)
    # when creating that user again, or setting the password of one there is not
    result = runner.invoke(app, ["admin", command, email], input="a-long-password-2\n" * 2)
    # then it refuses at once, never asking for the password
    said = _said(result)
    assert result.exit_code != 0, said
    assert refusal in said, said
    assert "Password" not in said, said


def test_admin_set_password_asks_for_the_password_twice_for_a_known_user(database) -> None:
    # given a migrated database with one admin user
    upgrade(database)
    runner.invoke(app, ["admin", "create", "ops@example.org", "--password", "a-long-password-1"])
    # when their password is set without --password, then it is asked for twice and set
    result = runner.invoke(
        app, ["admin", "set-password", "OPS@example.org"], input="a-long-password-2\n" * 2
    )
    said = _said(result)
    assert result.exit_code == 0, said
    assert "Password: Repeat for confirmation:" in said, said
    assert "Password for OPS@example.org changed." in said, said
