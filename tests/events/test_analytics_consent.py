"""A person who refused ``analytics`` is not tracked: their page, screen and track calls are
acknowledged (2xx, so an SDK's batch is not sent again) and not stored, so nothing of them
(their ids, address, browser) is kept and nothing reaches their profile; their choices,
identify calls and the shop's facts about them still are. One stored before the refusal was
applied is stripped of the person and joins no profile. A person with no choice on record is
tracked as the shop's pages send it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from rapport.customers.models import CustomerTraits
from rapport.events.models import Event
from rapport.events.processors import GAP_PATIENCE
from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTEXT = {"ip": "203.0.113.9", "page": {"path": "/shoes"}}
SEGMENT_CONTEXT = {**CONTEXT, "userAgent": "Mozilla/5.0 (X11)"}


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.set_clock(lambda: NOW)


def _segment(message_id: str, kind: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "messageId": message_id,
        "timestamp": NOW.isoformat(),
        "context": SEGMENT_CONTEXT,
        **fields,
    }
    return body


def _stored(db, event_id: str) -> Event | None:  # type: ignore[no-untyped-def]
    return db.scalar(select(Event).where(Event.event_id == event_id))


def _choice(event_id: str, granted: bool, **person: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "consent_changed",
        "channel": "web",
        "occurred_at": NOW.isoformat(),
        "properties": {"purpose": "analytics", "granted": granted, "source": "banner"},
        **person,
    }


def _page(event_id: str, **person: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "page_viewed",
        "channel": "web",
        "occurred_at": NOW.isoformat(),
        "context": CONTEXT,
        **person,
    }


def _processed(db) -> None:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW + GAP_PATIENCE + timedelta(seconds=1))
    process(db)


def _traits(db, customer_id: str) -> CustomerTraits | None:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.get(CustomerTraits, customer_id)


def test_a_refusal_stops_tracking_at_once(client, api_key, db) -> None:
    writer, key = api_key("write"), api_key("ingest")
    made = client.post("/v1/customers", json={"external_id": "AN-1"}, headers=command(writer))
    assert made.status_code == 201, made.text
    customer_id = made.json()["customer_id"]
    refused = client.put(
        f"/v1/customers/{customer_id}/consents/analytics",
        json={"granted": False},
        headers=auth(writer),
    )
    assert refused.status_code == 200, refused.text
    _processed(db)
    before = _traits(db, customer_id)
    counted = before.event_count if before is not None else 0

    tracked = client.post(
        "/v1/track",
        json=_segment("t-1", "track", userId="AN-1", event="Product Viewed"),
        headers=basic_auth(key),
    )
    paged = client.post(
        "/v1/page", json=_segment("t-2", "page", userId="AN-1"), headers=basic_auth(key)
    )
    screened = client.post(
        "/v1/screen", json=_segment("t-3", "screen", userId=customer_id), headers=basic_auth(key)
    )
    assert [r.status_code for r in (tracked, paged, screened)] == [200, 200, 200]
    single = client.post("/v1/events", json=_page("t-4", customer_id="AN-1"), headers=auth(key))
    assert single.status_code == 202, single.text
    assert single.json() == {"event_id": "t-4", "position": None, "duplicate": False}
    batch = [
        _page("t-5", customer_id="AN-1"),
        {**_choice("t-6", False), "customer_id": "AN-1"},  # a choice is always kept
        {
            "event_id": "t-7",
            "type": "identified",
            "channel": "web",
            "occurred_at": NOW.isoformat(),
            "customer_id": "AN-1",
            "properties": {"traits": {"first_name": "Ana"}},
        },
    ]
    answer = client.post("/v1/events/batch", json={"events": batch}, headers=auth(key))
    assert answer.json()["accepted"] == 3, answer.text

    assert [_stored(db, e) is None for e in ("t-1", "t-2", "t-3", "t-4", "t-5")] == [True] * 5
    assert _stored(db, "t-6") is not None
    assert _stored(db, "t-7") is not None
    _processed(db)
    traits = _traits(db, customer_id)
    assert traits is not None
    assert traits.event_count == counted + 2  # the choice and the identify call, no browsing


def test_no_choice_on_record_is_tracked_and_a_grant_too(client, api_key, db) -> None:
    writer, key = api_key("write"), api_key("ingest")
    client.post("/v1/customers", json={"external_id": "AN-2"}, headers=command(writer))
    made = client.post(
        "/v1/customers",
        json={"external_id": "AN-3", "consents": {"analytics": True}},
        headers=command(writer),
    )
    granted = made.json()["customer_id"]
    events = [_page("n-1", customer_id="AN-2"), _page("n-2", customer_id="AN-3")]
    answer = client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert answer.json()["accepted"] == 2, answer.text
    assert _stored(db, "n-1") is not None
    stored = _stored(db, "n-2")
    assert stored is not None
    assert stored.context["ip"] == "203.0.113.9"
    _processed(db)
    db.expire_all()
    assert _stored(db, "n-2").customer_id == granted  # type: ignore[union-attr]


def test_an_anonymous_visitor_who_refused_in_a_banner_is_not_tracked(client, api_key, db) -> None:
    key = api_key("ingest")
    # the refusal and a page view in one batch: the refusal counts for the events after it
    events = [_page("a-1", anonymous_id="anon-a"), _choice("a-2", False, anonymous_id="anon-a")]
    events.append(_page("a-3", anonymous_id="anon-a"))
    answer = client.post("/v1/events/batch", json={"events": events}, headers=auth(key))
    assert answer.json()["accepted"] == 3, answer.text
    assert _stored(db, "a-1") is not None
    assert _stored(db, "a-3") is None
    _processed(db)

    # later, once the refusal is on record
    later = client.post(
        "/v1/page", json=_segment("a-4", "page", anonymousId="anon-a"), headers=basic_auth(key)
    )
    assert later.status_code == 200, later.text
    assert _stored(db, "a-4") is None


def test_browsing_stored_before_the_refusal_was_applied_joins_no_profile(
    client, api_key, db
) -> None:
    key = api_key("ingest")
    refusal = client.post(
        "/v1/events", json=_choice("p-1", False, anonymous_id="anon-p"), headers=auth(key)
    )
    assert refusal.status_code == 201, refusal.text
    # sent before the profile processor applied the refusal: ingestion cannot know of it yet
    page = client.post("/v1/events", json=_page("p-2", anonymous_id="anon-p"), headers=auth(key))
    assert page.status_code == 201, page.text
    position = page.json()["position"]
    _processed(db)

    db.expire_all()
    left = db.scalar(select(Event).where(Event.position == position))
    assert left is not None
    assert left.anonymous_id is None
    assert left.user_id is None
    assert left.customer_id is None
    assert "ip" not in left.context
    assert "userAgent" not in left.context
    choice = _stored(db, "p-1")
    assert choice is not None
    assert choice.customer_id is not None
    traits = _traits(db, choice.customer_id)
    assert traits is not None
    assert traits.event_count == 1
