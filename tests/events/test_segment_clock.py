"""Times in Segment messages: a device's clock corrected by sentAt in a batch as in a single
call, the batch envelope's sentAt and context checked as a single call's, and the earliest
time taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.events.segment import to_event
from rapport.platform import clock
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_a_phone_running_ten_minutes_fast_keeps_its_events(client, api_key, db) -> None:
    # given a phone whose clock is 10 minutes ahead: it stamped two events 30 s and 2 s before
    # it sent the batch (analytics-swift: each event's timestamp, the batch's sentAt)
    clock.set_clock(lambda: NOW)
    fast = NOW + timedelta(minutes=10)
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Cart Viewed",
                "userId": "u-1",
                "messageId": "a-1",
                "timestamp": iso(fast - timedelta(seconds=30)),
            },
            {
                "type": "screen",
                "name": "Home",
                "userId": "u-1",
                "messageId": "a-2",
                "timestamp": iso(fast - timedelta(seconds=2)),
            },
        ],
        "sentAt": iso(fast),
    }

    # when it arrives at noon
    response = client.post("/v1/batch", json=body, headers=basic_auth(api_key("ingest")))

    # then both are kept, at when they happened by Rapport's clock (they were refused as
    # clock_skew, more than 5 minutes in the future)
    assert response.json()["accepted"] == 2, response.text
    stored = db.execute(select(Event.event_id, Event.occurred_at).order_by(Event.position))
    assert [(event_id, clock.as_utc(at)) for event_id, at in stored] == [
        ("a-1", NOW - timedelta(seconds=30)),
        ("a-2", NOW - timedelta(seconds=2)),
    ]


def test_a_single_call_s_timestamp_is_corrected_when_its_device_runs_fast() -> None:
    # given a device 1 hour ahead, that stamped the event 5 s before sending it
    message = {
        "userId": "u",
        "event": "A B",
        "timestamp": "2026-06-01T12:59:55Z",
        "sentAt": "2026-06-01T13:00:00Z",
    }

    # then it happened 5 s before it arrived; without sentAt the timestamp is taken as sent
    event = to_event(message, kind="track", received_at=NOW)
    assert event["occurred_at"] == NOW - timedelta(seconds=5)  # type: ignore[index]
    alone = {key: value for key, value in message.items() if key != "sentAt"}
    event = to_event(alone, kind="track", received_at=NOW)
    assert event["occurred_at"] == datetime(2026, 6, 1, 12, 59, 55, tzinfo=UTC)  # type: ignore[index]


@pytest.mark.parametrize(
    ("_case", "sent_at"),
    [
        ("the trip", NOW - timedelta(milliseconds=40)),
        ("a batch resent 2 hours after its first try", NOW - timedelta(hours=2)),
        ("a clock within a second", NOW + timedelta(milliseconds=300)),
    ],
)
def test_a_timestamp_is_taken_as_sent_when_the_device_is_not_ahead(_case, sent_at) -> None:
    # given an event stamped by a device whose clock is right, sent a while later
    stamped = NOW - timedelta(hours=3)
    message = {"userId": "u", "event": "A B", "timestamp": iso(stamped), "sentAt": iso(sent_at)}

    # then it keeps its time: events stamped alike keep their order, a queued one its time
    event = to_event(message, kind="track", received_at=NOW)
    assert event["occurred_at"] == stamped  # type: ignore[index]


@pytest.mark.parametrize(
    ("envelope", "field", "code"),
    [
        ({"sentAt": "garbage"}, "sentAt", "datetime_parsing"),
        ({"sentAt": 1780000000}, "sentAt", "string_type"),
        ({"sentAt": "x" * 41}, "sentAt", "string_too_long"),
        ({"sentAt": "1969-12-31T23:59:59Z"}, "sentAt", "too_early"),
        ({"context": ["web"]}, "context", "dict_type"),
        ({"context": {"page": {"url": "x\u0000"}}}, "context.page.url", "nul_character"),
    ],
)
def test_a_bad_batch_envelope_is_refused_as_a_single_call_s_field_is(
    client, api_key, db, envelope, field, code
) -> None:
    # given a batch whose own sentAt or context is wrong
    body = {"batch": [{"type": "track", "event": "A B", "userId": "u"}], **envelope}

    # when it is sent to /v1/batch, and its message alone to /v1/track with the same field
    key = api_key("ingest")
    batch = client.post("/v1/batch", json=body, headers=basic_auth(key))
    single = client.post(
        "/v1/track", json={**body["batch"][0], **envelope}, headers=basic_auth(key)
    )

    # then both are 422 naming the field, and nothing is stored (the batch ignored a bad
    # sentAt and stored its messages)
    for response in (batch, single):
        assert response.status_code == 422, response.text
        assert (response.json()["field"], response.json()["errors"][0]["code"]) == (field, code)
    assert list(db.scalars(select(Event))) == []


def test_a_time_before_1970_is_refused(client, api_key, db) -> None:
    message = {"event": "A B", "userId": "u", "timestamp": "1969-07-20T20:17:00Z"}
    response = client.post("/v1/track", json=message, headers=basic_auth(api_key("ingest")))
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["field"], error["code"]) == ("timestamp", "too_early")
    assert "check the sending device's clock" in error["message"]
