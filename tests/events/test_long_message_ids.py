"""An id over 100 characters is refused saying what to send instead (a shorter id, such as
a UUID), on the Segment routes (messageId) and the events API (event_id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import auth
from tests.events.factories import basic_auth

LONG = "m" * 101


def test_a_message_id_over_100_characters_says_to_send_a_shorter_one(client, api_key) -> None:
    key = api_key("ingest")
    message = {"userId": "C-1", "event": "Button Clicked", "messageId": LONG}

    single = client.post("/v1/track", json=message, headers=basic_auth(key))
    batch = client.post(
        "/v1/batch", json={"batch": [{**message, "type": "track"}]}, headers=basic_auth(key)
    )

    assert single.status_code == 422, single.text
    error = single.json()["errors"][0]
    assert error["field"] == "messageId"
    assert "at most 100 characters" in error["message"]
    assert "shorter id" in error["message"]
    assert "UUID" in error["message"]
    assert batch.status_code == 200, batch.text
    refused = batch.json()["errors"][0]
    assert refused["field"] == "batch.0.messageId"
    assert "UUID" in refused["message"]


def test_an_event_id_over_100_characters_says_to_send_a_shorter_one(client, api_key) -> None:
    event = {
        "event_id": LONG,
        "type": "product_viewed",
        "customer_id": "C-1",
        "channel": "web",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    }

    answer = client.post("/v1/events", json=event, headers=auth(api_key("ingest")))

    assert answer.status_code == 422, answer.text
    error = answer.json()["errors"][0]
    assert error["field"] == "event_id"
    assert "UUID" in error["message"]
    assert "shorter id" in error["message"]
