"""Per-API-key rate limits: 429 problem+json with Retry-After and the IETF RateLimit fields,
RateLimit fields on admitted answers, per-key limits, every route counting (the coupon routes
and the hot tracking routes too), and one count shared by every `rapport serve` process."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from rapport.main import create_app
from rapport.platform import service as platform
from rapport.platform.db import get_db, open_session
from rapport.platform.errors import InvalidInput
from rapport.platform.ratelimit import SharedFileStorage
from tests.conftest import auth, migrated_sqlite
from tests.platform.test_serving import Served, _servers, served  # noqa: F401

EVENT = {
    "event_id": "e-1",
    "type": "page_viewed",
    "anonymous_id": "a-1",
    "channel": "web",
    "occurred_at": "2026-06-01T12:00:00+00:00",
}


@pytest.fixture
def limited(settings, db) -> Callable[..., TestClient]:  # type: ignore[no-untyped-def]
    """A client of an app whose keys may make ``limit`` requests."""
    clients: list[TestClient] = []

    def make(limit: str, coupons: str = "600/minute") -> TestClient:
        changes = {"api_rate_limit": limit, "coupon_rate_limit": coupons}
        application = create_app(settings.model_copy(update=changes), run_worker=False)
        application.dependency_overrides[get_db] = lambda: db
        clients.append(TestClient(application, raise_server_exceptions=False).__enter__())
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_a_key_over_its_limit_gets_429_with_retry_after_and_ratelimit_fields(
    limited, api_key
) -> None:
    # given keys that may make 3 requests a minute
    client = limited("3/minute")
    headers = auth(api_key("read"))

    # when a key makes 4
    answers = [client.get("/v1/products", headers=headers) for _ in range(4)]

    # then the first 3 are answered with the policy and what is left of it
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert {a.headers["RateLimit-Policy"] for a in answers} == {'"key-60s";q=3;w=60'}
    left = [a.headers["RateLimit"].split(";")[1] for a in answers[:3]]
    assert left == ["r=2", "r=1", "r=0"]
    # and the 4th is a problem saying when to come back
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.headers["RateLimit"].startswith('"key-60s";r=0;t=')
    problem = refused.json()
    assert problem["status"] == 429
    assert problem["type"].endswith("/too-many-requests")
    assert problem["field"] == "Authorization"
    assert problem["violated-policies"] == ["key-60s"]


def test_each_key_has_its_own_count_and_may_have_its_own_limit(limited, api_key, db) -> None:
    # given a default of 2 a minute, and a key allowed 5
    client = limited("2/minute")
    plain = auth(api_key("read"))
    generous = platform.create_api_key(
        db, name="till", scopes=[platform.Scope.READ], rate_limit="5/minute"
    ).secret

    # when both make 5 requests
    plain_codes = [client.get("/v1/products", headers=plain).status_code for _ in range(5)]
    own_codes = [client.get("/v1/products", headers=auth(generous)).status_code for _ in range(5)]

    # then each is held to its own limit
    assert plain_codes == [200, 200, 429, 429, 429]
    assert own_codes == [200] * 5


def test_a_keys_limit_can_be_changed_and_must_be_readable(db, api_key) -> None:
    key = platform.create_api_key(db, name="k", scopes=[platform.Scope.READ])
    changed = platform.set_api_key_rate_limit(db, key_id=key.key.id, rate_limit="10/second")
    assert changed.rate_limit == "10/second"
    with pytest.raises(InvalidInput) as refused:
        platform.set_api_key_rate_limit(db, key_id=key.key.id, rate_limit="lots")
    assert refused.value.field == "rate_limit"
    with pytest.raises(InvalidInput):
        platform.create_api_key(db, name="k2", scopes=[platform.Scope.READ], rate_limit="0/hour")


def test_coupon_validation_and_tracking_count_toward_the_limit(limited, api_key) -> None:
    # given keys that may make 3 requests a minute
    client = limited("3/minute")
    headers = auth(api_key("read", "ingest"))

    # when one key tracks an event (a hot route that checks its own key), looks up coupons
    # twice, then tries a third code
    tracked = client.post("/v1/events", json=EVENT, headers=headers)
    codes = [
        client.post("/v1/loyalty/coupons/validate", json={"codes": [f"GUESS{n}"]}, headers=headers)
        for n in range(3)
    ]

    # then all of them counted: the coupon guessing stops at the key's limit
    assert tracked.status_code == 201
    assert tracked.headers["RateLimit"].startswith('"key-60s";r=2;')
    assert [c.status_code for c in codes] == [200, 200, 429]


def test_coupon_lookups_have_a_tighter_limit_of_their_own(limited, api_key) -> None:
    # given keys that may make many requests but only 2 coupon lookups a minute
    client = limited("1000/minute", coupons="2/minute")
    headers = auth(api_key("read"))

    # when one key looks up codes three times, and reads something else
    codes = [
        client.post("/v1/loyalty/coupons/validate", json={"codes": ["GUESS"]}, headers=headers)
        for _ in range(3)
    ]
    other = client.get("/v1/products", headers=headers)

    # then the third lookup is refused for the coupon policy only; other routes go on
    assert [c.status_code for c in codes] == [200, 200, 429]
    assert codes[0].headers["RateLimit-Policy"] == ('"key-60s";q=1000;w=60, "coupons-60s";q=2;w=60')
    assert codes[2].json()["violated-policies"] == ["coupons-60s"]
    assert other.status_code == 200
    assert other.headers["RateLimit-Policy"] == '"key-60s";q=1000;w=60'


def test_an_empty_limit_turns_limits_off(limited, api_key) -> None:
    client = limited("")
    headers = auth(api_key("read"))
    answers = [client.get("/v1/products", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "RateLimit" not in answers[0].headers


def test_requests_without_a_valid_key_are_not_counted_against_anyone(limited, api_key) -> None:
    client = limited("1/minute")
    assert client.get("/v1/products").status_code == 401
    assert client.get("/v1/products", headers=auth("rk_bad_key")).status_code == 401
    assert client.get("/v1/products", headers=auth(api_key("read"))).status_code == 200


def test_two_storages_on_one_file_share_their_counts(tmp_path: Path) -> None:
    # given two storages on one file, as two server processes have
    uri = f"rapport-file://{tmp_path / 'counts.bin'}"
    first, second = SharedFileStorage(uri), SharedFileStorage(uri)

    # when both count requests of one key against a limit of 5
    admitted = [
        storage.acquire_sliding_window_entry("key-1", 5, 60)
        for storage in (first, second, first, second, first, second, first)
    ]

    # then 5 in all are admitted, and both see the same count
    assert admitted == [True] * 5 + [False] * 2
    assert first.get_sliding_window("key-1", 60)[2] == second.get_sliding_window("key-1", 60)[2]
    # and other keys are counted apart
    assert second.acquire_sliding_window_entry("key-2", 5, 60)


def test_expired_counters_free_their_slots(tmp_path: Path) -> None:
    # given a tiny table full of counters that expire at once
    storage = SharedFileStorage(f"rapport-file://{tmp_path / 'tiny.bin'}", slots=4)
    for n in range(4):
        storage.incr(f"old-{n}", expiry=0)

    # when new keys are counted, their slots are reused
    assert [storage.incr(f"new-{n}", expiry=60) for n in range(4)] == [1, 1, 1, 1]
    assert storage.get("new-3") == 1
    assert storage.get("old-0") == 0


@pytest.mark.parametrize("served", [{"RAPPORT_API_RATE_LIMIT": "10/minute"}], indirect=True)
def test_the_limit_is_shared_by_every_server_process(served: Served, tmp_path: Path) -> None:  # noqa: F811
    # given `rapport serve --processes 2` with keys limited to 10 requests a minute
    with open_session(f"sqlite:///{tmp_path / 'serve.db'}") as db:
        secret = platform.create_api_key(db, name="shared", scopes=[platform.Scope.READ]).secret
    base = f"http://127.0.0.1:{served.port}"
    clients = [httpx.Client(base_url=base) for _ in range(24)]
    try:
        # when 24 connections (spread by the kernel over both processes) ask at once
        def ask(client: httpx.Client) -> int:
            return client.get("/v1/products", headers=auth(secret)).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(ask, clients))
        per_process = _servers(served)

        # then both processes answered, and exactly 10 requests were admitted in all
        assert len([n for n in per_process.values() if n]) == 2, per_process
        assert sorted(codes) == [200] * 10 + [429] * 14
    finally:
        for client in clients:
            client.close()


def test_keys_get_their_own_limit_from_the_command_line(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from rapport.cli import app
    from rapport.platform.settings import get_settings

    # given a migrated database the command uses
    url = migrated_sqlite(tmp_path / "cli.db")
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        # when a key is created with a limit, then changed, then set back to the default
        created = runner.invoke(
            app, ["keys", "create", "Till", "-s", "read", "--rate-limit", "5/second"]
        )
        with open_session(url) as db:
            (key,) = platform.list_api_keys(db)
        assert (created.exit_code, key.rate_limit) == (0, "5/second")
        changed = runner.invoke(app, ["keys", "limit", key.id, "100/minute;2000/hour"])
        with open_session(url) as db:
            assert platform.list_api_keys(db)[0].rate_limit == "100/minute;2000/hour"
        refused = runner.invoke(app, ["keys", "limit", key.id, "plenty"])
        reset = runner.invoke(app, ["keys", "limit", key.id, "default"])
        with open_session(url) as db:
            assert platform.list_api_keys(db)[0].rate_limit is None

        # then each step said what it did, and a limit that is no limit was refused
        assert changed.exit_code == 0
        assert "100/minute;2000/hour" in changed.output
        assert refused.exit_code == 2
        assert "rate_limit" in refused.output or "not a rate limit" in refused.output
        assert reset.exit_code == 0
    finally:
        get_settings.cache_clear()


def test_a_body_write_key_unlike_the_header_key_is_401_before_scope_and_uncounted(
    limited, api_key, db
) -> None:
    # given keys allowed 2 requests a minute: one without the ingest scope, one with it
    client = limited("2/minute")
    reader, ingest, other = api_key("read"), api_key("ingest"), api_key("ingest")
    track = {"type": "track", "event": "Viewed", "userId": "C-1"}

    # when each sends a Segment call whose body's writeKey is another key, three times
    answers = [
        client.post("/v1/track", json={**track, "writeKey": other}, headers=auth(key))
        for key in (reader, ingest)
        for _ in range(3)
    ]

    # then each is 401 for the two credentials that differ (not 403 for the header key's
    # scope), and none counted toward the header key's limit: it still makes 2 calls
    for response in answers:
        assert response.status_code == 401, response.text
        assert response.json()["field"] == "Authorization"
        assert "different credentials" in response.json()["detail"]
    codes = [client.post("/v1/track", json=track, headers=auth(ingest)).status_code for _ in "ab"]
    assert codes == [200, 200]
    assert client.post("/v1/track", json=track, headers=auth(ingest)).status_code == 429
