"""A Segment message is stored once per messageId; without one its id is a digest of the
message (less ``sentAt`` and ``writeKey``), so a retry is a duplicate, and so is an identical
message sent later without ``timestamp``: two events alike need their own messageId or
timestamp (docs/tracking.md, one event per message)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from rapport.events.models import Event
from rapport.platform import clock
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLICK = {"type": "track", "userId": "u-1", "event": "Button Clicked", "properties": {"b": 1}}


def _stored(db) -> int:
    return int(
        db.scalar(select(func.count()).select_from(Event).where(Event.type == "button_clicked"))
    )


def _batch(client, key, *messages, sent_at: datetime) -> tuple[int, int]:
    """(accepted, duplicates) of a /v1/batch."""
    answer = client.post(
        "/v1/batch",
        json={"batch": list(messages), "sentAt": sent_at.isoformat()},
        headers=basic_auth(key),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["accepted"], answer.json()["duplicates"]


def test_an_identical_message_without_an_id_or_a_time_is_one_event(client, api_key, db) -> None:
    key = api_key("ingest")
    clock.set_clock(lambda: NOW)
    assert _batch(client, key, CLICK, sent_at=NOW) == (1, 0)
    # a retry, sent again two seconds later with a new sentAt: the same event
    clock.set_clock(lambda: NOW + timedelta(seconds=2))
    assert _batch(client, key, CLICK, sent_at=NOW + timedelta(seconds=2)) == (0, 1)
    single = client.post("/v1/track", json=CLICK, headers=basic_auth(key))
    assert single.status_code == 200, single.text
    assert _stored(db) == 1


def test_two_events_alike_are_two_with_their_own_message_id_or_timestamp(
    client, api_key, db
) -> None:
    key = api_key("ingest")
    clock.set_clock(lambda: NOW)
    counts = _batch(
        client,
        key,
        {**CLICK, "messageId": "m-1"},
        {**CLICK, "messageId": "m-2"},
        {**CLICK, "timestamp": (NOW - timedelta(seconds=2)).isoformat()},
        {**CLICK, "timestamp": NOW.isoformat()},
        sent_at=NOW,
    )
    assert counts == (4, 0)
    # and each retried is still one
    assert _batch(client, key, {**CLICK, "messageId": "m-1"}, sent_at=NOW) == (0, 1)
    assert _stored(db) == 4


def test_a_message_with_an_integer_beyond_64_bits_is_refused_not_a_crash(client, api_key) -> None:
    # given messages without messageId carrying a number JSON allows but 64 bits do not hold,
    # in a field the stored event keeps and in one it drops
    key = api_key("ingest")
    clock.set_clock(lambda: NOW)
    for huge in (
        {**CLICK, "properties": {"b": 2**70}},
        {**CLICK, "context": {"app": {"build": 2**70}}},
        {**CLICK, "integrations": {"All": 2**70}},
    ):
        # when it is sent
        answer = client.post(
            "/v1/screen" if "integrations" in huge else "/v1/track",
            json=huge,
            headers=basic_auth(key),
        )
        # then it is answered, never a server error
        assert answer.status_code < 500, answer.text
