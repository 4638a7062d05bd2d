"""A tracking event's coordinates are stored only with its person's consent to location:
``context.location``, the latitude and longitude of Segment's own ``context.location`` and a
``lat``/``lon`` in its properties are left out of the log where the customer (or visitor)
has not granted ``location`` when the event is stored, unless the same event or batch grants
it; the rest of the event is stored as sent. One consent lookup for a whole batch. A refused
message is kept among the dead letters without its coordinates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event, select

from rapport.events.models import DeadLetter, Event
from rapport.platform import clock
from tests.conftest import auth, command
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PARIS = {"lat": 48.8566, "lon": 2.3522}
CONTEXT = {"location": PARIS, "page": {"path": "/stores"}, "ip": "203.0.113.9"}


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.set_clock(lambda: NOW)


def _event(event_id: str, *, at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "page_viewed",
        "channel": "web",
        "occurred_at": at.isoformat(),
        "context": CONTEXT,
        **fields,
    }


def _choice(event_id: str, granted: bool, *, at: datetime = NOW, **person: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "consent_changed",
        "channel": "web",
        "occurred_at": at.isoformat(),
        "properties": {"purpose": "location", "granted": granted, "source": "banner"},
        **person,
    }


def _stored(db, event_id: str) -> Event:  # type: ignore[no-untyped-def]
    found = db.scalar(select(Event).where(Event.event_id == event_id))
    assert found is not None, event_id
    return found


def _customer(client, writer: str, external_id: str, **consents: bool) -> str:  # type: ignore[no-untyped-def]
    made = client.post(
        "/v1/customers",
        json={"external_id": external_id, "consents": consents},
        headers=command(writer),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["customer_id"])


def test_a_visitor_with_no_consent_on_record_is_stored_without_coordinates(
    client, api_key, db
) -> None:
    key = api_key("ingest")
    body = _event(
        "v-1",
        type="location_updated",
        anonymous_id="anon-1",
        properties={"lat": 48.85, "lon": 2.35, "accuracy_m": 20, "latitude": 1.0},
    )
    sent = client.post("/v1/events", json=body, headers=auth(key))
    assert sent.status_code == 201, sent.text
    stored = _stored(db, "v-1")
    assert stored.context == {"page": {"path": "/stores"}, "ip": "203.0.113.9"}
    assert stored.properties == {"accuracy_m": 20}
    # and sending it again (coordinates and all) is the same event, not a conflict
    again = client.post("/v1/events", json=body, headers=auth(key))
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True


def test_a_customers_standing_choice_decides(client, api_key, db) -> None:
    writer, key = api_key("write"), api_key("ingest")
    granted = _customer(client, writer, "LOC-YES", location=True)
    _customer(client, writer, "LOC-NO", location=False)
    _customer(client, writer, "LOC-NONE")
    events = [
        _event("k-1", customer_id="LOC-YES"),
        _event("k-2", customer_id=granted),  # Rapport's own id
        _event("k-3", customer_id="LOC-NO"),
        _event("k-4", customer_id="LOC-NONE"),
        _event("k-5", customer_id="LOC-UNKNOWN"),
    ]
    answer = client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert answer.json()["accepted"] == 5, answer.text

    kept = {e: "location" in _stored(db, e).context for e in ("k-1", "k-2", "k-3", "k-4", "k-5")}
    assert kept == {"k-1": True, "k-2": True, "k-3": False, "k-4": False, "k-5": False}
    assert _stored(db, "k-3").context == {"page": {"path": "/stores"}, "ip": "203.0.113.9"}

    # and a withdrawal counts from then on
    withdrawn = client.put(
        f"/v1/customers/{granted}/consents/location", json={"granted": False}, headers=auth(writer)
    )
    assert withdrawn.status_code == 200, withdrawn.text
    later = client.post("/v1/events", json=_event("k-6", customer_id="LOC-YES"), headers=auth(key))
    assert later.status_code == 201, later.text
    assert "location" not in _stored(db, "k-6").context


def test_a_choice_in_the_same_batch_counts_for_the_events_after_it(client, api_key, db) -> None:
    writer, key = api_key("write"), api_key("ingest")
    _customer(client, writer, "LOC-B", location=True)
    before = NOW - timedelta(days=1)
    events = [
        _event("b-1", anonymous_id="anon-b"),
        _choice("b-2", True, anonymous_id="anon-b"),
        _event("b-3", anonymous_id="anon-b"),
        _event("b-4", anonymous_id="anon-b", customer_id="LOC-NEW"),  # they sign up
        _choice("b-5", False, anonymous_id="anon-b"),
        _event("b-6", anonymous_id="anon-b"),
        # a customer granting it, then withdrawing (later), then an old grant flushed late
        _choice("b-7", False, customer_id="LOC-B"),
        _choice("b-8", True, customer_id="LOC-B", at=before),
        _event("b-9", customer_id="LOC-B"),
        # a consent call carrying coordinates, granting it
        {**_choice("b-10", True, anonymous_id="anon-c"), "context": CONTEXT},
    ]
    answer = client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert answer.json()["accepted"] == len(events), answer.text

    kept = {e["event_id"]: "location" in _stored(db, e["event_id"]).context for e in events}
    assert kept == {
        "b-1": False,
        "b-2": False,
        "b-3": True,
        "b-4": True,
        "b-5": False,
        "b-6": False,
        "b-7": False,
        "b-8": False,
        "b-9": False,
        "b-10": True,
    }


def test_segment_coordinates_go_and_the_rest_of_its_location_stays(client, api_key, db) -> None:
    key = api_key("ingest")
    location = {"latitude": 52.52, "longitude": 13.405, "city": "Berlin", "country": "DE"}
    message = {
        "type": "track",
        "event": "Store Searched",
        "anonymousId": "anon-s",
        "messageId": "s-1",
        "timestamp": NOW.isoformat(),
        "context": {"location": location, "locale": "de-DE"},
    }
    sent = client.post("/v1/track", json=message, headers=basic_auth(key))
    assert sent.status_code == 200, sent.text
    stored = _stored(db, "s-1")
    assert stored.context == {
        "locale": "de-DE",
        "segment": {"location": {"city": "Berlin", "country": "DE"}},
    }

    # and with the grant in the same batch, the coordinates are kept
    grant = {
        "type": "track",
        "event": "Consent Changed",
        "anonymousId": "anon-s",
        "messageId": "s-2",
        "timestamp": NOW.isoformat(),
        "properties": {"purpose": "location", "granted": True},
    }
    batch = {"batch": [grant, {**message, "messageId": "s-3"}]}
    answer = client.post("/v1/batch", json=batch, headers=basic_auth(key))
    assert answer.json()["accepted"] == 2, answer.text
    assert _stored(db, "s-3").context["location"] == {"lat": 52.52, "lon": 13.405}
    assert _stored(db, "s-3").context["segment"]["location"] == location


@pytest.fixture
def statements(db) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    engine = db.get_bind().engine

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_batch_reads_everyones_consent_at_once(client, api_key, db, statements) -> None:
    writer, key = api_key("write"), api_key("ingest")
    for n in range(12):
        _customer(client, writer, f"LOC-{n}", location=n % 2 == 0)
    events = [_event(f"q-{n}", customer_id=f"LOC-{n}") for n in range(12)]
    events += [_event(f"q-v{n}", anonymous_id=f"anon-q{n}") for n in range(12)]
    statements.clear()

    answer = client.post("/v1/events/batch", json={"events": events}, headers=auth(key))

    assert answer.json()["accepted"] == 24, answer.text
    assert len([s for s in statements if "consents" in s]) == 1
    assert len([s for s in statements if "FROM identities" in s]) == 1
    kept = [n for n in range(12) if "location" in _stored(db, f"q-{n}").context]
    assert kept == [0, 2, 4, 6, 8, 10]


def test_a_refused_message_is_kept_without_its_coordinates(client, api_key, db) -> None:
    key = api_key("ingest")
    location = {"latitude": 52.52, "longitude": 13.405, "city": "Berlin"}
    refused = {
        "type": "track",
        "anonymousId": "anon-r",
        "messageId": "r-1",
        "properties": {"lat": 52.5, "lon": 13.4, "sku": "W-1"},
        "context": {"location": location, "locale": "de-DE"},
    }  # no event name: refused
    answer = client.post("/v1/batch", json={"batch": [refused]}, headers=basic_auth(key))
    assert answer.json()["rejected"] == 1, answer.text
    kept = db.scalar(select(DeadLetter).where(DeadLetter.event_id == "r-1"))
    assert kept is not None
    assert orjson.loads(kept.raw) == {
        **refused,
        "properties": {"sku": "W-1"},
        "context": {"location": {"city": "Berlin"}, "locale": "de-DE"},
    }


def test_a_persons_coordinates_never_ride_in_as_traits_or_a_location_object(
    client, api_key, db
) -> None:
    key = api_key("ingest")
    refusal = {
        "type": "track",
        "event": "Consent Changed",
        "anonymousId": "anon-geo-2",
        "messageId": "g-0",
        "timestamp": NOW.isoformat(),
        "properties": {"purpose": "location", "granted": False},
    }
    marseille = {"latitude": 43.2965, "longitude": 5.3698}
    identify = {
        "type": "identify",
        "anonymousId": "anon-geo-2",
        "userId": "geo-2",
        "messageId": "g-1",
        "timestamp": NOW.isoformat(),
        "traits": {"email": "geo2@example.com", **marseille},
    }
    tracked_call = {
        "type": "track",
        "event": "Store Searched",
        "anonymousId": "anon-geo-2",
        "messageId": "g-2",
        "timestamp": NOW.isoformat(),
        "properties": {"query": "bikes", "location": {"lat": 43.3, "lon": 5.37, "city": "X"}},
        "context": {"traits": {"plan": "gold", **marseille, "location": {"lat": 43.3}}},
    }
    batch = {"batch": [refusal, identify, tracked_call]}
    answer = client.post("/v1/batch", json=batch, headers=basic_auth(key))
    assert answer.json()["accepted"] == 3, answer.text

    assert _stored(db, "g-1").properties == {"traits": {"email": "geo2@example.com"}}
    searched = _stored(db, "g-2")
    assert searched.properties == {"query": "bikes", "location": {"city": "X"}}
    assert searched.context["traits"] == {"plan": "gold"}

    # and the profile never gets them as custom attributes
    from rapport.customers import service as customers
    from rapport.events.processors import GAP_PATIENCE
    from tests.customers.factories import process

    clock.set_clock(lambda: NOW + GAP_PATIENCE + timedelta(seconds=1))
    process(db)
    person = customers.find_customer(db, kind="external_id", value="geo-2")
    assert person is not None
    db.refresh(person)
    assert not {"latitude", "longitude", "lat", "lon", "location"} & set(person.attributes)


def test_a_refused_messages_traits_are_kept_without_coordinates(client, api_key, db) -> None:
    key = api_key("ingest")
    refused = {
        "type": "identify",
        "anonymousId": "anon-rt",
        "messageId": "rt-1",
        "traits": {"email": "not an address", "latitude": 43.2965, "longitude": 5.3698},
        "context": {"traits": {"lat": 43.2, "plan": "gold"}},
    }  # an email that is no address: refused
    answer = client.post("/v1/batch", json={"batch": [refused]}, headers=basic_auth(key))
    assert answer.json()["rejected"] == 1, answer.text
    kept = db.scalar(select(DeadLetter).where(DeadLetter.event_id == "rt-1"))
    assert kept is not None
    assert orjson.loads(kept.raw) == {
        **refused,
        "traits": {"email": "not an address"},
        "context": {"traits": {"plan": "gold"}},
    }


def test_a_venue_events_point_is_kept_without_anyones_consent(client, api_key, db) -> None:
    body = {
        "event_id": "cup-final-2026-y",
        "type": "venue_event",
        "channel": "app",
        "anonymous_id": "venue:parc-des-princes",
        "occurred_at": NOW.isoformat(),
        "properties": {
            "name": "Cup final",
            "result": "won",
            "latitude": 48.8414,
            "longitude": 2.2530,
        },
        "context": CONTEXT,
    }
    answer = client.post("/v1/events", json=body, headers=auth(api_key("ingest")))
    assert answer.status_code == 201, answer.text
    stored = _stored(db, "cup-final-2026-y")
    assert stored.properties == body["properties"]
    assert "location" not in stored.context  # the sender's own device stays private
