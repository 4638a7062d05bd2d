"""One rule per identity kind, for sign-up, identify and adding an identity alike."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.platform.errors import InvalidInput
from tests.conftest import auth, command


@pytest.mark.parametrize(
    ("identities", "field"),
    [
        ({"email": "not-an-email"}, "identities.email"),
        ({"phone": "abc"}, "identities.phone"),
        ({"phone": "((((("}, "identities.phone"),
        ({"external_id": "L" * 101}, "identities.external_id"),
        ({"email": "a" * 60000 + "@example.com"}, "identities.email"),
        ({"loyalty_card": "C" * 101}, "identities.loyalty_card"),
        ({"device_id": "D" * 101}, "identities.device_id"),
        ({"anonymous_id": "A" * 101}, "identities.anonymous_id"),
    ],
)
def test_identify_refuses_what_is_no_identity_of_its_kind(
    client, api_key, db, identities, field
) -> None:
    response = client.post(
        "/v1/customers/identify",
        json={"identities": identities},
        headers=command(api_key("write")),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert customers.count_customers(db) == 0


@pytest.mark.parametrize(
    ("kind", "value"),
    [("email", "also not email"), ("phone", "call me"), ("external_id", "X" * 101)],
)
def test_add_identity_refuses_what_is_no_identity_of_its_kind(client, api_key, db, kind, value):
    writer = api_key("write")
    customer_id = client.post(
        "/v1/customers", json={"email": "ana@example.com"}, headers=command(writer)
    ).json()["customer_id"]
    response = client.post(
        f"/v1/customers/{customer_id}/identities",
        json={"kind": kind, "value": value},
        headers=command(writer),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "value"
    assert [i.kind for i in customers.get_identities(db, customer_id=customer_id)] == ["email"]


def test_sign_up_uses_the_same_rule(client, api_key, db) -> None:
    response = client.post(
        "/v1/customers", json={"phone": "((((("}, headers=command(api_key("write"))
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "phone"
    assert customers.count_customers(db) == 0


def test_the_verbs_refuse_it_too(db) -> None:
    with pytest.raises(InvalidInput) as refused:
        customers.identify_customer(db, identities={"email": "nope", "anonymous_id": "a-1"})
    assert refused.value.field == "identities.email"
    ana = customers.identify_customer(db, identities={"email": "ana@example.com"})
    with pytest.raises(InvalidInput) as refused:
        customers.add_identity(db, customer_id=ana.customer_id, kind="phone", value="abc")
    assert refused.value.field == "value"


def test_good_identities_still_pass(client, api_key) -> None:
    response = client.post(
        "/v1/customers/identify",
        json={
            "identities": {
                "email": "Ana@Example.com",
                "phone": "+33 6 12 34 56 78",
                "external_id": "E" * 100,
            }
        },
        headers=command(api_key("write")),
    )
    assert response.status_code == 200
    assert response.json()["external_id"] == "E" * 100


def test_identify_by_a_device_id_alone_finds_its_one_holder(client, api_key, db) -> None:
    writer = api_key("write")
    body = {"identities": {"device_id": "dev-lonely-1"}}
    first = client.post("/v1/customers/identify", json=body, headers=command(writer))
    second = client.post("/v1/customers/identify", json=body, headers=command(writer))
    assert first.status_code == second.status_code == 200
    assert first.json()["customer_id"] == second.json()["customer_id"]
    assert db.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_shared_device_id_names_nobody_alone(client, api_key, db) -> None:
    writer, reader = api_key("write"), api_key("read")
    for email in ("ana@example.com", "bo@example.com"):
        client.post(
            "/v1/customers/identify",
            json={"identities": {"email": email, "device_id": "dev-shared"}},
            headers=command(writer),
        )
    looked_up = client.get(
        "/v1/customers/lookup?kind=device_id&value=dev-shared", headers=auth(reader)
    )
    assert looked_up.status_code == 409
    assert looked_up.json()["field"] == "value"
    assert looked_up.json()["holders"] == 2
    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {"device_id": "dev-shared"}},
        headers=command(writer),
    )
    assert identified.status_code == 409
    assert identified.json()["field"] == "identities.device_id"
    assert customers.count_customers(db) == 2
    # with the person's identity too, the device is theirs as before
    ana = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "ana@example.com", "device_id": "dev-shared"}},
        headers=command(writer),
    )
    assert ana.status_code == 200
