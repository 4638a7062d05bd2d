"""An erased person's email or phone nested in an event's properties (a form's
``contact.email``, a list of recipients) is refused as a top-level one is: the event is
``422`` suppressed naming where it sits, and nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.identity import identity_digest
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WHEN = (NOW - timedelta(minutes=1)).isoformat()


@pytest.fixture
def erased(db):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW)
    digests = [
        identity_digest("email", "ann@example.com"),
        identity_digest("phone", "+33611223344"),
    ]
    events.suppress_identities(db, digests=digests)
    db.commit()


NESTED: list[tuple[dict[str, Any], str]] = [
    ({"contact": {"email": " Ann@Example.COM "}}, "properties.contact.email"),
    ({"customer": {"profile": {"email": "ann@example.com"}}}, "properties.customer.profile.email"),
    ({"form": {"reply_to": "ann@example.com"}}, "properties.form.reply_to"),
    ({"recipients": ["bob@example.com", "ann@example.com"]}, "properties.recipients.1"),
    ({"contact": {"mobile_phone": "+33 6 11 22 33 44"}}, "properties.contact.mobile_phone"),
]


@pytest.mark.usefixtures("erased")
@pytest.mark.parametrize(("properties", "field"), NESTED)
def test_a_nested_erased_contact_is_refused_on_post_events(
    client, api_key, db, properties, field
) -> None:
    # when a tracked event carries the erased person's contact nested in its properties
    event = {
        "event_id": "e-1",
        "type": "form_submitted",
        "channel": "web",
        "occurred_at": WHEN,
        "anonymous_id": "anon-1",
        "properties": properties,
    }
    answer = client.post("/v1/events", json=event, headers=auth(api_key("ingest")))

    # then it is refused naming where it sits, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert (answer.json()["field"], answer.json()["errors"][0]["code"]) == (field, "suppressed")
    assert events.count_events(db) == 0


@pytest.mark.usefixtures("erased")
def test_a_nested_erased_email_is_refused_from_segment(client, api_key, db) -> None:
    # when a Segment track and an identify carry it nested
    basic = basic_auth(api_key("ingest"))
    track = {
        "anonymousId": "anon-1",
        "event": "Newsletter Signup",
        "messageId": "m-1",
        "properties": {"contact": {"email": "ann@example.com"}},
    }
    identify = {
        "anonymousId": "anon-1",
        "messageId": "m-2",
        "traits": {"other_emails": ["bob@example.com", "ann@example.com"]},
    }
    tracked = client.post("/v1/track", json=track, headers=basic)
    identified = client.post("/v1/identify", json=identify, headers=basic)

    # then both are refused naming the field as sent, nothing stored
    assert tracked.status_code == 422, tracked.text
    assert tracked.json()["field"] == "properties.contact.email"
    assert identified.status_code == 422, identified.text
    assert identified.json()["field"] == "traits.other_emails.1"
    assert events.count_events(db) == 0


@pytest.mark.usefixtures("erased")
def test_other_nested_text_is_stored(client, api_key, db) -> None:
    # when an event's nested properties name someone else and hold ordinary text
    event = {
        "event_id": "e-2",
        "type": "form_submitted",
        "channel": "web",
        "occurred_at": WHEN,
        "anonymous_id": "anon-1",
        "properties": {"contact": {"email": "bob@example.com", "note": "call +33 6 11 22 33 44"}},
    }
    answer = client.post("/v1/events", json=event, headers=auth(api_key("ingest")))

    # then it is stored
    assert answer.status_code == 201, answer.text
    assert events.count_events(db) == 1
