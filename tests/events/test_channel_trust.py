"""A key that may only ingest (the one a shop's pages and apps carry, readable by anyone)
cannot claim the till's or the call centre's channel: 422 naming ``channel`` (a Segment
message's ``context.channel``), code ``channel_needs_write_scope``, nothing stored; a key
that may also write (a till, the shop's server) can. Web, app and email stay open to it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.platform import clock
from tests.conftest import auth
from tests.events.factories import basic_auth


def _event(event_id: str, channel: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": "store_visited",
        "channel": channel,
        "customer_id": "T-visitor",
        "occurred_at": clock.now().isoformat(),
        "context": {"store_id": "st-1"},
    }


def _stored(db) -> list[tuple[str, str]]:
    return [tuple(row) for row in db.execute(select(Event.event_id, Event.channel))]


@pytest.mark.parametrize("channel", ["store", "call_center"])
def test_a_public_key_may_not_claim_a_staff_channel(client, api_key, db, channel) -> None:
    public, till = api_key("ingest"), api_key("ingest", "write")
    forged = client.post("/v1/events", json=_event("f-1", channel), headers=auth(public))
    assert forged.status_code == 422, forged.text
    assert forged.json()["field"] == "channel"
    assert [(e["field"], e["code"]) for e in forged.json()["errors"]] == [
        ("channel", "channel_needs_write_scope")
    ]
    batch = client.post(
        "/v1/events/batch",
        json={"events": [_event("f-2", channel), _event("w-1", "web")]},
        headers=auth(public),
    )
    assert batch.status_code == 200, batch.text
    assert (batch.json()["accepted"], batch.json()["rejected"]) == (1, 1)
    assert [(e["field"], e["code"]) for e in batch.json()["results"][0]["errors"]] == [
        ("events.0.channel", "channel_needs_write_scope")
    ]
    # the till's key may
    tilled = client.post("/v1/events", json=_event("t-1", channel), headers=auth(till))
    assert tilled.status_code == 201, tilled.text
    assert sorted(_stored(db)) == [("t-1", channel), ("w-1", "web")]


def test_a_segment_message_from_a_public_key_may_not_claim_the_store(client, api_key, db) -> None:
    public, till = api_key("ingest"), api_key("ingest", "write")
    message = {"userId": "T-visitor", "event": "Store Visited", "context": {"channel": "store"}}
    forged = client.post("/v1/track", json=message, headers=basic_auth(public))
    assert forged.status_code == 422, forged.text
    assert forged.json()["field"] == "context.channel"
    assert forged.json()["errors"][0]["code"] == "channel_needs_write_scope"
    batch = client.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "messageId": "s-1", **message},
                {"type": "track", "messageId": "s-2", "userId": "T-visitor", "event": "Viewed"},
            ]
        },
        headers=basic_auth(public),
    )
    assert batch.status_code == 200, batch.text
    assert [(e["field"], e["code"]) for e in batch.json()["errors"]] == [
        ("batch.0.context.channel", "channel_needs_write_scope")
    ]
    assert _stored(db) == [("s-2", "web")]
    tilled = client.post("/v1/track", json=message, headers=basic_auth(till))
    assert tilled.status_code == 200, tilled.text
    assert {channel for _, channel in _stored(db)} == {"web", "store"}
