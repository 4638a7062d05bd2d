"""The orders overview page over HTTP (the charts themselves: test_admin_browser.py)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.platform import service as platform
from tests.conftest import command
from tests.orders.factories import order_body, seed_catalog
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


def test_on_time_panels_say_why_they_are_empty_rather_than_draw_empty_axes(
    client: TestClient, db: Session
) -> None:
    # given a shop with no shipped order whose promised date has come (a new one, or one
    # imported from files without promises)
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303

    # when the orders page is opened
    page = client.get("/admin/orders")

    # then each on-time panel says there is nothing due yet, and draws no chart
    assert page.status_code == 200
    assert 'data-testid="on-time-channel-empty"' in page.text
    assert 'data-testid="on-time-carrier-empty"' in page.text
    assert 'data-testid="chart-promise-channel"' not in page.text
    assert 'data-testid="chart-promise-carrier"' not in page.text


def test_the_orders_list_finds_a_customer_as_the_customers_list_does(
    client: TestClient, db: Session, api_key: Any
) -> None:
    # given two customers of the shop, PROBE-1 and PROBE-10, with an order each (order ids
    # that hold neither number)
    seed_catalog(db)
    key = api_key("admin")
    for number, email, last_name, order_id in (
        ("PROBE-1", "ada.first@example.com", "Lovelace", "A-1"),
        ("PROBE-10", "grace@example.com", "Hopper", "B-1"),
    ):
        created = client.post(
            "/v1/customers",
            json={"external_id": number, "email": email, "last_name": last_name},
            headers=command(key),
        )
        assert created.status_code == 201, created.text
        placed = client.post(
            "/v1/orders",
            json=order_body(order_id=order_id, customer_id=number),
            headers=command(key),
        )
        assert placed.status_code == 201, placed.text
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303

    def listed(q: str) -> list[str]:
        page = client.get("/admin/orders/list", params={"q": q})
        assert page.status_code == 200
        return re.findall(r'data-order="([^"]+)"', page.text)

    # when the orders list is searched by the shop's customer number: exactly that customer
    assert listed("PROBE-1") == ["A-1"]
    assert (
        listed("probe-10") == []
    )  # a number is matched as it is written, as in the customers list
    assert listed("PROBE-10") == ["B-1"]
    # by part of an email or a name, as the customers list finds people
    assert listed("ada.first@") == ["A-1"]
    assert listed("hopp") == ["B-1"]
    # still by part of an order id, and nothing for what names nobody (a % is a character)
    assert listed("b-") == ["B-1"]
    assert listed("%") == []
    assert "No order matches" in client.get("/admin/orders/list", params={"q": "NOBODY"}).text
