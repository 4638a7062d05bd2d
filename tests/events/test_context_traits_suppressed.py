"""An erased person's email or phone arriving in a track call's context.traits (the copy an
SDK keeps) is refused as suppressed, as in an identify call's traits: nothing is stored."""

from __future__ import annotations

import json

from sqlalchemy import select

from rapport.events.models import Event
from tests.conftest import auth, command
from tests.events.factories import basic_auth


def test_an_erased_persons_email_in_context_traits_is_refused(client, api_key, db) -> None:
    key = api_key("write", "admin", "ingest")
    basic = basic_auth(key)
    made = client.post(
        "/v1/customers",
        json={"email": "zelda.ctx@example.com", "phone": "+33 6 11 22 33 44"},
        headers=command(key),
    )
    assert made.status_code == 201, made.text
    erased = client.post(
        f"/v1/customers/{made.json()['customer_id']}/erase",
        json={"requested_by": "DPO"},
        headers=command(key),
    )
    assert erased.status_code == 200, erased.text
    for trait, value in (("email", "Zelda.Ctx@example.com"), ("phone", "+33611223344")):
        message = {
            "anonymousId": f"new-browser-{trait}",
            "event": "Product Viewed",
            "properties": {"sku": "W-1"},
            "context": {"traits": {trait: value}},
        }
        answer = client.post("/v1/track", json=message, headers=basic)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == f"context.traits.{trait}"
        assert answer.json()["errors"][0]["code"] == "suppressed"
        batch = client.post(
            "/v1/batch", json={"batch": [{**message, "type": "track"}]}, headers=basic
        )
        assert batch.status_code == 200
    stored = json.dumps([e.context for e in db.scalars(select(Event))])
    assert "zelda.ctx" not in stored.lower()
    assert "11223344" not in stored


def test_an_erased_persons_email_in_properties_is_refused(client, api_key, db) -> None:
    key = api_key("write", "admin", "ingest")
    basic = basic_auth(key)
    made = client.post(
        "/v1/customers",
        json={"external_id": "ZELDA-9", "email": "zelda.keyed@zqmail.test"},
        headers=command(key),
    )
    assert made.status_code == 201, made.text
    erased = client.post(
        "/v1/customers/ZELDA-9/erase", json={"requested_by": "DPO"}, headers=command(key)
    )
    assert erased.status_code == 200, erased.text

    # a Segment track naming the erased email in its properties
    track = {
        "event": "Newsletter Signup",
        "anonymousId": "anon-nb4",
        "properties": {"email": "Zelda.Keyed@zqmail.test"},
    }
    answer = client.post("/v1/track", json=track, headers=basic)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == "properties.email"
    assert answer.json()["errors"][0]["code"] == "suppressed"
    # and a native event
    native = client.post(
        "/v1/events",
        json={
            "event_id": "nb-1",
            "type": "newsletter_signup",
            "anonymous_id": "anon-nb5",
            "channel": "web",
            "occurred_at": "2026-01-01T10:00:00Z",
            "properties": {"email": "zelda.keyed@zqmail.test"},
        },
        headers=auth(key),
    )
    assert native.status_code == 422, native.text
    assert native.json()["field"] == "properties.email"
    stored = json.dumps([e.properties for e in db.scalars(select(Event))])
    assert "zelda.keyed" not in stored.lower()


def test_a_suppressed_user_id_is_named_as_the_sender_named_it(client, api_key, db) -> None:
    key = api_key("write", "admin", "ingest")
    basic = basic_auth(key)
    made = client.post("/v1/customers", json={"external_id": "ZELDA-8"}, headers=command(key))
    assert made.status_code == 201, made.text
    erased = client.post(
        "/v1/customers/ZELDA-8/erase", json={"requested_by": "DPO"}, headers=command(key)
    )
    assert erased.status_code == 200, erased.text

    answer = client.post("/v1/track", json={"event": "A b", "userId": "ZELDA-8"}, headers=basic)

    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "userId"
    assert problem["detail"].startswith("userId belongs to an erased person")
    assert problem["errors"][0]["message"].startswith("userId belongs")
    batch = client.post(
        "/v1/batch",
        json={"batch": [{"type": "track", "event": "A b", "userId": "ZELDA-8"}]},
        headers=basic,
    )
    assert batch.json()["errors"][0]["message"].startswith("userId belongs"), batch.text
