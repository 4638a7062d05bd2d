"""POST /v1/events/batch: per-event outcomes, valid events stored even when others are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rapport.events import service as events
from rapport.events.models import Event
from rapport.main import create_app
from rapport.platform import clock
from rapport.platform.db import get_db
from rapport.platform.settings import Settings
from tests.conftest import auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def event(event_id: str, **overrides):  # type: ignore[no-untyped-def]
    body = {
        "event_id": event_id,
        "type": "product_viewed",
        "customer_id": "C-100",
        "channel": "web",
        "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": {"sku": "W-1"},
        "context": {
            "device": "mobile",
            "page": {"url": "https://shop.example/p/W-1", "title": "Wok"},
            "ip": "203.0.113.9",
            "location": {"lat": 52.37, "lon": 4.89},
            "store_id": "S-1",
        },
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def without_location(context: dict) -> dict:  # type: ignore[type-arg]
    """The context as stored for a customer who has not granted location."""
    return {key: value for key, value in context.items() if key != "location"}


def stored_ids(db) -> list[str]:  # type: ignore[no-untyped-def]
    return list(db.scalars(select(Event.event_id).order_by(Event.position)))


def test_valid_events_are_stored_and_invalid_ones_reported_by_index(client, api_key, db) -> None:
    # given a batch with valid events among a naive time, an unknown channel, no person,
    # a time far ahead and a late event
    clock.set_clock(lambda: NOW)
    batch = [
        event("e-0"),
        event("e-1", occurred_at="2026-06-01T11:00:00"),
        event("e-2", channel="fax"),
        event("e-3", customer_id=None),
        event("e-4", occurred_at=(NOW + timedelta(minutes=6)).isoformat()),
        event(
            "e-5",
            occurred_at=(NOW - timedelta(days=40)).isoformat(),
            customer_id=None,
            anonymous_id="anon-5",
        ),
    ]

    # when it is sent
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then the valid ones (including the late one) are stored and each invalid one is named
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 4)
    assert [result["status"] for result in body["results"]] == [
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    errors = {result["index"]: result.get("errors") for result in body["results"]}
    assert errors[0] is None
    assert errors[1] == [
        {
            "field": "events.1.occurred_at",
            "location": "body",
            "pointer": "/events/1/occurred_at",
            "message": "Input should have timezone info",
            "code": "timezone_aware",
        }
    ]
    assert [(e["field"], e["pointer"], e["code"]) for e in errors[2]] == [
        ("events.2.channel", "/events/2/channel", "literal_error")
    ]
    assert [(e["field"], e["code"]) for e in errors[3]] == [
        ("events.3.customer_id", "person_missing")
    ]
    assert [(e["field"], e["code"]) for e in errors[4]] == [("events.4.occurred_at", "clock_skew")]
    assert [result["event_id"] for result in body["results"]] == [f"e-{i}" for i in range(6)]
    assert stored_ids(db) == ["e-0", "e-5"]


def test_batch_event_is_stored_as_sent(client, api_key, db) -> None:
    # given one event naming the customer by the retailer's own number
    clock.set_clock(lambda: NOW)
    sent = event("e-1", occurred_at="2026-06-01T13:59:00+02:00")

    # when it is sent in a batch
    response = client.post(
        "/v1/events/batch", json={"events": [sent]}, headers=auth(api_key("ingest"))
    )

    # then the sender's id is kept as user_id, the profile is left for the processor to resolve
    assert response.status_code == 200
    stored = events.get_event(db, event_id="e-1")
    assert stored is not None
    assert (stored.type, stored.user_id, stored.customer_id, stored.anonymous_id) == (
        "product_viewed",
        "C-100",
        None,
        None,
    )
    # (sent with a key that may only ingest: marked so for the profile processor)
    assert (stored.channel, stored.source) == ("web", "api-public")
    assert stored.occurred_at == datetime(2026, 6, 1, 11, 59, tzinfo=UTC)
    assert stored.received_at == NOW
    assert stored.properties == {"sku": "W-1"}
    # (its coordinates are kept only with C-100's consent to location: test_location_consent)
    assert stored.context == without_location(sent["context"])


def test_duplicates_are_stored_once_within_and_across_batches(client, api_key, db) -> None:
    # given a batch that repeats one event
    clock.set_clock(lambda: NOW)
    key = auth(api_key("ingest"))

    # when it is sent, and then a second batch repeats an event of the first
    first = client.post(
        "/v1/events/batch", json={"events": [event("a"), event("b"), event("a")]}, headers=key
    )
    second = client.post("/v1/events/batch", json={"events": [event("a"), event("c")]}, headers=key)

    # then each event_id is stored once and the repeats are answered as duplicates
    assert first.status_code == second.status_code == 200
    assert [r["status"] for r in first.json()["results"]] == ["accepted", "accepted", "duplicate"]
    assert (first.json()["accepted"], first.json()["duplicates"]) == (2, 1)
    assert [r["status"] for r in second.json()["results"]] == ["duplicate", "accepted"]
    assert stored_ids(db) == ["a", "b", "c"]


def test_large_batches_keep_order_content_and_duplicates(client, api_key, db) -> None:
    # given 40 stored events (large batches take the bulk-load path on PostgreSQL)
    clock.set_clock(lambda: NOW)
    key = auth(api_key("ingest"))
    first = [event(f"e-{n}", properties={"sku": f"S-{n}", "n": n}) for n in range(40)]
    client.post("/v1/events/batch", json={"events": first}, headers=key)

    # when a second large batch repeats ten of them, one twice, among 30 new ones
    again = first[:10] + [event(f"f-{n}", anonymous_id=f"anon-{n}") for n in range(30)]
    again.append(event("f-0", anonymous_id="anon-0"))
    response = client.post("/v1/events/batch", json={"events": again}, headers=key)

    # then the repeats are duplicates, the new ones are stored once, in the order sent
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (30, 11, 0)
    assert [r["status"] for r in body["results"][:11]] == ["duplicate"] * 10 + ["accepted"]
    ids = [f"e-{n}" for n in range(40)] + [f"f-{n}" for n in range(30)]
    assert stored_ids(db) == ids
    stored = events.get_event(db, event_id="e-7")
    assert stored is not None
    assert stored.properties == {"sku": "S-7", "n": 7}
    assert stored.context == without_location(first[7]["context"])
    assert stored.received_at == NOW


def test_reused_event_id_with_other_content_is_rejected(client, api_key, db) -> None:
    # given a stored event
    clock.set_clock(lambda: NOW)
    key = auth(api_key("ingest"))
    client.post("/v1/events/batch", json={"events": [event("a")]}, headers=key)

    # when its id comes again with other content, in a batch and alone
    batch = client.post(
        "/v1/events/batch", json={"events": [event("a", properties={"sku": "OTHER"})]}, headers=key
    )
    single = client.post("/v1/events", json=event("a", type="cart_updated"), headers=key)

    # then both are refused as conflicts and the stored event is unchanged
    assert batch.json()["results"][0]["errors"][0]["code"] == "conflict"
    assert batch.json()["results"][0]["errors"][0]["field"] == "events.0.event_id"
    assert single.status_code == 409
    assert single.json()["field"] == "event_id"
    stored = events.get_event(db, event_id="a")
    assert stored is not None
    assert (stored.type, stored.properties) == ("product_viewed", {"sku": "W-1"})
    assert events.count_events(db) == 1


def test_over_1000_events_is_422_naming_events(client, api_key, db) -> None:
    # given 1,001 events (empty ones keep the body small)
    # when they are sent
    response = client.post(
        "/v1/events/batch", json={"events": [{}] * 1001}, headers=auth(api_key("ingest"))
    )

    # then the whole batch is refused
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "events"
    assert response.json()["errors"][0]["code"] == "too_long"
    assert events.count_events(db) == 0


def test_malformed_envelopes_are_problems(client, api_key, db) -> None:
    key = {**auth(api_key("ingest")), "Content-Type": "application/json"}
    # given bodies that are not JSON, not an object, without events, or with an unknown field
    cases = [
        (b'{"events": [', 400, "body"),
        (b"[]", 422, "body"),
        (b"{}", 422, "events"),
        (b'{"events": {}}', 422, "events"),
        (b'{"events": [], "extra": 1}', 422, "extra"),
    ]
    for raw, status, field in cases:
        # when each is sent
        response = client.post("/v1/events/batch", content=raw, headers=key)
        # then it is a problem naming the field
        assert (response.status_code, response.json()["field"]) == (status, field), raw
        assert response.headers["content-type"] == "application/problem+json"
    assert events.count_events(db) == 0


def test_body_over_1_mib_is_413(settings, db, api_key) -> None:
    # given a server whose general body limit is above the batch limit
    from fastapi.testclient import TestClient

    roomy = Settings(**{**settings.model_dump(), "max_body_bytes": 4 * 1024 * 1024})
    app = create_app(roomy, run_worker=False)
    app.dependency_overrides[get_db] = lambda: db
    key = api_key("ingest")
    body = b'{"events": [], "padding": "' + b"x" * (1024 * 1024) + b'"}'

    # when a batch body over 1 MiB is sent
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/events/batch", content=body, headers=auth(key))

    # then it is refused before being read as JSON
    assert response.status_code == 413
    assert response.json()["field"] == "body"
    assert events.count_events(db) == 0


def test_nul_characters_are_refused(client, api_key, db) -> None:
    # given an event whose properties hold a NUL character (PostgreSQL cannot store it)
    clock.set_clock(lambda: NOW)
    batch = [event("a", properties={"note": "a\u0000b"}), event("b")]

    # when it is sent
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then that event alone is refused, naming the field
    assert [r["status"] for r in response.json()["results"]] == ["rejected", "accepted"]
    assert response.json()["results"][0]["errors"][0]["field"] == "events.0.properties"
    assert stored_ids(db) == ["b"]


def test_ingest_endpoints_refuse_keys_without_the_ingest_scope(client, api_key, db) -> None:
    # given a key that may only read
    clock.set_clock(lambda: NOW)
    reader = auth(api_key("read"))
    calls = [
        ("/v1/events/batch", {"events": [event("a")]}),
        ("/v1/track", {"userId": "u1", "event": "Product Viewed", "messageId": "m1"}),
        ("/v1/batch", {"batch": [{"type": "track", "userId": "u1", "event": "X Y"}]}),
    ]
    for path, body in calls:
        # when it calls an ingest endpoint, and so does a request without a key
        refused = client.post(path, json=body, headers=reader)
        anonymous = client.post(path, json=body)
        # then it gets 403 naming the scope, the other 401, and nothing is stored
        assert refused.status_code == 403, path
        assert refused.json()["required_scope"] == "ingest"
        assert anonymous.status_code == 401, path
    assert events.count_events(db) == 0
