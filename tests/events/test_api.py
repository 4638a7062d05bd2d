"""Tracking events: stored once per event_id, committed before 2xx, validated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rapport.events import service as events
from rapport.platform import clock
from tests.conftest import auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def event(**overrides):  # type: ignore[no-untyped-def]
    body = {
        "event_id": "evt-1",
        "type": "product_viewed",
        "anonymous_id": "anon-9",
        "channel": "app",
        "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": {"sku": "W-1"},
        "context": {"device": "mobile"},
    }
    body.update(overrides)
    return body


def test_same_event_id_is_stored_once(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    key = api_key("ingest")
    first = client.post("/v1/events", json=event(), headers=auth(key))
    second = client.post("/v1/events", json=event(), headers=auth(key))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["duplicate"] is False
    assert second.json() == {**first.json(), "duplicate": True}
    assert events.count_events(db) == 1
    stored = events.get_event(db, event_id="evt-1")
    assert stored is not None
    assert (stored.type, stored.channel, stored.properties) == (
        "product_viewed",
        "app",
        {"sku": "W-1"},
    )


def test_event_far_in_the_future_is_refused(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    response = client.post(
        "/v1/events",
        json=event(occurred_at=(NOW + timedelta(hours=2)).isoformat()),
        headers=auth(api_key("ingest")),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "occurred_at"
    assert events.count_events(db) == 0


def test_late_event_is_accepted(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    response = client.post(
        "/v1/events",
        json=event(occurred_at=(NOW - timedelta(days=30)).isoformat()),
        headers=auth(api_key("ingest")),
    )
    assert response.status_code == 201


def test_event_without_anyone_or_with_naive_time_is_refused(client, api_key, db) -> None:
    key = api_key("ingest")
    nobody = client.post("/v1/events", json=event(anonymous_id=None), headers=auth(key))
    assert nobody.status_code == 422
    naive = client.post(
        "/v1/events", json=event(occurred_at="2026-06-01T11:00:00"), headers=auth(key)
    )
    assert naive.status_code == 422
    assert naive.json()["field"] == "occurred_at"
    assert events.count_events(db) == 0
