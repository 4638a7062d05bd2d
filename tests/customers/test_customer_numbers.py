"""A shop's customer number names the customer in paths (/v1/customers/{customer_id}), so it
cannot hold '/' (no server or proxy keeps an encoded one inside a segment) nor be '.' or
'..': every road that would create one refuses it naming the field, and every other
character travels percent-encoded. One held from before still finds its customer."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from rapport.customers import service as customers
from rapport.customers.file_import import PRESETS, MalformedFile, import_customers_file
from rapport.customers.models import Customer, Identity
from rapport.orders import service as orders
from rapport.orders.importing import PRESETS as SALES
from rapport.orders.importing import import_transactions_file
from rapport.platform.errors import InvalidInput
from tests.conftest import auth, command
from tests.customers.factories import process, track
from tests.events.factories import basic_auth
from tests.orders.factories import order_body, seed_catalog


def _problem(response) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert response.status_code == 422, response.text
    problem = response.json()
    return (problem.get("errors") or [problem])[0]


@pytest.mark.parametrize("number", ["AB/123 x?#%", "/", ".", ".."])
def test_a_customer_number_that_cannot_travel_in_a_path_is_refused(
    client, api_key, db, number
) -> None:
    writer = api_key("write")
    created = client.post("/v1/customers", json={"external_id": number}, headers=command(writer))
    assert _problem(created)["field"] == "external_id"
    identified = client.post(
        "/v1/customers/identify",
        json={"identities": {"external_id": number}},
        headers=command(writer),
    )
    assert _problem(identified)["field"] == "identities.external_id"
    someone = client.post("/v1/customers", json={}, headers=command(writer)).json()
    added = client.post(
        f"/v1/customers/{someone['customer_id']}/identities",
        json={"kind": "external_id", "value": number},
        headers=command(writer),
    )
    assert _problem(added)["field"] == "value"
    assert customers.count_customers(db) == 1
    assert customers.find_customer(db, kind="external_id", value=number) is None


def test_every_other_character_travels_percent_encoded(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    number = "AB 123 x?#%&+é"
    created = client.post("/v1/customers", json={"external_id": number}, headers=command(writer))
    assert created.status_code == 201
    for path in ("", "/timeline", "/consents/history"):
        got = client.get(f"/v1/customers/{quote(number, safe='')}{path}", headers=auth(reader))
        assert got.status_code == 200, (path, got.text)
    profile = client.get(f"/v1/customers/{quote(number, safe='')}", headers=auth(reader))
    assert profile.json()["customer_id"] == created.json()["customer_id"]


def test_an_order_for_such_a_number_is_refused_and_nothing_stored(client, api_key, db) -> None:
    seed_catalog(db)
    placed = client.post(
        "/v1/orders",
        json=order_body(order_id="O-SLASH", customer_id="AB/9"),
        headers=command(api_key("write")),
    )
    assert placed.status_code == 422
    assert "cannot hold '/'" in placed.json()["detail"]
    assert orders.count_orders(db) == 0
    assert customers.count_customers(db) == 0


def test_a_tracked_user_id_with_a_slash_is_no_customer_number(client, api_key, db) -> None:
    ingest = api_key("ingest")
    basic = basic_auth(ingest)
    client.post(
        "/v1/identify",
        json={"userId": "AB/7", "anonymousId": "anon-7", "traits": {"firstName": "Ab"}},
        headers=basic,
    )
    process(db)
    assert customers.find_customer(db, kind="external_id", value="AB/7") is None
    visitor = customers.find_customer(db, kind="anonymous_id", value="anon-7")
    assert visitor is not None
    assert visitor.first_name == "Ab"


def test_an_import_row_with_such_a_number_names_its_line_and_column(db, tmp_path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("customer_id,email\nC-1,a@example.com\nAB/2,b@example.com\n")
    with pytest.raises(MalformedFile) as error:
        import_customers_file(db, path, PRESETS["crm"], batch_size=1)
    assert (error.value.line, error.value.column) == (3, "customer_id")
    assert "cannot hold '/'" in error.value.detail
    assert customers.count_customers(db) == 0


def test_a_number_held_from_before_still_finds_its_customer(db) -> None:
    # given a customer given 'AB/1' before such numbers were refused
    now = datetime(2026, 1, 1, tzinfo=UTC)
    db.add(
        Customer(
            customer_id="cus_legacy",
            external_id="AB/1",
            attributes={},
            created_at=now,
            updated_at=now,
        )
    )
    db.add(
        Identity(
            customer_id="cus_legacy",
            kind="external_id",
            value="AB/1",
            is_unique=True,
            source="legacy",
            created_at=now,
        )
    )
    db.flush()
    # when tracking names them by it
    track(db, "page_viewed", user_id="AB/1")
    track(db, "identified", user_id="AB/1", properties={"traits": {"firstName": "Legacy"}})
    process(db)
    # then the events are theirs
    assert customers.find_customer(db, kind="external_id", value="AB/1").first_name == "Legacy"
    assert customers.get_traits(db, customer_id="cus_legacy").event_count == 2


def test_a_transactions_file_naming_such_a_customer_loads_nothing(db, tmp_path) -> None:
    mapping = SALES["csv"].with_overrides(
        {
            "order": "Receipt",
            "customer": "Client",
            "item": "Article",
            "time": "When",
            "price": "Price",
            "quantity": "Qty",
        },
        currency="EUR",
    )
    path = tmp_path / "sales.csv"
    path.write_text(
        "Receipt,Client,Article,When,Price,Qty\n"
        "R1,ana,SKU-1,2024-03-01 10:00:00,12.50,2\n"
        "R2,AB/3,SKU-1,2024-03-02 09:30:00,13.00,1\n"
    )
    with pytest.raises(InvalidInput) as error:
        import_transactions_file(db, path, mapping)
    # the check pass stops it, as import customers does: line and column, nothing written
    assert error.value.field == "Client"
    assert error.value.detail.startswith("Line 3, column 'Client': 'AB/3' cannot be"), error.value
    db.rollback()
    assert orders.count_orders(db) == 0
    assert customers.count_customers(db) == 0
