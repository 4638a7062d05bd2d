"""Stock moves with sales and returns in every channel: shipped orders and till sales take
their units in the order's transaction (exactly, under concurrency, once per Idempotency-Key),
pick-up orders are counted once (reserved, then collected), restocked returns add units back;
and the price consistency report compares what orders were charged with the channel price."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, seed_catalog


@pytest.fixture
def writer(db, api_key):  # type: ignore[no-untyped-def]
    seed_catalog(db)
    return auth(api_key("write"))


def _post(client, body, headers, key):  # type: ignore[no-untyped-def]
    return client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})


def _on_hand(db, sku: str, store_id: str) -> int:
    db.expire_all()
    level = catalog.get_stock(db, sku=sku, store_id=store_id)
    assert level is not None
    return level.on_hand


def _till_sale(**overrides: object) -> dict[str, object]:
    """Two Chianti sold at the Paris till: 2 x 1200."""
    body: dict[str, object] = {
        "channel": "store",
        "fulfilment": "in_store",
        "store_id": "st-par-01",
        "currency": "EUR",
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "subtotal_minor": 2400,
        "total_minor": 2400,
    }
    body.update(overrides)
    return body


def test_a_shipped_order_takes_its_units_from_web_stock_once_per_key(client, db, writer) -> None:
    # given 100 Chianti in the web warehouse
    assert _on_hand(db, CHIANTI, "web") == 100

    # when a shipped order for 2 is placed, and retried with the same Idempotency-Key
    first = _post(client, order_body(), writer, key="ship-1")
    retry = _post(client, order_body(), writer, key="ship-1")

    # then the warehouse holds 98: the retry is the stored answer and moves nothing
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert _on_hand(db, CHIANTI, "web") == 98
    # and a location that keeps no stock level for a SKU (the corkscrew online) is left alone
    assert catalog.get_stock(db, sku=CORKSCREW, store_id="web") is None


def test_a_till_sale_takes_its_units_from_the_store(client, db, writer) -> None:
    # given 5 Chianti in Paris
    # when the till sells 2
    sold = _post(client, _till_sale(), writer, key="till-1")

    # then Paris holds 3, and the web warehouse is untouched
    assert sold.status_code == 201
    assert _on_hand(db, CHIANTI, "st-par-01") == 3
    assert _on_hand(db, CHIANTI, "web") == 100


def test_a_sale_beyond_what_is_available_is_refused_and_moves_nothing(client, db, writer) -> None:
    # given Lyon with one Chianti
    # when the till sells 2 there
    refused = _post(client, _till_sale(store_id="st-lyo-01"), writer, key="till-2")

    # then it is a conflict naming the line, and stock and orders are unchanged
    assert refused.status_code == 409
    assert refused.json()["field"] == "lines.0.quantity"
    assert _on_hand(db, CHIANTI, "st-lyo-01") == 1
    assert orders.count_orders(db) == 0


def test_units_reserved_for_pick_up_are_not_sold_and_are_counted_once(client, db, writer) -> None:
    # given 5 Chianti in Paris, 2 of them reserved for a pick-up order
    pickup = _post(
        client,
        order_body(
            fulfilment="pickup_in_store",
            store_id="st-par-01",
            shipping_minor=0,
            total_minor=3000,
            payments=[],
        ),
        writer,
        key="pick-1",
    ).json()

    # when the till sells 4 (only 3 are free), then 3
    too_many = _post(
        client,
        _till_sale(
            lines=[{"sku": CHIANTI, "quantity": 4, "unit_price_minor": 1200}],
            subtotal_minor=4800,
            total_minor=4800,
        ),
        writer,
        key="till-3",
    )
    sold = _post(
        client,
        _till_sale(
            lines=[{"sku": CHIANTI, "quantity": 3, "unit_price_minor": 1200}],
            subtotal_minor=3600,
            total_minor=3600,
        ),
        writer,
        key="till-4",
    )
    # and the pick-up order is collected
    client.post(
        f"/v1/orders/{pickup['order_id']}/pickup",
        json={"pickup_code": pickup["pickup_code"], "store_id": "st-par-01"},
        headers=command(writer),
    )

    # then the reserved units were kept for the pick-up, and 5 left the shop in all
    assert too_many.status_code == 409
    assert sold.status_code == 201
    level = catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01")
    db.refresh(level)
    assert (level.on_hand, level.reserved) == (0, 0)


def test_a_restocked_return_adds_its_units_back(client, db, writer) -> None:
    # given a till sale of 2 Chianti in Paris (5 -> 3)
    sold = _post(client, _till_sale(), writer, key="till-5").json()
    assert _on_hand(db, CHIANTI, "st-par-01") == 3

    # when one comes back for sale, and one comes back damaged
    returned = client.post(
        f"/v1/orders/{sold['order_id']}/returns",
        json={
            "channel": "store",
            "lines": [
                {"sku": CHIANTI, "quantity": 1, "reason": "changed_mind", "restock": True},
                {"sku": CHIANTI, "quantity": 1, "reason": "damaged"},
            ],
        },
        headers={**writer, "Idempotency-Key": "ret-1"},
    )
    replay = client.post(
        f"/v1/orders/{sold['order_id']}/returns",
        json={
            "channel": "store",
            "lines": [
                {"sku": CHIANTI, "quantity": 1, "reason": "changed_mind", "restock": True},
                {"sku": CHIANTI, "quantity": 1, "reason": "damaged"},
            ],
        },
        headers={**writer, "Idempotency-Key": "ret-1"},
    )

    # then only the restocked unit is back on sale, once, and the answer says where it went
    assert returned.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert [line["restocked_to"] for line in returned.json()["lines"]] == ["st-par-01", None]
    assert _on_hand(db, CHIANTI, "st-par-01") == 4


def test_a_return_restocked_at_another_store_creates_its_level(client, db, writer) -> None:
    # given a shipped order of a corkscrew, which Lyon has never stocked
    placed = _post(client, order_body(), writer, key="ship-2").json()

    # when it is brought back to Lyon for sale; and to an unknown store
    returned = client.post(
        f"/v1/orders/{placed['order_id']}/returns",
        json={
            "channel": "store",
            "store_id": "st-lyo-01",
            "lines": [{"sku": CORKSCREW, "quantity": 1, "reason": "changed_mind", "restock": True}],
        },
        headers={**writer, "Idempotency-Key": "ret-2"},
    )
    unknown = client.post(
        f"/v1/orders/{placed['order_id']}/returns",
        json={
            "channel": "store",
            "store_id": "st-nowhere",
            "lines": [{"sku": CHIANTI, "quantity": 1, "reason": "changed_mind", "restock": True}],
        },
        headers={**writer, "Idempotency-Key": "ret-3"},
    )

    # then Lyon holds it; the unknown store is refused naming the field
    assert returned.status_code == 201
    assert _on_hand(db, CORKSCREW, "st-lyo-01") == 1
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "store_id"


def test_parallel_sales_of_one_sku_lose_no_update(committed_url) -> None:
    # given 10 Chianti at a store, and 16 tills each selling one at the same moment
    with open_session(committed_url) as db:
        seed_catalog(db)
        catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 10)])
    barrier = threading.Barrier(16)
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sell(n: int) -> None:
        with open_session(committed_url) as db:
            request = OrderIn.model_validate(_till_sale(
                order_id=f"TILL-{n}",
                lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200}],
                subtotal_minor=1200,
                total_minor=1200,
            ))  # fmt: skip
            barrier.wait(timeout=30)
            try:
                orders.place_order(db, order=request)
                outcome = "sold"
            except Conflict:
                outcome = "refused"
            except BaseException as error:
                with lock:
                    errors.append(error)
                return
            with lock:
                results.append(outcome)

    # when they all sell
    threads = [threading.Thread(target=sell, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then exactly 10 sales went through, the shelf is empty, and never negative
    assert errors == []
    assert sorted(results) == ["refused"] * 6 + ["sold"] * 10
    with open_session(committed_url) as db:
        assert _on_hand(db, CHIANTI, "st-par-01") == 0
        assert orders.count_orders(db) == 10


def test_price_consistency_compares_what_was_charged_with_the_channel_price(
    client, db, writer, api_key
) -> None:
    # given the app price of Chianti was 1100 last week (a deliberate rule), 1200 elsewhere
    now = datetime.now(UTC)
    catalog.set_channel_price(db, sku=CHIANTI, channel="app", price_minor=1100, reason="App promo")
    db.execute(
        update(ChannelPrice).values(
            valid_from=now - timedelta(days=10), valid_to=now - timedelta(days=1)
        )
    )
    db.commit()
    placed_then = (now - timedelta(days=5)).isoformat()
    # and three orders: an app order at the promo price then, one charged 1200 on the app
    # then, and a till sale charged 1000 today
    bodies = [
        order_body(channel="app", placed_at=placed_then, lines=[
            {"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1100},
        ], subtotal_minor=2200, discount_minor=0, total_minor=2690, payments=[]),
        order_body(channel="app", placed_at=placed_then, lines=[
            {"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200},
        ], subtotal_minor=1200, discount_minor=0, total_minor=1690, payments=[]),
        _till_sale(lines=[{"sku": CHIANTI, "quantity": 3, "unit_price_minor": 1000}],
                   subtotal_minor=3000, total_minor=3000),
    ]  # fmt: skip
    placed = [_post(client, body, writer, key=f"price-{n}") for n, body in enumerate(bodies)]
    assert [answer.status_code for answer in placed] == [201, 201, 201]

    # when the report is read
    report = client.get(
        "/v1/orders/reports/price-consistency", headers=auth(api_key("read"))
    ).json()

    # then it lists the two lines charged otherwise than the channel price, with the amounts
    assert report["lines_checked"] == 3
    found = {
        d["order_id"]: (d["charged_unit_minor"], d["channel_unit_minor"], d["difference_minor"])
        for d in report["differences"]
    }
    assert found == {
        placed[1].json()["order_id"]: (1200, 1100, 100),
        placed[2].json()["order_id"]: (1000, 1200, -600),
    }
    bases = {d["order_id"]: (d["basis"], d["reason"]) for d in report["differences"]}
    assert bases[placed[1].json()["order_id"]] == ("channel rule", "App promo")
    assert bases[placed[2].json()["order_id"]] == ("catalogue price (current)", None)
    assert (report["overcharged_minor"], report["undercharged_minor"]) == (100, 600)
    assert report["currency"] == "EUR"
    assert {d["currency"] for d in report["differences"]} == {"EUR"}
    assert report["totals"] == [
        {"currency": "EUR", "overcharged_minor": 100, "undercharged_minor": 600}
    ]


def test_a_line_paid_in_another_currency_is_counted_not_judged(client, writer, api_key) -> None:
    # given a euro catalogue (Chianti 12.00) and two till sales: one in euros at the catalogue
    # price, one in pounds at 10.00 (amounts are never converted)
    bodies = [
        _till_sale(lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200}],
                   subtotal_minor=1200, total_minor=1200),
        _till_sale(currency="GBP",
                   lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1000}],
                   subtotal_minor=1000, total_minor=1000),
    ]  # fmt: skip
    placed = [_post(client, body, writer, key=f"currency-{n}") for n, body in enumerate(bodies)]
    assert [answer.status_code for answer in placed] == [201, 201]

    # when the report is read
    report = client.get(
        "/v1/orders/reports/price-consistency", headers=auth(api_key("read"))
    ).json()

    # then the pound line is counted apart and not listed as charged 2.00 under the price
    assert (report["lines_checked"], report["lines_in_other_currency"]) == (1, 1)
    assert report["differences"] == []
    assert report["totals"] == [
        {"currency": "EUR", "overcharged_minor": 0, "undercharged_minor": 0}
    ]


def test_the_orders_admin_page_lists_lines_charged_otherwise(client, db, writer) -> None:
    # given a till sale charged 1000 for a 1200 Chianti, and an admin signed in
    _post(
        client,
        _till_sale(
            lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1000}],
            subtotal_minor=1000,
            total_minor=1000,
        ),
        writer,
        key="till-admin",
    )
    platform.create_admin_user(db, email="ops@example.com", password="correct horse battery")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text)
    assert token is not None
    client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": "correct horse battery",
            "csrf_token": token.group(1),
            "next": "/admin",
        },
        follow_redirects=False,
    )

    # when the orders page is opened
    page = client.get("/admin/orders")

    # then the line is listed with what was charged, the channel price and the difference
    assert page.status_code == 200
    table = page.text.split('data-testid="charged-prices"', 1)[1].split("</table>", 1)[0]
    assert CHIANTI in table
    money = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert money[:3] == ["€10.00", "€12.00", "-€2.00"]
