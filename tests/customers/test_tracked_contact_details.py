"""A tracked identify's contact email and phone obey the rule the API's identities obey
(platform.identity.identity_problem): a national phone number (06 …, no country) or an email
the API would refuse is left out of the profile, and a number written with the 00 prefix is
kept as the + number it is."""

from __future__ import annotations

import pytest

from tests.conftest import auth
from tests.customers.factories import process
from tests.events.factories import basic_auth


def _send(client, secret: str, route: str, user_id: str, traits: dict) -> None:  # type: ignore[no-untyped-def]
    call = {"userId": user_id, "messageId": f"m-{user_id}", "traits": traits}
    body = {"batch": [{**call, "type": "identify"}]} if route == "/v1/batch" else call
    sent = client.post(route, json=body, headers=basic_auth(secret))
    assert sent.status_code == 200, sent.text


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch"])
def test_a_national_phone_never_becomes_the_contact_phone(client, api_key, db, route) -> None:
    ingest, reader = api_key("ingest"), api_key("read")
    _send(client, ingest, route, "NATP-1", {"phone": "06 11 22 33 44", "firstName": "Nat"})
    _send(client, ingest, route, "NATP-2", {"phone": "+06 11 22 33 44"})
    _send(client, ingest, route, "NATP-3", {"phone": "call me"})  # no number the API takes
    _send(client, ingest, route, "INTP-1", {"phone": "0033 6 11 22 33 45"})
    _send(client, ingest, route, "INTP-2", {"phone": "+33 6 11 22 33 46"})
    process(db)

    national = client.get("/v1/customers/NATP-1", headers=auth(reader)).json()
    assert (national["phone"], national["first_name"]) == (None, "Nat")
    assert [i["kind"] for i in national["identities"]] == ["external_id"]
    for other in ("NATP-2", "NATP-3"):
        assert client.get(f"/v1/customers/{other}", headers=auth(reader)).json()["phone"] is None
    prefixed = client.get("/v1/customers/INTP-1", headers=auth(reader)).json()
    assert prefixed["phone"] == "+33611223345"
    assert {(i["kind"], i["value"]) for i in prefixed["identities"]} == {
        ("external_id", "INTP-1"),
        ("phone", "+33611223345"),
    }
    spaced = client.get("/v1/customers/INTP-2", headers=auth(reader)).json()
    assert spaced["phone"] == "+33 6 11 22 33 46"
