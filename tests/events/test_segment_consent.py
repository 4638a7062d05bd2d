"""Segment Consent Management's consent object (``context.consent.categoryPreferences``) is
honoured as the same key's "Consent Changed" would be: a category refused refuses its
purposes (Analytics: analytics, so the message itself is not stored; Functional:
personalization; Advertising names none: ad cookies are not the newsletter's opt-in), a
category granted grants only on "Segment Consent Preference Updated" (docs/tracking.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.events.processors import GAP_PATIENCE
from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> None:
    clock.set_clock(lambda: NOW)


def _message(message_id: str, kind: str = "page", **preferences: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "messageId": message_id,
        "anonymousId": "anon-c",
        "timestamp": NOW.isoformat(),
        "context": {"page": {"path": "/shoes"}},
    }
    if kind == "track":
        body["event"] = "Segment Consent Preference Updated"
    if preferences:
        body["context"]["consent"] = {"categoryPreferences": preferences}
    return body


def _log(db) -> list[tuple[str, str, Any]]:  # type: ignore[no-untyped-def]
    rows = db.execute(select(Event.event_id, Event.type, Event.properties).order_by(Event.position))
    return [
        (event_id, type_, (props.get("purpose"), props.get("granted"), props.get("source")))
        if type_ == "consent_changed"
        else (event_id, type_, None)
        for event_id, type_, props in rows
    ]


def _processed(db) -> None:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW + GAP_PATIENCE + timedelta(seconds=1))
    process(db)
    clock.set_clock(lambda: NOW)


def test_a_refused_category_is_a_refusal_and_the_message_is_not_kept(client, api_key, db) -> None:
    key = basic_auth(api_key("ingest"))

    # when a visitor's page view says they refused analytics and advertising, and granted
    # personalization (a plain message: not a grant)
    refused = _message("c-1", Analytics=False, Advertising=False, Functional=True)
    assert client.post("/v1/page", json=refused, headers=key).status_code == 200
    _processed(db)
    # and a later page view says nothing of consent, and one is sent again
    assert client.post("/v1/page", json=_message("c-2"), headers=key).status_code == 200
    assert client.post("/v1/page", json=refused, headers=key).status_code == 200

    # then the analytics refusal is stored (not the grant, and nothing for advertising: a
    # refusal of ad cookies leaves the newsletter's opt-in alone), and no page view at all
    assert _log(db) == [
        ("c-1:consent:analytics", "consent_changed", ("analytics", False, "segment-consent")),
    ]


def test_a_preference_update_grants_back_what_a_page_may_grant(client, api_key, db) -> None:
    key = basic_auth(api_key("ingest"))
    batch = [_message("p-1", Analytics=False), _message("p-2", Analytics=False)]
    answer = client.post("/v1/batch", json={"batch": batch}, headers=key)
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (2, 0), answer.text
    _processed(db)

    # when the visitor changes their mind in the banner: analytics and advertising granted
    updated = _message("p-3", "track", Analytics=True, Advertising=True)
    assert client.post("/v1/track", json=updated, headers=key).status_code == 200
    _processed(db)
    assert client.post("/v1/page", json=_message("p-4"), headers=key).status_code == 200

    # then one refusal (not one per message), the grant of analytics (not of marketing), and
    # the update and the page view after it are kept
    assert _log(db) == [
        ("p-1:consent:analytics", "consent_changed", ("analytics", False, "segment-consent")),
        ("p-3:consent:analytics", "consent_changed", ("analytics", True, "segment-consent")),
        ("p-3", "segment_consent_preference_updated", None),
        ("p-4", "page_viewed", None),
    ]


def test_a_customers_refusal_is_on_their_consent_record(client, api_key, db) -> None:
    writer = api_key("write")
    made = client.post("/v1/customers", json={"external_id": "CC-1"}, headers=command(writer))
    assert made.status_code == 201, made.text
    message = {**_message("k-1", Personalization=False, Analytics=True), "userId": "CC-1"}
    del message["anonymousId"]
    server = basic_auth(api_key("ingest", "write"))
    assert client.post("/v1/page", json=message, headers=server).status_code == 200
    _processed(db)

    profile = client.get("/v1/customers/CC-1", headers=auth(api_key("read")))
    assert profile.status_code == 200, profile.text
    consents = profile.json()["consents"]
    chosen = {c["purpose"]: (c["granted"], c["source"]) for c in consents}
    assert chosen["personalization"] == (False, "segment-consent")
    assert "analytics" not in chosen  # a page view's true grants nothing
