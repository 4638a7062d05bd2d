"""One email form at every door: an address given to POST /v1/customers or in a tracked
identify's traits is stored as the contact email in the form the email identity has (trimmed,
lower-cased), as imports and identify store it, so a person is one address in the profile,
the identities and the export."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Customer, Identity
from tests.conftest import auth, command
from tests.customers.factories import imported, process
from tests.events.factories import basic_auth


def test_a_new_customers_email_is_stored_as_its_identity(client, api_key, db) -> None:
    # when a customer signs up with capitals in their address
    created = client.post(
        "/v1/customers", json={"email": "Ana.Lopez@Example.COM"}, headers=command(api_key("write"))
    )

    # then the answer, the profile and the identity hold one form of it
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "ana.lopez@example.com"
    read = client.get(
        f"/v1/customers/{created.json()['customer_id']}", headers=auth(api_key("read"))
    )
    assert read.json()["email"] == "ana.lopez@example.com"
    assert db.scalar(select(Customer.email)) == "ana.lopez@example.com"
    assert db.scalar(select(Identity.value).where(Identity.kind == "email")) == (
        "ana.lopez@example.com"
    )
    # and the same address written otherwise is theirs: no second sign-up
    again = client.post(
        "/v1/customers", json={"email": "ana.lopez@example.com"}, headers=command(api_key("write"))
    )
    assert again.status_code == 409, again.text


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch"])
def test_a_tracked_email_is_kept_as_its_identity(client, api_key, db, route) -> None:
    # given an identify call whose traits spell the address with capitals
    call = {"userId": "INTE-1", "messageId": "m-inte-1", "traits": {"email": "Bo@Example.COM"}}
    body = {"batch": [{**call, "type": "identify"}]} if route == "/v1/batch" else call
    sent = client.post(route, json=body, headers=basic_auth(api_key("ingest")))
    assert sent.status_code == 200, sent.text

    # when the profile processor reads it
    process(db)

    # then the contact email is its identity's form
    profile = client.get("/v1/customers/INTE-1", headers=auth(api_key("read"))).json()
    assert profile["email"] == "bo@example.com"
    assert ("email", "bo@example.com") in {(i["kind"], i["value"]) for i in profile["identities"]}


def test_every_door_stores_one_form(client, api_key, db) -> None:
    # given the same kind of address through sign-up, identify and a bulk import
    writer = api_key("write")
    client.post("/v1/customers", json={"email": "Cy@Example.com"}, headers=command(writer))
    client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "Di@Example.com"}},
        headers=command(writer),
    )
    customers.import_customers(db, customers=[imported("IMP-E1", email="Ed@Example.com")])

    # then each profile keeps it lower-cased
    assert sorted(db.scalars(select(Customer.email).where(Customer.email.is_not(None)))) == [
        "cy@example.com",
        "di@example.com",
        "ed@example.com",
    ]
