"""``POST /v1/events`` takes ``context.userHash`` as the Segment routes do: with
``RAPPORT_IDENTITY_SECRET`` set, an ingest-only key's ``customer_id`` counts with the hash the
shop's server computed, and the refusal without one names the native fields."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from rapport.events import service as events
from rapport.platform.settings import get_settings
from tests.conftest import auth

SECRET = "s3cret-for-native-hashes"


@pytest.fixture
def identity_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RAPPORT_IDENTITY_SECRET", SECRET)
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("RAPPORT_IDENTITY_SECRET")
    get_settings.cache_clear()


def _event(event_id: str, **context: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "page_viewed",
        "channel": "web",
        "customer_id": "C0000002",
        "occurred_at": "2026-06-01T12:00:00+00:00",
        "context": context,
    }


@pytest.mark.usefixtures("identity_secret")
def test_the_public_key_sends_a_verified_customer_id_with_context_user_hash(
    client, api_key, db
) -> None:
    public = api_key("ingest")
    signed = hmac.new(SECRET.encode(), b"C0000002", hashlib.sha256).hexdigest()

    # when the page's key sends the hash its server computed
    kept = client.post("/v1/events", json=_event("e-1", userHash=signed), headers=auth(public))

    # then the event is stored as the customer's
    assert kept.status_code == 201, kept.text
    assert events.get_event(db, event_id="e-1").user_id == "C0000002"


@pytest.mark.usefixtures("identity_secret")
@pytest.mark.parametrize("context", [{}, {"userHash": "0" * 64}])
def test_an_unverified_customer_id_is_refused_naming_the_native_fields(
    client, api_key, db, context
) -> None:
    # when the page's key sends a customer_id without the hash, or a wrong one
    refused = client.post(
        "/v1/events", json=_event("e-2", **context), headers=auth(api_key("ingest"))
    )

    # then it is refused naming context.userHash, and the message names customer_id and
    # anonymous_id as this route calls them
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert (problem["field"], problem["errors"][0]["code"]) == (
        "context.userHash",
        "user_hash_mismatch",
    )
    assert "customer_id" in problem["detail"]
    assert "anonymous_id" in problem["detail"]
    assert "anonymousId" not in problem["detail"]
    assert "userId" not in problem["detail"]
    assert events.count_events(db) == 0
