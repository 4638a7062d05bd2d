"""The orders overview page over HTTP (the charts themselves: test_admin_browser.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform import service as platform
from tests.conftest import command
from tests.orders.factories import CHIANTI, order_body, seed_catalog
from tests.platform.admin_forms import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_token,
    page_form,
    post_form,
    sign_in,
    typed,
)


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


def test_the_api_and_the_admin_pages_count_the_same_last_30_days(
    client: TestClient, db: Session, api_key: Any
) -> None:
    # given orders of two lines each, placed around the edges of the last 30 days on
    # 7 December at noon: 7 November in the morning (31 days back, before the window), just
    # after midnight on 8 November (its first day), and a minute ahead by a till's clock
    clock.set_clock(lambda: datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    seed_catalog(db)
    key = api_key("admin")
    for order_id, placed_at in (
        ("O-31-DAYS", "2026-11-07T06:00:00Z"),
        ("O-FIRST-DAY", "2026-11-08T00:30:00Z"),
        ("O-TILL-AHEAD", "2026-12-07T12:01:00Z"),
    ):
        body = order_body(order_id=order_id, placed_at=placed_at)
        assert client.post("/v1/orders", json=body, headers=command(key)).status_code == 201
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303

    # when the report is asked of the API, and the Orders pages are opened
    report = client.get(
        "/v1/orders/reports/price-consistency", headers={"Authorization": f"Bearer {key}"}
    ).json()
    tile = re.search(r"of ([\d,]+) lines", client.get("/admin/orders").text)
    charged = client.get("/admin/orders/charged").text

    # then all three count the 30 whole days ending today: the last two orders' four lines
    assert (report["since"], report["until"]) == ("2026-11-08T00:00:00Z", "2026-12-08T00:00:00Z")
    assert report["lines_checked"] == 4
    assert tile is not None
    assert tile.group(1) == "4"
    assert "4 lines checked" in charged
    assert "since 8 Nov 2026, today included" in charged


def test_an_order_not_handed_over_is_cancelled_from_the_customers_orders_page(
    client: TestClient, db: Session, api_key: Any
) -> None:
    # given a customer with a pick-up waiting at Paris Rivoli and a parcel already shipped
    seed_catalog(db)
    key = api_key("admin")
    pick_up = order_body(
        order_id="O-WAITING",
        fulfilment="pickup_in_store",
        store_id="st-par-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    for body in (pick_up, order_body(order_id="O-SENT")):
        assert client.post("/v1/orders", json=body, headers=command(key)).status_code == 201
    sent = client.post("/v1/orders/O-SENT/status", json={"status": "shipped"}, headers=command(key))
    assert sent.status_code == 200, sent.text
    customer_id = orders.get_order(db, order_id="O-WAITING").customer_id
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    page = client.get(f"/admin/orders/customer/{customer_id}").text

    # when the pick-up is cancelled there, with a reason (the shipped parcel offers no Cancel)
    assert 'data-testid="cancel-O-SENT"' not in page
    fields = page_form(page, action="/admin/orders/O-WAITING/cancel")
    answer = post_form(client, "/admin/orders/O-WAITING/cancel", typed(fields, "reason", "no show"))

    # then the page says so, the order is cancelled with its reason and its units are free
    assert answer.status_code == 303
    shown = client.get(answer.headers["location"]).text
    assert "Order O-WAITING cancelled" in shown
    assert (
        "cancelled" in re.search(r'data-testid="order-O-WAITING">(.*?)</article>', shown, re.S)[1]
    )
    assert "(no show)" in shown
    assert 'data-testid="cancel-O-WAITING"' not in shown
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01").reserved == 0
    # and a cancellation the order refuses is said on the page, changing nothing
    token = csrf_token(page)
    refused = client.post(
        "/admin/orders/O-SENT/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Order O-SENT is shipped: it was handed to the carrier" in refused.text
    assert orders.get_order(db, order_id="O-SENT").status == "shipped"


def test_a_cancelled_parcel_is_shown_neither_late_nor_due(
    client: TestClient, db: Session, api_key: Any
) -> None:
    # given two parcels cancelled before they were sent: one promised for the 9th of December,
    # one for the 20th
    clock.set_clock(lambda: datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    key = api_key("admin")
    for order_id, promised in (("O-PAST", "2026-12-09"), ("O-AHEAD", "2026-12-20")):
        body = order_body(order_id=order_id, promised_delivery=promised)
        assert client.post("/v1/orders", json=body, headers=command(key)).status_code == 201
        cancelled = client.post(f"/v1/orders/{order_id}/cancel", headers=command(key))
        assert cancelled.status_code == 200, cancelled.text
    customer_id = orders.get_order(db, order_id="O-PAST").customer_id
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)

    # when the orders list and the customer's orders are read on the 12th, past the first
    # promise and before the second
    clock.set_clock(lambda: datetime(2026, 12, 12, 10, 0, tzinfo=UTC))
    assert sign_in(client).status_code == 303
    listed = client.get("/admin/orders/list").text
    late_only = client.get("/admin/orders/list?late=true").text
    panel = client.get(f"/admin/orders/customers/{customer_id}/panel").text

    # then neither is late nor due, as the late filter has it: the promise column shows a dash
    for order_id in ("O-PAST", "O-AHEAD"):
        row = re.search(rf'<tr data-order="{order_id}">(.*?)</tr>', listed, re.S)
        assert row is not None
        promise = re.findall(r"<td>(.*?)</td>", row[1], re.S)[-1]
        assert promise.startswith('<span class="muted">\u2013</span>'), promise
        assert f'data-order="{order_id}"' not in late_only
        line = re.search(rf'<tr data-order="{order_id}">(.*?)</tr>', panel, re.S)
        assert line is not None
        assert "cancelled</small>" in line[1], line[1]


def test_the_customers_orders_page_shows_a_cancelled_orders_promise_as_a_dash(
    client: TestClient, db: Session, api_key: Any
) -> None:
    # given a parcel promised for the 9th of December, cancelled before it was sent, and one
    # still open
    clock.set_clock(lambda: datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    key = api_key("admin")
    for order_id in ("O-GONE", "O-OPEN"):
        body = order_body(order_id=order_id, promised_delivery="2026-12-09")
        assert client.post("/v1/orders", json=body, headers=command(key)).status_code == 201
    cancelled = client.post("/v1/orders/O-GONE/cancel", headers=command(key))
    assert cancelled.status_code == 200, cancelled.text
    customer_id = orders.get_order(db, order_id="O-GONE").customer_id
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)

    # when the customer's orders page is read
    assert sign_in(client).status_code == 303
    page = client.get(f"/admin/orders/customer/{customer_id}").text

    # then the cancelled order's promise is a dash, as the orders list has it; the open one's
    # is still its day
    gone = re.search(r'<article id="order-O-GONE".*?</article>', page, re.S)
    assert gone is not None
    assert "Promised 9 Dec 2026" not in gone[0]
    assert "Promise \u2013." in gone[0]
    still = re.search(r'<article id="order-O-OPEN".*?</article>', page, re.S)
    assert still is not None
    assert "Promised 9 Dec 2026." in still[0]
