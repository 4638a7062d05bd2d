"""The ``rapport`` command line on a real SQLite database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import text
from typer._click.core import Command
from typer.main import get_command
from typer.testing import CliRunner

from rapport.cli import app
from rapport.events.service import count_events
from rapport.platform import admin_security
from rapport.platform import service as platform
from rapport.platform.db import create_db_engine, open_session
from rapport.platform.settings import get_settings
from tests.conftest import free_port, migrated_database, migrated_sqlite

runner = CliRunner()
KEY_PATTERN = re.compile(r"rk_[0-9a-f]{12}_[A-Za-z0-9_\-]{43}")


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_init_prints_admin_login_and_a_working_key_once(database_url, tmp_path) -> None:
    # when the service is initialised
    first = runner.invoke(app, ["init"])
    # then the admin login, a password and an admin key are printed
    assert first.exit_code == 0, first.output
    assert "admin@example.com" in first.output
    keys = KEY_PATTERN.findall(first.output)
    assert len(keys) == 1
    with open_session(database_url) as db:
        key = platform.authenticate_api_key(db, secret=keys[0])
        assert key is not None
        assert key.scopes == ("admin",)
        assert platform.count_admin_users(db) == 1
    # and kept for later runs in a file only this user may read
    kept = tmp_path / "first-run-credentials"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert keys[0] in kept.read_text()
    # and a second init creates nothing new: it shows the same key again
    second = runner.invoke(app, ["init"])
    assert second.exit_code == 0, second.output
    assert KEY_PATTERN.findall(second.output) == keys
    assert "nothing new created" in second.output
    with open_session(database_url) as db:
        assert len(platform.list_api_keys(db, include_revoked=True)) == 1
        assert platform.count_admin_users(db) == 1


def test_init_never_shows_a_first_run_secret_changed_since(database_url) -> None:
    # given an initialised service whose first key was revoked and password changed on purpose
    first = runner.invoke(app, ["init"])
    secret = KEY_PATTERN.findall(first.output)[0]
    password = re.search(r"Admin password:\s+(\S+)", first.output)
    assert password is not None
    with open_session(database_url) as db:
        key = platform.authenticate_api_key(db, secret=secret)
        assert key is not None
        platform.revoke_api_key(db, key_id=key.id)
        platform.set_admin_password(db, email="admin@example.com", password="a new password 1")
    # when init runs again
    again = runner.invoke(app, ["init"])
    # then it shows neither old secret, says they changed, and makes no new key
    assert again.exit_code == 0, again.output
    assert secret not in again.output
    assert password.group(1) not in again.output
    assert "revoked since the first run" in again.output
    assert "changed since the first run" in again.output
    assert "rapport keys create" in again.output
    with open_session(database_url) as db:
        assert platform.list_api_keys(db) == []


def test_keys_create_list_revoke(database_url) -> None:
    runner.invoke(app, ["migrate"])
    created = runner.invoke(app, ["keys", "create", "Till 4", "-s", "ingest", "-s", "read"])
    assert created.exit_code == 0, created.output
    secret = KEY_PATTERN.findall(created.output)[0]
    listed = runner.invoke(app, ["keys", "list"])
    assert "Till 4" in listed.output
    assert secret not in listed.output
    with open_session(database_url) as db:
        key = platform.authenticate_api_key(db, secret=secret)
        assert key is not None
        assert key.scopes == ("ingest", "read")
        key_id = key.id
    revoked = runner.invoke(app, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    with open_session(database_url) as db:
        assert platform.authenticate_api_key(db, secret=secret) is None
    assert runner.invoke(app, ["keys", "revoke", "key_missing"]).exit_code == 2


def test_keys_orders_from_tracking_switch(database_url) -> None:
    runner.invoke(app, ["migrate"])
    # given a key made for a shop whose own system sends orders
    created = runner.invoke(
        app,
        ["keys", "create", "Shop site", "-s", "ingest", "-s", "write", "--no-orders-from-tracking"],
    )
    assert created.exit_code == 0, created.output
    secret = KEY_PATTERN.findall(created.output)[0]
    with open_session(database_url) as db:
        key = platform.authenticate_api_key(db, secret=secret)
        assert key is not None
        assert key.orders_from_tracking is False
    assert "orders from tracking: off" in runner.invoke(app, ["keys", "list"]).output
    # when the operator turns it on
    switched = runner.invoke(app, ["keys", "orders-from-tracking", key.id, "on"])
    # then the key's Segment e-commerce events become orders from now on
    assert switched.exit_code == 0, switched.output
    assert "become orders and returns" in switched.output
    with open_session(database_url) as db:
        now = platform.authenticate_api_key(db, secret=secret)
        assert now is not None
        assert now.orders_from_tracking is True
    assert "orders from tracking: on " in runner.invoke(app, ["keys", "list"]).output
    # and a key that may only track (a browser's) never has its orders trusted, even switched on
    assert runner.invoke(app, ["keys", "create", "Shop pages", "-s", "ingest"]).exit_code == 0
    listed = runner.invoke(app, ["keys", "list"]).output
    assert "'Shop pages'" in listed
    assert "orders from tracking: on, but needs write scope" in listed
    # and only on or off is understood
    assert runner.invoke(app, ["keys", "orders-from-tracking", key.id, "maybe"]).exit_code == 2


def test_keys_list_says_which_scopes_orders_from_tracking_needs(database_url, monkeypatch) -> None:
    from rapport.platform.console import console

    runner.invoke(app, ["migrate"])
    # given keys with the switch on (the default) and each mix of scopes, and one switched off
    wanted = {
        "Server": ([platform.Scope.INGEST, platform.Scope.WRITE], "on"),
        "Ops": ([platform.Scope.ADMIN], "on"),
        "Pages": ([platform.Scope.INGEST], "on, but needs write scope"),
        # /v1/track refuses a key without ingest: its switch takes no effect either
        "Backoffice": ([platform.Scope.WRITE], "on, but needs ingest scope"),
        "Reports": ([platform.Scope.READ], "on, but needs ingest and write scopes"),
    }
    with open_session(database_url) as db:
        ids = {
            name: platform.create_api_key(db, name=name, scopes=scopes).key.id
            for name, (scopes, _state) in wanted.items()
        }
        ids["Quiet"] = platform.create_api_key(
            db, name="Quiet", scopes=[platform.Scope.INGEST], orders_from_tracking=False
        ).key.id
    states = {name: state for name, (_scopes, state) in wanted.items()} | {"Quiet": "off"}
    # when they are listed on CI's 80-column console
    monkeypatch.setattr(console, "width", 80)
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    # then each key's line says what its switch does with its scopes
    lines = {line.split()[0]: " ".join(line.split()) for line in listed.output.splitlines()}
    for name, state in states.items():
        assert f"orders from tracking: {state} created" in lines[ids[name]], (name, listed.output)
    # and switching says the same
    switched = runner.invoke(app, ["keys", "orders-from-tracking", ids["Backoffice"], "on"])
    assert switched.exit_code == 0, switched.output
    said = " ".join(switched.output.split())
    assert "are refused until it has the ingest scope" in said


def test_keys_list_table_shows_whole_ids(database_url, monkeypatch) -> None:
    from rapport.platform.console import console

    runner.invoke(app, ["migrate"])
    with open_session(database_url) as db:
        key = platform.create_api_key(db, name="Till 4", scopes=[platform.Scope.READ]).key
    # on a wide terminal, keys are a table
    monkeypatch.setattr(console, "width", 140)
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0, listed.output
    assert "┃ id" in listed.output
    assert re.findall(r"key_[0-9a-f]+", listed.output) == [key.id]


def test_keys_create_rejects_unknown_scope(database_url) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, ["keys", "create", "x", "-s", "everything"])
    assert result.exit_code == 2
    # the refusal lists the scopes, in the words of a person (no "Value error, ")
    said = " ".join(result.output.replace("│", " ").split())
    assert "'everything' is not one of 'ingest', 'read', 'write', 'admin'" in said
    assert "Value error" not in said
    with open_session(database_url) as db:
        assert platform.list_api_keys(db) == []


def test_keys_create_refuses_a_key_without_a_name(database_url) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, ["keys", "create", "  ", "-s", "read"])
    assert result.exit_code == 2, result.output
    assert "Give the key a name" in result.output
    with open_session(database_url) as db:
        assert platform.list_api_keys(db) == []


def test_worker_once_runs_due_jobs(database_url) -> None:
    from rapport.platform import jobs

    runner.invoke(app, ["migrate"])
    with open_session(database_url) as db:
        jobs.enqueue(db, kind="platform.prune_finished_jobs", payload={"keep_days": 7})
        db.commit()
    result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    # the queued job plus this period's run of every schedule
    assert f"Ran {1 + len(jobs.registered_schedules())} job(s)." in result.output


def test_init_demo_twice_keeps_the_first_login_and_key(database_url) -> None:
    from rapport.customers.service import count_customers

    # when the embedded demo is initialised twice (as ./scripts/run.sh does on each start)
    first = runner.invoke(app, ["init", "--demo", "--demo-customers", "40", "--seed", "3"])
    second = runner.invoke(app, ["init", "--demo", "--demo-customers", "40", "--seed", "3"])
    # then the demo is loaded once
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Demo retailer" in first.output
    assert "Demo retailer" not in second.output
    # and the second start prints the first start's login and key, which still work
    first_key = KEY_PATTERN.findall(first.output)
    assert KEY_PATTERN.findall(second.output) == first_key
    password = re.search(r"Admin password:\s+(\S+)", first.output)
    assert password is not None
    assert f"Admin password:   {password.group(1)}" in second.output
    assert "admin@example.com" in second.output
    with open_session(database_url) as db:
        assert count_customers(db) == 40
        key = platform.authenticate_api_key(db, secret=first_key[0])
        assert key is not None
        assert [k.id for k in platform.list_api_keys(db, include_revoked=True)] == [key.id]
        assert platform.admin_password_matches(
            db, email="admin@example.com", password=password.group(1)
        )
        assert platform.count_admin_users(db) == 1


def test_serve_with_two_processes_shares_one_sqlite_database(database_url, tmp_path) -> None:
    # given a migrated database, a key, and `rapport serve --processes 2` on it
    migrated_sqlite(tmp_path / "cli.db")  # the file database_url names
    with open_session(database_url) as db:
        secret = platform.create_api_key(db, name="shop", scopes=[platform.Scope.ADMIN]).secret
    port = free_port()
    rapport = Path(sys.executable).with_name("rapport")
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(rapport), "serve", "--port", str(port), "--processes", "2"],
        env={**os.environ, "RAPPORT_SECRET_KEY": "two-processes-secret-for-tests"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)
        now = datetime.now(UTC)

        def send(sender: int) -> list[int]:
            # every sender repeats the same 50 events, then sends 50 of its own
            shared = [_event(f"shared-{n}", "C-1", now) for n in range(50)]
            own = [_event(f"own-{sender}-{n}", f"C-{sender}", now) for n in range(50)]
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                return [
                    client.post("/v1/events/batch", json={"events": batch}).json()["accepted"]
                    for batch in (shared, own)
                ]

        # when eight connections send at once, spread over both processes
        with ThreadPoolExecutor(max_workers=8) as pool:
            accepted = list(pool.map(send, range(8)))

        # then every event is stored once: the shared ones by exactly one request
        assert sum(first for first, _ in accepted) == 50
        assert all(second == 50 for _, second in accepted)
        with open_session(database_url) as db:
            assert count_events(db) == 50 + 8 * 50
        # and the one embedded worker builds profiles from them
        lookup = {"kind": "external_id", "value": "C-3"}
        deadline = time.monotonic() + 30
        while True:
            found = httpx.get(f"{base}/v1/customers/lookup", params=lookup, headers=headers)
            if found.status_code == 200 and found.json()["traits"].get("event_count") == 50:
                break
            assert time.monotonic() < deadline, found.text
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    # and the processes log as one process does: level, logger name, INFO lines included
    # (where they wrote bare WARNING messages only)
    said = (tmp_path / "serve.log").read_text()
    assert re.search(r"^INFO rapport\.platform\.jobs: worker \S+ started$", said, re.M), said
    assert "Context impl" not in said


def _event(event_id: str, customer_id: str, now: datetime) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": "product_viewed",
        "customer_id": customer_id,
        "channel": "web",
        "occurred_at": (now - timedelta(minutes=1)).isoformat(),
        "properties": {"sku": "W-1"},
    }


def test_admin_unlock_lifts_a_sign_in_lock(database_url) -> None:
    # given an account and an address locked by wrong passwords
    runner.invoke(app, ["migrate"])
    with open_session(database_url) as db:
        subjects = admin_security.login_subjects("Ops@Example.com", "203.0.113.7")
        for _ in range(25):
            admin_security.record_failure(db, subjects)
        assert admin_security.locked_until(db, subjects) is not None
    # when the operator lifts the account's lock only
    account = runner.invoke(app, ["admin", "unlock", "ops@example.com"])
    # then the account is free, the address still locked
    assert account.exit_code == 0, account.output
    assert "lifted" in account.output
    with open_session(database_url) as db:
        assert (
            admin_security.locked_until(
                db, admin_security.login_subjects("ops@example.com", "198.51.100.1")
            )
            is None
        )
        assert admin_security.locked_until(db, subjects) is not None
    # and lifting the address frees it too; asking again says there is nothing to lift
    assert runner.invoke(app, ["admin", "unlock", "--address", "203.0.113.7"]).exit_code == 0
    with open_session(database_url) as db:
        assert admin_security.locked_until(db, subjects) is None
    again = runner.invoke(app, ["admin", "unlock", "ops@example.com"])
    assert "nothing to lift" in again.output
    # and naming nothing is refused with what to name
    nothing = runner.invoke(app, ["admin", "unlock"])
    assert nothing.exit_code != 0
    assert "--address" in nothing.output


def _rapport(*arguments: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed ``rapport`` console script, as an operator runs it."""
    rapport = Path(sys.executable).with_name("rapport")
    return subprocess.run(
        [str(rapport), *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _operator_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("RAPPORT_")}
    # A home of its own: no user env file or data directory of this machine's user is read.
    return {**kept, "HOME": str(tmp_path), "XDG_CONFIG_HOME": "", "XDG_DATA_HOME": "", **variables}


def test_rapport_from_any_directory_uses_the_configured_database_and_shows_whole_ids(
    tmp_path, monkeypatch
) -> None:
    # given a data directory with a migrated database and a key, and no database URL set
    data = tmp_path / "data"
    data.mkdir()
    migrated_sqlite(data / "rapport.db")
    with open_session(f"sqlite:///{data / 'rapport.db'}") as db:
        key = platform.create_api_key(db, name="Shop front-end", scopes=[platform.Scope.READ]).key
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    # when the operator lists keys from another directory, on a narrow terminal
    listed = _rapport(
        "keys",
        "list",
        cwd=elsewhere,
        env=_operator_environment(tmp_path, RAPPORT_DATA_DIR=str(data), COLUMNS="60"),
    )
    # then the same database is used, and the id is there whole
    assert listed.returncode == 0, listed.stderr
    assert re.findall(r"key_[0-9a-f]+", listed.stdout) == [key.id]
    assert not (elsewhere / "rapport.db").exists()
    # and that id, copied, revokes the key (from yet another directory)
    copied = re.findall(r"key_[0-9a-f]+", listed.stdout)[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(data))
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        revoked = runner.invoke(app, ["keys", "revoke", copied])
    finally:
        get_settings.cache_clear()
    assert revoked.exit_code == 0, revoked.output
    with open_session(f"sqlite:///{data / 'rapport.db'}") as db:
        assert platform.list_api_keys(db) == []


def test_a_command_in_a_fresh_data_directory_creates_nothing_and_says_to_run_init(
    tmp_path,
) -> None:
    # given a data directory nobody ran `rapport init` for: not there yet, then empty
    data = tmp_path / "new"
    environment = _operator_environment(tmp_path, RAPPORT_DATA_DIR=str(data))
    for arguments, made in ((("keys", "list"), False), (("events", "held"), True)):
        if made:
            data.mkdir()
        # when a command other than init runs there
        refused = _rapport(*arguments, cwd=tmp_path, env=environment)
        # then it says there is no database yet and to run init, and creates nothing
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "There is no Rapport database at" in refused.stderr
        assert str(data / "rapport.db") in refused.stderr
        assert "Run: rapport init" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert list(data.iterdir()) == [] if made else not data.exists()
    # and `rapport init` then makes it there, after which the same command works
    initialised = _rapport("init", cwd=tmp_path, env=environment)
    assert initialised.returncode == 0, initialised.stderr
    secret = KEY_PATTERN.findall(initialised.stdout)[0]
    listed = _rapport("keys", "list", cwd=tmp_path, env=environment)
    assert listed.returncode == 0, listed.stderr
    assert "initial admin key" in listed.stdout
    with open_session(f"sqlite:///{data / 'rapport.db'}") as db:
        assert platform.authenticate_api_key(db, secret=secret) is not None


def test_unreachable_postgresql_ends_with_what_to_do_not_a_traceback(tmp_path) -> None:
    # given a PostgreSQL URL where no server listens
    url = f"postgresql+psycopg://rapport:s3cret@127.0.0.1:{free_port()}/rapport"
    # when a command needs the database
    result = _rapport(
        "keys",
        "list",
        cwd=tmp_path,
        env=_operator_environment(tmp_path, RAPPORT_DATABASE_URL=url),
    )
    # then it fails with the problem and what to do, without the password or a traceback
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        "Error: Cannot use the database at postgresql+psycopg://rapport:***@"
    )
    assert "RAPPORT_DATABASE_URL" in lines[1]
    assert "Traceback" not in result.stdout + result.stderr
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("environment", "arguments", "problem", "remedy"),
    [
        (
            {"RAPPORT_DATABASE_URL": "not a url"},
            ["keys", "list"],
            "RAPPORT_DATABASE_URL: 'not a url' is not a database URL",
            "environment",
        ),
        # each setting a command refuses as serve does, exit code 2, naming it
        ({"RAPPORT_BIND_PORT": "-5"}, ["keys", "list"], "RAPPORT_BIND_PORT", "environment"),
        ({"RAPPORT_BIND_PORT": "70000"}, ["keys", "list"], "RAPPORT_BIND_PORT", "environment"),
        (
            {"RAPPORT_BIND_HOST": "999.1.1.1"},
            ["keys", "list"],
            "RAPPORT_BIND_HOST: '999.1.1.1' is not an address to listen on",
            "environment",
        ),
        (
            {"RAPPORT_DATABASE_URL": "postgres://x@h/db"},
            ["migrate"],
            "RAPPORT_DATABASE_URL: postgres://… is not a database URL",
            "environment",
        ),
        (
            {"RAPPORT_API_RATE_LIMIT": "lots"},
            ["keys", "list"],
            "RAPPORT_API_RATE_LIMIT: 'lots' is not a rate limit",
            "environment",
        ),
        (
            {"RAPPORT_COUPON_RATE_LIMIT": "-5/minute"},
            ["worker", "--once"],
            "RAPPORT_COUPON_RATE_LIMIT: '-5/minute' is not a rate limit",
            "environment",
        ),
        (
            {"RAPPORT_ENV_FILE": "/nonexistent/rapport.env"},
            ["keys", "list"],
            "RAPPORT_ENV_FILE: it names /nonexistent/rapport.env, which is not a file",
            "Correct it in the environment.",
        ),
        ({}, ["keys", "list"], "There is no Rapport database at", "rapport init"),
        ({}, ["admin", "unlock", "x@example.com"], "There is no Rapport database", "rapport init"),
        ({"RAPPORT_BIND_PORT": "eighty"}, ["init"], "RAPPORT_BIND_PORT", "environment"),
    ],
)
def test_errors_end_with_what_to_do(
    database_url, monkeypatch, environment, arguments, problem, remedy
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = runner.invoke(app, arguments)
    # a refused setting is refused input (exit code 2, docs/operator-guide.md); the others fail
    assert result.exit_code == (2 if problem.startswith("RAPPORT_") else 1)
    assert isinstance(result.exception, SystemExit)  # nothing escaped the handler
    assert "Traceback" not in result.output
    assert problem in result.stderr
    assert remedy in result.stderr


def test_a_database_behind_this_version_says_to_migrate(database_url) -> None:
    # given a database migrated by an older Rapport (before admin sign-in limits)
    runner.invoke(app, ["migrate", "--revision", "c14000000001"])
    # when a command needs a table it does not have yet, then it refuses before touching
    # the database (exit code 2, as every command on a schema it does not expect) and says
    # to migrate
    result = runner.invoke(app, ["admin", "unlock", "x@example.com"])
    assert result.exit_code == 2
    assert "migration(s) pending. Run: rapport migrate" in result.output


def test_unknown_key_and_bad_option_say_what_to_do(database_url) -> None:
    runner.invoke(app, ["migrate"])
    unknown = runner.invoke(app, ["keys", "revoke", "key_missing"])
    assert unknown.exit_code == 2
    assert "No API key 'key_missing'" in unknown.stderr
    assert "rapport keys list" in unknown.stderr
    option = runner.invoke(app, ["keys", "list", "--colour"])
    assert option.exit_code == 2
    assert "No such option" in option.output
    assert "Traceback" not in unknown.output + option.output


def test_debug_shows_the_traceback(database_url) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, ["--debug", "keys", "revoke", "key_missing"])
    # the error is raised as is, for the traceback
    assert type(result.exception).__name__ == "NotFound"


