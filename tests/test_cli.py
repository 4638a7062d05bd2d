"""The ``rapport`` command line on a real SQLite database."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings

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
        assert key.scopes == ["admin"]
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
        assert key.scopes == ["ingest", "read"]
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
