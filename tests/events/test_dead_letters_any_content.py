"""A rejected tracking message is kept whatever its fields hold: keeping one never depends on
the types of what it sent (a ``type`` that is an object or a list is data, not a key), and one
message that cannot be kept does not lose the rest of its batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from rapport.events import dead_letters
from rapport.events.location import about_a_place, message_without_coordinates
from rapport.events.models import DeadLetter
from rapport.platform import clock
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AHEAD = "2099-01-01T00:00:00Z"

# Any JSON value: what a sender can put in any field of a message.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
SEGMENT_FIELDS = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "event",
    "timestamp",
    "properties",
    "context",
    "traits",
)
NATIVE_FIELDS = (
    "type",
    "event_id",
    "customer_id",
    "anonymous_id",
    "channel",
    "occurred_at",
    "properties",
    "context",
)


def kept(db) -> int:  # type: ignore[no-untyped-def]
    return int(db.scalar(select(func.count()).select_from(DeadLetter)) or 0)


def segment(message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "u1",
        "event": "X",
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
        **fields,
    }


def native(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "product_viewed",
        "customer_id": "C-1",
        "channel": "web",
        "occurred_at": NOW.isoformat(),
        **fields,
    }


def test_a_message_whose_type_is_an_object_is_kept_with_the_rest(client, api_key, db) -> None:
    # given a Segment batch of a message from the far future and one whose type is an object
    clock.set_clock(lambda: NOW)
    batch = [segment("a1", timestamp=AHEAD), segment("a2", type={"a": 1})]

    # when it is sent
    response = client.post(
        "/v1/batch", json={"batch": batch}, headers=basic_auth(api_key("ingest"))
    )

    # then both are refused, and both kept with their reason
    assert response.status_code == 200
    assert response.json()["rejected"] == 2
    letters = list(db.scalars(select(DeadLetter).order_by(DeadLetter.item_index)))
    assert [(letter.item_index, letter.customer_ref) for letter in letters] == [
        (0, "u1"),
        (1, "u1"),
    ]
    assert '"type":{"a":1}' in (letters[1].raw or "")


def test_a_native_event_whose_type_is_a_list_is_kept_with_the_rest(client, api_key, db) -> None:
    # given a native batch of an event from the far future and one whose type is a list
    clock.set_clock(lambda: NOW)
    batch = [native("e-0", occurred_at=AHEAD), native("e-1", type=["x"])]

    # when it is sent
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then both are kept
    assert response.json()["rejected"] == 2
    assert kept(db) == 2


def test_no_type_is_about_a_place_but_a_name() -> None:
    assert about_a_place("venue_event")
    assert not about_a_place({"a": 1})
    assert not about_a_place(["venue_event"])
    assert not about_a_place(None)
    assert message_without_coordinates({"type": {"a": 1}, "properties": {"lat": 1, "lon": 2}}) == {
        "type": {"a": 1},
        "properties": {},
    }


def test_a_message_that_cannot_be_kept_does_not_lose_the_others(db, monkeypatch) -> None:
    # given a batch's rejections, one of which fails to be made a row
    clock.set_clock(lambda: NOW)
    real = dead_letters.message_without_coordinates

    def failing(message: Any) -> Any:
        if isinstance(message, dict) and message.get("messageId") == "bad":
            raise RuntimeError("cannot read this one")
        return real(message)

    monkeypatch.setattr(dead_letters, "message_without_coordinates", failing)
    rejections = [
        dead_letters.Rejection(0, "clock_skew", "timestamp", "ahead", segment("good-0")),
        dead_letters.Rejection(1, "type_error", "type", "bad type", segment("bad")),
        dead_letters.Rejection(2, "clock_skew", "timestamp", "ahead", segment("good-2")),
    ]

    # when they are recorded
    dead_letters.record(
        db,
        rejections,
        endpoint="/v1/batch",
        api_key_id=None,
        names={"event_id": "messageId", "customer_id": "userId", "anonymous_id": "anonymousId"},
        keep=100,
        max_bytes=1000,
        total=3,
    )

    # then the others are kept whole, and the one that could not be read with its reason
    letters = list(db.scalars(select(DeadLetter).order_by(DeadLetter.item_index)))
    assert [(letter.item_index, letter.reason, letter.event_id) for letter in letters] == [
        (0, "clock_skew", "good-0"),
        (1, "type_error", None),
        (2, "clock_skew", "good-2"),
    ]
    assert letters[1].raw is None
    assert "good-2" in (letters[2].raw or "")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(SEGMENT_FIELDS), value=JSON)
def test_every_rejected_segment_message_is_kept(client, api_key, db, field, value) -> None:
    # given a batch of a message from the far future and one with any JSON value in a field
    clock.set_clock(lambda: NOW)
    batch = [segment("p0", timestamp=AHEAD), segment("p1") | {field: value}]
    before = kept(db)

    # when it is sent
    response = client.post(
        "/v1/batch", json={"batch": batch}, headers=basic_auth(api_key("ingest"))
    )

    # then every message it refused is kept
    assert response.status_code == 200, response.text
    assert kept(db) - before == response.json()["rejected"] >= 1


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(NATIVE_FIELDS), value=JSON)
def test_every_rejected_native_event_is_kept(client, api_key, db, field, value) -> None:
    # given a batch of an event from the far future and one with any JSON value in a field
    clock.set_clock(lambda: NOW)
    batch = [native("n0", occurred_at=AHEAD), native("n1") | {field: value}]
    before = kept(db)

    # when it is sent
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then every event it refused is kept
    assert response.status_code == 200, response.text
    assert kept(db) - before == response.json()["rejected"] >= 1
