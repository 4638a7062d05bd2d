"""A custom trait a trusted source emptied with ``null`` is a value said: the public
(ingest-only) key may not set it again, as it may not replace any value a trusted source said
(tracking.md, *Who may change a customer's contact details*)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth


def _identify(client, secret: str, message_id: str, traits: dict[str, Any], ago: int) -> None:  # type: ignore[no-untyped-def]
    message = {
        "userId": "C0000002",
        "messageId": message_id,
        "timestamp": (clock.now() - timedelta(minutes=ago)).isoformat(),
        "traits": traits,
    }
    answer = client.post("/v1/identify", json=message, headers=basic_auth(secret))
    assert answer.status_code == 200, answer.text


def _attributes(client, reader: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    found = client.get("/v1/customers/C0000002", headers=auth(reader))
    assert found.status_code == 200, found.text
    return dict(found.json()["attributes"] or {})


def test_the_public_key_cannot_set_a_trait_the_shop_emptied(client, api_key, db) -> None:
    # given a customer whose custom trait the shop's server set, then emptied with null
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    server = api_key("ingest", "write")
    body = {"external_id": "C0000002", "email": "vic@example.com"}
    assert client.post("/v1/customers", json=body, headers=command(writer)).status_code == 201
    _identify(client, server, "srv-1", {"vip": True}, ago=30)
    _identify(client, server, "srv-2", {"vip": None}, ago=20)
    process(db)
    assert _attributes(client, reader).get("vip") is None

    # when someone with the page's key sets it again
    _identify(client, public, "pub-1", {"vip": True}, ago=10)
    process(db)

    # then it stays empty
    assert _attributes(client, reader).get("vip") is None


def test_the_public_key_still_fills_a_trait_nobody_said(client, api_key, db) -> None:
    # given a customer the shop knows, with no custom trait said
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    body = {"external_id": "C0000002", "email": "vic@example.com"}
    assert client.post("/v1/customers", json=body, headers=command(writer)).status_code == 201

    # when the page's key says one, then changes its own value
    _identify(client, public, "pub-1", {"newsletter_lang": "fr"}, ago=10)
    process(db)
    _identify(client, public, "pub-2", {"newsletter_lang": "de"}, ago=5)
    process(db)

    # then it holds the page's latest
    assert _attributes(client, reader)["newsletter_lang"] == "de"