def test_demo_refuses_an_end_day_that_is_not_yet_past(database_url) -> None:
    today = datetime.now(UTC).date()
    result = runner.invoke(app, ["demo", "--customers", "5", "--end", f"{today:%Y-%m-%d}"])
    assert result.exit_code == 2
    assert "the last day of history must be before today" in " ".join(result.output.split())


def test_import_products_says_one_row_in_the_singular(database_url, tmp_path) -> None:
    runner.invoke(app, ["migrate"])
    path = tmp_path / "catalogue.csv"
    path.write_text("sku;name;price;currency\nM-1;Mug;4.50;GBP\n")
    result = runner.invoke(app, ["import", "products", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 row read, 1 product created or updated." in result.output


def _commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _whole(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("path", "command"),
    [
        pytest.param(path, command, id=" ".join(path) or "rapport")
        for path, command in _commands(get_command(app))
    ],
)
def test_every_help_shows_every_option_and_its_help_whole_at_80_columns(path, command) -> None:
    # when an operator asks a command for help on CI's 80-column console
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    # then it fits, and names every option whole, with its help and the command's, uncut
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    shown = _whole(result.output)
    for parameter in command.params:
        if getattr(parameter, "hidden", False):
            continue
        for name in (*parameter.opts, *parameter.secondary_opts):
            if name.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", result.output), name
        if getattr(parameter, "help", None):
            assert _whole(parameter.help) in shown, parameter.help
    assert _whole(command.help or "") in shown
    for sub in getattr(command, "commands", {}).values():
        assert _whole(sub.get_short_help_str(limit=10_000)) in shown


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrate_names_a_newer_versions_table_left_in_a_restored_database(
    backend, tmp_path, monkeypatch
) -> None:
    # given a database restored from a backup taken before admin sessions came
    # (alembic_version back at c14000000001) over one migrated since, whose admin_sessions
    # table the restore left there (pg_restore --clean drops only what the backup has)
    url, remove = migrated_database(backend, tmp_path)
    try:
        with create_db_engine(url).begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'c14000000001'"))
        monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
        monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
        get_settings.cache_clear()
        # when the operator migrates
        result = runner.invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
        remove()
    # then it refuses, naming the table and how to restore, where it failed with
    # 'refused a statement: relation "admin_sessions" already exists' and 'report it'
    assert result.exit_code == 2, result.output
    assert "already has the table admin_sessions" in _whole(result.stderr)
    assert "revision c14000000001" in _whole(result.stderr)
    assert "Restore the backup into an empty database" in _whole(result.stderr)


@pytest.mark.parametrize("command", [["migrate"], ["serve"], ["worker", "--once"]])
def test_an_install_upgraded_from_var_is_told_where_its_database_is(tmp_path, command) -> None:
    # given an install made before the data directory moved, its database in ./var, and no
    # RAPPORT_DATA_DIR or database URL set (the default data directory has no database)
    install = tmp_path / "install"
    (install / "var").mkdir(parents=True)
    migrated_sqlite(install / "var" / "rapport.db")
    # when the upgraded Rapport runs from that directory
    result = _rapport(*command, cwd=install, env=_operator_environment(tmp_path))
    # then it stops, naming the old database and the setting, and makes no new database
    assert result.returncode == 2, result.stdout + result.stderr
    said = _whole(result.stderr)
    assert f"{install / 'var' / 'rapport.db'} is one an older Rapport kept in ./var" in said
    assert f"set RAPPORT_DATA_DIR={install / 'var'}" in said
    assert not (tmp_path / ".local" / "share" / "rapport" / "rapport.db").exists()


@pytest.mark.postgres
def test_the_worker_logs_no_alembic_lines_for_its_schema_checks(tmp_path) -> None:
    # given a migrated PostgreSQL database and `rapport worker` on it for a few ticks
    url, remove = migrated_database("postgresql", tmp_path)
    log = tmp_path / "worker.log"
    try:
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [str(Path(sys.executable).with_name("rapport")), "worker"],
                env=_operator_environment(
                    tmp_path, RAPPORT_DATABASE_URL=url, RAPPORT_WORKER_POLL_SECONDS="0.05"
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while "started" not in log.read_text() and time.monotonic() < deadline:
                    assert worker.poll() is None, log.read_text()
                    time.sleep(0.2)
                time.sleep(2)  # a few dozen ticks, each checking the schema
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    finally:
        remove()
    # then its own lines are there, and none of alembic's "Context impl PostgresqlImpl."
    # (where every check wrote two INFO lines, ~30,000 a day)
    said = log.read_text()
    assert re.search(r"^INFO rapport\.platform\.jobs: worker \S+ started$", said, re.M), said
    assert "alembic" not in said, said
