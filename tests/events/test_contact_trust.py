"""A key that may only ingest (the one a shop's pages and apps carry, readable by anyone)
cannot take over a known customer: its identify, alias and context traits never change an
existing customer's contact email and phone, names or identities (customer numbers are easy
to guess). The event is still stored and answered as usual, so an SDK's batch goes through; a
new customer's sign-up may still set them, and a key that may also write changes them."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth

ATTACKER = {"email": "attacker@evil.io", "first_name": "Hacked", "phone": "+33611112222"}


def _known(client, writer: str, number: str = "C0000002", **contact: str) -> None:  # type: ignore[no-untyped-def]
    details = contact or {"email": "vic@example.com", "phone": "+33600000002", "first_name": "Vic"}
    created = client.post(
        "/v1/customers", json={"external_id": number, **details}, headers=command(writer)
    )
    assert created.status_code == 201, created.text


def _profile(client, reader: str, ref: str = "C0000002") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    found = client.get(f"/v1/customers/{ref}", headers=auth(reader))
    assert found.status_code == 200, found.text
    return found.json()


def _contact(profile: dict[str, Any]) -> tuple[Any, ...]:
    values = sorted(i["value"] for i in profile["identities"] if i["kind"] != "anonymous_id")
    return profile["email"], profile["phone"], profile["first_name"], values


def _lookup(client, reader: str, kind: str, value: str) -> int:  # type: ignore[no-untyped-def]
    params = {"kind": kind, "value": value}
    return client.get("/v1/customers/lookup", params=params, headers=auth(reader)).status_code


def _identify(route: str, message_id: str, traits: dict[str, Any], user_id: str = "C0000002"):  # type: ignore[no-untyped-def]
    """The call's path and body on each wire shape."""
    if route == "/v1/events":
        return route, {
            "event_id": message_id,
            "type": "identified",
            "channel": "web",
            "customer_id": user_id,
            "occurred_at": clock.now().isoformat(),
            "properties": {"traits": traits},
        }
    message = {"type": "identify", "userId": user_id, "messageId": message_id, "traits": traits}
    if route == "/v1/batch":
        return route, {"batch": [message]}
    return route, message


def _send(client, secret: str, route: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    headers = auth(secret) if route == "/v1/events" else basic_auth(secret)
    return client.post(route, json=body, headers=headers)


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch", "/v1/events"])
def test_a_public_key_cannot_take_over_a_known_customers_contact(
    client, api_key, db, route
) -> None:
    # given a known customer, with their email, phone and name
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _known(client, writer)
    before = _contact(_profile(client, reader))

    # when someone with the page's key says the attacker's details are theirs
    answer = _send(client, public, *_identify(route, "aj-id-1", ATTACKER))
    process(db)

    # then the call is answered as usual (an SDK's batch goes through) ...
    assert answer.status_code in (200, 201), answer.text
    if route == "/v1/batch":
        assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 0)
    # ... and the customer keeps their own contact details, names and identities
    assert _contact(_profile(client, reader)) == before
    assert _lookup(client, reader, "email", ATTACKER["email"]) == 404
    assert _lookup(client, reader, "phone", ATTACKER["phone"]) == 404


def test_a_public_key_cannot_give_a_customer_an_email_they_lack(client, api_key, db) -> None:
    # given a known customer with no email and no name
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _known(client, writer, phone="+33600000002")

    # when the page's key names an email and a name for them
    answer = _send(client, public, "/v1/identify", _identify("/v1/identify", "i-1", ATTACKER)[1])
    assert answer.status_code == 200
    process(db)

    # then none is added
    assert _contact(_profile(client, reader)) == (
        None,
        "+33600000002",
        None,
        ["+33600000002", "C0000002"],
    )
    assert _lookup(client, reader, "email", ATTACKER["email"]) == 404


def test_a_mixed_batch_from_a_public_key_keeps_its_sign_ups_and_events(client, api_key, db) -> None:
    # given a known customer
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _known(client, writer)
    before = _contact(_profile(client, reader))

    # when the page's key sends a batch: a takeover, a page view, a new customer's sign-up,
    # an alias and a track whose context carries the attacker's name
    batch = [
        {"type": "identify", "userId": "C0000002", "messageId": "m-0", "traits": ATTACKER},
        {"type": "page", "userId": "C0000002", "messageId": "m-1", "name": "Home"},
        {
            "type": "identify",
            "userId": "C0000999",
            "messageId": "m-2",
            "traits": {"email": "new@example.com", "firstName": "Nia"},
        },
        {"type": "alias", "userId": "C0000002", "previousId": "X-EVIL", "messageId": "m-3"},
        {
            "type": "track",
            "userId": "C0000002",
            "event": "Viewed",
            "messageId": "m-4",
            "context": {"traits": {"firstName": "Hacked", "lastName": "Again"}},
        },
    ]
    answer = client.post("/v1/batch", json={"batch": batch}, headers=basic_auth(public))
    process(db)

    # then every message is stored ...
    assert answer.status_code == 200, answer.text
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (5, 0)
    # ... the known customer is unchanged (no user id of the attacker's either) ...
    after = _profile(client, reader)
    assert _contact(after) == before
    assert after["last_name"] is None
    assert _lookup(client, reader, "external_id", "X-EVIL") == 404
    # ... and the new customer signed up with their email and name
    assert _contact(_profile(client, reader, "C0000999")) == (
        "new@example.com",
        None,
        "Nia",
        ["C0000999", "new@example.com"],
    )


def test_a_public_key_cannot_sign_a_visitor_in_by_a_known_email(client, api_key, db) -> None:
    # given a known customer
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _known(client, writer)
    before = _contact(_profile(client, reader))

    # when the page's key says an anonymous visitor has the customer's email
    message = {
        "anonymousId": "anon-evil",
        "messageId": "a-1",
        "traits": {"email": "vic@example.com", "firstName": "Hacked"},
    }
    assert client.post("/v1/identify", json=message, headers=basic_auth(public)).status_code == 200
    process(db)

    # then the visitor is not joined to the customer, whose details stay theirs
    profile = _profile(client, reader)
    assert _contact(profile) == before
    assert "anon-evil" not in [i["value"] for i in profile["identities"]]


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/events"])
def test_a_key_that_may_write_still_changes_contact_details(client, api_key, db, route) -> None:
    # given a known customer
    writer, reader = api_key("write"), api_key("read")
    server = api_key("ingest", "write")
    _known(client, writer)

    # when the shop's server (its key may also write) sends their new details
    new = {"email": "vic.new@example.com", "first_name": "Victoria", "phone": "+33600000099"}
    answer = _send(client, server, *_identify(route, "s-1", new))
    assert answer.status_code in (200, 201), answer.text
    process(db)

    # then they are applied, and the new email finds the customer
    profile = _profile(client, reader)
    assert (profile["email"], profile["phone"], profile["first_name"]) == (
        "vic.new@example.com",
        "+33600000099",
        "Victoria",
    )
    assert _lookup(client, reader, "email", "vic.new@example.com") == 200
