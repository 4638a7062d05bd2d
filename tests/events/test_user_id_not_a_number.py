"""A tracked event whose only person is a user id that cannot be a customer number (it holds
'/', or is '.' or '..') would reach nobody: ingestion refuses it naming the field."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.events.models import Event
from tests.conftest import auth
from tests.events.factories import basic_auth


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "alias", "group"])
def test_every_segment_call_naming_only_such_a_user_id_is_422(client, api_key, db, kind) -> None:
    message = {
        "userId": "AB/7",
        "event": "A b",
        "traits": {"firstName": "Ab"},
        "previousId": "old-1",
        "groupId": "g-1",
    }
    answer = client.post(f"/v1/{kind}", json=message, headers=basic_auth(api_key("ingest")))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "userId"
    assert "cannot hold '/'" in answer.json()["detail"]
    batch = client.post(
        "/v1/batch",
        json={"batch": [{**message, "type": kind}]},
        headers=basic_auth(api_key("ingest")),
    )
    assert batch.json()["rejected"] == 1, batch.text
    assert batch.json()["errors"][0]["field"] == "batch.0.userId"
    assert db.scalar(select(func.count()).select_from(Event)) == 0


def test_a_native_event_naming_only_such_a_customer_id_is_422(client, api_key, db) -> None:
    event = {
        "event_id": "e-1",
        "type": "identified",
        "customer_id": "..",
        "channel": "web",
        "occurred_at": "2026-01-01T10:00:00Z",
        "properties": {"traits": {"firstName": "Ab"}},
    }
    answer = client.post("/v1/events", json=event, headers=auth(api_key("ingest")))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "customer_id"
    batch = client.post(
        "/v1/events/batch", json={"events": [event]}, headers=auth(api_key("ingest"))
    )
    assert batch.json()["rejected"] == 1, batch.text
    assert db.scalar(select(func.count()).select_from(Event)) == 0


def test_with_a_visitor_id_the_event_is_the_visitors(client, api_key, db) -> None:
    message = {"userId": "AB/7", "anonymousId": "anon-7", "traits": {"firstName": "Ab"}}
    answer = client.post("/v1/identify", json=message, headers=basic_auth(api_key("ingest")))
    assert answer.status_code == 200, answer.text
