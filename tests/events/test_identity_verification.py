"""With ``RAPPORT_IDENTITY_SECRET`` set, the public key's userId counts only with
``context.userHash`` (hex HMAC-SHA256 of the userId under the secret, computed by the shop's
server): without it the userId is ignored and the event kept as its visitor's, so a page
cannot link a visitor to someone else's customer number."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from rapport.events import service as events
from rapport.platform.settings import get_settings
from tests.conftest import auth
from tests.customers.factories import process
from tests.events.factories import basic_auth

SECRET = "s3cret-for-identity-hashes"


def _hash(user_id: str) -> str:
    return hmac.new(SECRET.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def identity_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RAPPORT_IDENTITY_SECRET", SECRET)
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("RAPPORT_IDENTITY_SECRET")
    get_settings.cache_clear()


def _identify(anonymous_id: str, user_id: str, **context: Any) -> dict[str, Any]:
    return {
        "userId": user_id,
        "anonymousId": anonymous_id,
        "messageId": f"m-{anonymous_id}",
        "traits": {"newsletter_language": "fr"},
        "context": context,
    }


def _identities(client, reader: str, ref: str) -> list[str]:  # type: ignore[no-untyped-def]
    found = client.get(f"/v1/customers/{ref}", headers=auth(reader))
    return (
        sorted(i["value"] for i in found.json()["identities"]) if found.status_code == 200 else []
    )


@pytest.mark.usefixtures("identity_secret")
def test_an_unverified_user_id_from_the_public_key_is_ignored(client, api_key, db) -> None:
    public, reader = api_key("ingest"), api_key("read")

    # when the page's key identifies one visitor without a hash, another with a wrong one,
    # and a third with the hash the shop's server computed
    for anonymous_id, context in [
        ("anon-1", {}),
        ("anon-2", {"userHash": _hash("C0000003")}),
        ("anon-3", {"userHash": _hash("C0000004")}),
    ]:
        user_id = "C0000004" if anonymous_id == "anon-3" else "C0000002"
        message = _identify(anonymous_id, user_id, **context)
        answer = client.post("/v1/identify", json=message, headers=basic_auth(public))
        assert answer.status_code == 200, answer.text
    process(db)

    # then only the verified one is linked to its customer number; the others stay visitors
    assert _identities(client, reader, "C0000002") == []
    assert events.get_event(db, event_id="m-anon-1").user_id is None
    assert _identities(client, reader, "C0000004") == ["C0000004", "anon-3"]


@pytest.mark.usefixtures("identity_secret")
def test_native_events_and_write_keys(client, api_key, db) -> None:
    public, server = api_key("ingest"), api_key("ingest", "write")
    event = {
        "event_id": "e-1",
        "type": "page_viewed",
        "channel": "web",
        "customer_id": "C0000002",
        "occurred_at": "2026-06-01T12:00:00+00:00",
    }
    # an unverified user id with no visitor id leaves no one: refused naming the hash
    refused = client.post("/v1/events", json=event, headers=auth(public))
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "context.userHash"
    # with a visitor id the event is kept as theirs
    kept = client.post("/v1/events", json={**event, "anonymous_id": "anon-9"}, headers=auth(public))
    assert kept.status_code == 201, kept.text
    assert events.get_event(db, event_id="e-1").user_id is None
    # a key that may write is trusted as before
    trusted = client.post("/v1/events", json={**event, "event_id": "e-2"}, headers=auth(server))
    assert trusted.status_code == 201, trusted.text
    assert events.get_event(db, event_id="e-2").user_id == "C0000002"


def _native(event_id: str, **context: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "page_viewed",
        "channel": "web",
        "customer_id": "C0000002",
        "occurred_at": "2026-06-01T12:00:00+00:00",
        "context": context,
    }


@pytest.mark.usefixtures("identity_secret")
def test_post_events_takes_context_user_hash(client, api_key, db) -> None:
    # when the page's key sends POST /v1/events with the hash its server computed
    signed = _native("e-1", userHash=_hash("C0000002"))
    kept = client.post("/v1/events", json=signed, headers=auth(api_key("ingest")))

    # then the event is stored as the customer's
    assert kept.status_code == 201, kept.text
    assert events.get_event(db, event_id="e-1").user_id == "C0000002"


@pytest.mark.usefixtures("identity_secret")
@pytest.mark.parametrize("context", [{}, {"userHash": "0" * 64}])
def test_post_events_refusal_names_its_own_fields(client, api_key, db, context) -> None:
    # when the page's key sends a customer_id without the hash, or a wrong one
    unsigned = _native("e-2", **context)
    refused = client.post("/v1/events", json=unsigned, headers=auth(api_key("ingest")))

    # then it is refused naming context.userHash, the message naming customer_id and
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
    assert events.count_events(db) == 0
