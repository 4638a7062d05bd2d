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
from typer.testing import CliRunner

from rapport.cli import app
from rapport.events.service import count_events
from rapport.platform import admin_security
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade
from rapport.platform.settings import get_settings
from tests.conftest import free_port

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


def test_init_prints_admin_login_and_a_working_key_once(database_url) -> None:
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
    # and a second init creates nothing new and shows no secrets
    second = runner.invoke(app, ["init"])
    assert second.exit_code == 0, second.output
    assert KEY_PATTERN.findall(second.output) == []
    assert "Admin password" not in second.output


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


def test_keys_create_rejects_unknown_scope(database_url) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, ["keys", "create", "x", "-s", "everything"])
    assert result.exit_code == 2
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


def test_init_demo_loads_the_retailer_and_rotates_demo_credentials(database_url) -> None:
    from rapport.customers.service import count_customers

    # when the embedded demo is initialised twice (as ./scripts/run.sh does on each start)
    first = runner.invoke(app, ["init", "--demo", "--demo-customers", "40", "--seed", "3"])
    second = runner.invoke(app, ["init", "--demo", "--demo-customers", "40", "--seed", "3"])
    # then the demo is loaded once and each start prints a fresh, working key and password
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    old_key = KEY_PATTERN.findall(first.output)[0]
    new_key = KEY_PATTERN.findall(second.output)[0]
    assert "Admin password" in second.output
    with open_session(database_url) as db:
        assert count_customers(db) == 40
        assert platform.authenticate_api_key(db, secret=old_key) is None
        assert platform.authenticate_api_key(db, secret=new_key) is not None
        assert [k.name for k in platform.list_api_keys(db)] == ["demo key"]


def test_serve_with_two_processes_shares_one_sqlite_database(database_url, tmp_path) -> None:
    # given a migrated database, a key, and `rapport serve --processes 2` on it
    upgrade(database_url)
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
