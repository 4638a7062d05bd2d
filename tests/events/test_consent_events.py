"""Tracked consent_changed events are the choice the API's PUT takes: a purpose Rapport
knows, a JSON true or false, a source of at most 60 characters; anything else is 422 naming
the property, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.events.models import Event
from rapport.platform import clock
from tests.conftest import auth
from tests.events.factories import basic_auth


def _stored(db) -> int:
    return db.scalar(select(func.count()).select_from(Event).where(Event.type == "consent_changed"))


@pytest.mark.parametrize(
    ("properties", "field", "code"),
    [
        (
            {"purpose": "marketing_sms", "granted": False, "source": "x"},
            "properties.purpose",
            "literal_error",
        ),
        ({"purpose": "marketing_push", "granted": "no"}, "properties.granted", "bool_type"),
        ({"purpose": "marketing_push"}, "properties.granted", "missing"),
        ({"granted": True}, "properties.purpose", "missing"),
        (
            {"purpose": "analytics", "granted": True, "source": "s" * 300},
            "properties.source",
            "string_too_long",
        ),
        (
            {"purpose": "analytics", "granted": True, "source": "  "},
            "properties.source",
            "string_too_short",
        ),
    ],
)
def test_a_tracked_consent_that_is_no_choice_is_refused(
    client, api_key, db, properties, field, code
):
    key = api_key("ingest")
    body = {
        "event_id": "c-1",
        "type": "consent_changed",
        "channel": "web",
        "customer_id": "T-wanda",
        "occurred_at": clock.now().isoformat(),
        "properties": properties,
    }
    answer = client.post("/v1/events", json=body, headers=auth(key))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["errors"][0]["code"] == code
    batch = client.post("/v1/events/batch", json={"events": [body]}, headers=auth(key))
    assert batch.status_code == 200
    assert batch.json()["rejected"] == 1
    basic = basic_auth(key)
    segment = client.post(
        "/v1/track",
        json={"userId": "T-wanda", "event": "Consent Changed", "properties": properties},
        headers=basic,
    )
    assert segment.status_code == 422, segment.text
    assert segment.json()["field"] == field
    assert _stored(db) == 0


def test_a_tracked_consent_without_a_source_is_taken(client, api_key, db) -> None:
    key = api_key("ingest")
    body = {
        "event_id": "c-2",
        "type": "consent_changed",
        "channel": "web",
        "anonymous_id": "anon-1",
        "occurred_at": clock.now().isoformat(),
        "properties": {"purpose": "analytics", "granted": True, "banner": "v2"},
    }
    assert client.post("/v1/events", json=body, headers=auth(key)).status_code == 201
    assert _stored(db) == 1


def test_a_public_key_may_withdraw_but_not_grant_marketing(client, api_key, db) -> None:
    public, server = api_key("ingest"), api_key("ingest", "write")

    def body(event_id: str, purpose: str, granted: bool) -> dict:  # type: ignore[type-arg]
        return {
            "event_id": event_id,
            "type": "consent_changed",
            "channel": "web",
            "customer_id": "T-wanda",
            "occurred_at": clock.now().isoformat(),
            "properties": {"purpose": purpose, "granted": granted, "source": "banner"},
        }

    forged = client.post(
        "/v1/events", json=body("f-1", "marketing_email", True), headers=auth(public)
    )
    assert forged.status_code == 422, forged.text
    assert forged.json()["field"] == "properties.granted"
    assert forged.json()["errors"][0]["code"] == "grant_needs_write_scope"
    batch = client.post(
        "/v1/events/batch",
        json={
            "events": [body("f-2", "marketing_push", True), body("w-1", "marketing_push", False)]
        },
        headers=auth(public),
    )
    assert batch.status_code == 200
    assert batch.json()["rejected"] == 1
    basic = basic_auth(public)
    segment = client.post(
        "/v1/track",
        json={
            "userId": "T-wanda",
            "event": "Consent Changed",
            "properties": {"purpose": "marketing_email", "granted": True},
        },
        headers=basic,
    )
    assert segment.status_code == 422, segment.text
    assert segment.json()["field"] == "properties.granted"
    # withdrawals, and a cookie banner's analytics grant, are taken from the public key
    for event_id, purpose, granted in (
        ("w-2", "marketing_email", False),
        ("a-1", "analytics", True),
    ):
        answer = client.post(
            "/v1/events", json=body(event_id, purpose, granted), headers=auth(public)
        )
        assert answer.status_code == 201, answer.text
    # the shop's server may grant marketing
    granted = client.post(
        "/v1/events", json=body("s-1", "marketing_email", True), headers=auth(server)
    )
    assert granted.status_code == 201, granted.text
    assert _stored(db) == 4
