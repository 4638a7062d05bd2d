"""Placing orders: server-side totals, idempotency keys, pick-up in store, returns."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, seed_catalog


@pytest.fixture
def writer(db, api_key):  # type: ignore[no-untyped-def]
    seed_catalog(db)
    return auth(api_key("write"))


def _post(client, body, headers, key="key-1"):  # type: ignore[no-untyped-def]
    return client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": key})


def test_order_is_recorded_with_recomputed_totals_and_logged(client, db, writer) -> None:
    response = _post(client, order_body(order_id="O-1"), writer)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["subtotal_minor"], body["total_minor"], body["status"]) == (3300, 3490, "placed")
    assert body["promised_delivery"] is not None
    assert [(line["sku"], line["category"], line["total_minor"]) for line in body["lines"]] == [
        (CHIANTI, "Wine/Red", 2400),
        (CORKSCREW, "Kitchen/Tools", 900),
    ]
    logged = db.scalars(select(Event).where(Event.type == "order_placed")).all()
    assert len(logged) == 1
    assert logged[0].properties["total_minor"] == 3490
    assert logged[0].customer_id == body["customer_id"]


def test_an_order_for_a_merged_profile_s_id_goes_to_the_profile_it_joined(
    client, db, writer
) -> None:
    # given two profiles of one person, the older kept when they were merged
    first = _post(client, order_body(order_id="O-M1", customer_id="C-1"), writer, key="m-1")
    second = _post(client, order_body(order_id="O-M2", customer_id="C-2"), writer, key="m-2")
    kept, merged = first.json()["customer_id"], second.json()["customer_id"]
    customers.merge_customers(
        db, source_customer_id=merged, target_customer_id=kept, reason="same person", actor="t"
    )

    # when a till still sends the merged profile's Rapport id
    third = _post(client, order_body(order_id="O-M3", customer_id=merged), writer, key="m-3")

    # then the order is the surviving profile's, not refused as an erased customer's
    assert third.status_code == 201, third.text
    assert third.json()["customer_id"] == kept


def test_totals_mismatch_is_422_and_changes_nothing(client, db, writer) -> None:
    response = _post(client, order_body(total_minor=3000), writer)
    assert response.status_code == 422
    assert response.json()["field"] == "total_minor"
    assert response.json()["expected"] == 3490
    subtotal = _post(client, order_body(subtotal_minor=1), writer, key="key-2")
    assert subtotal.json()["field"] == "subtotal_minor"
    assert orders.count_orders(db) == 0
    assert db.scalars(select(Event).where(Event.type == "order_placed")).all() == []


def test_unknown_sku_names_the_line(client, writer) -> None:
    body = order_body(
        lines=[{"sku": "NOPE", "quantity": 1, "unit_price_minor": 100}],
        subtotal_minor=100,
        total_minor=290,
        payments=[],
    )
    response = _post(client, body, writer)
    assert response.status_code == 422
    assert response.json()["field"] == "lines.0.sku"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        pytest.param({"store_id": "GHOST-1"}, "store_id", "Unknown store", id="ships-from-nowhere"),
        pytest.param(
            {"placed_at": "2099-01-01T00:00:00+00:00"}, "placed_at", "future", id="placed-2099"
        ),
    ],
)
def test_an_order_from_an_unknown_store_or_the_future_is_refused(
    client, db, writer, overrides, field, words
) -> None:
    response = _post(client, order_body(**overrides), writer)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert orders.count_orders(db) == 0
    # the web warehouse, named or not, and a known store are where a parcel may leave from
    for key, store in (("k-web", "web"), ("k-store", "st-par-01")):
        body = order_body(order_id=f"O-{key}", store_id=store)
        assert _post(client, body, writer, key=key).status_code == 201


def test_a_promise_before_the_placing_day_is_refused_not_flagged_late(client, db, writer) -> None:
    clock.set_clock(lambda: datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    body = order_body(
        order_id="O-EARLY", placed_at="2026-12-02T09:54:17Z", promised_delivery="2026-11-28"
    )
    response = _post(client, body, writer)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "promised_delivery"
    assert "before the order was placed (2026-12-02)" in response.json()["detail"]
    assert orders.count_orders(db) == 0
    assert orders.flag_late_deliveries(db) == []
    # the placing day itself is a promise that can be kept, read in the sender's own offset:
    # placed on 1 December at 20:00 in New York (2 December in UTC), due that evening
    same_day = order_body(
        order_id="O-SAME-DAY",
        placed_at="2026-12-01T20:00:00-05:00",
        promised_delivery="2026-12-01",
    )
    placed = _post(client, same_day, writer, key="k-same-day")
    assert placed.status_code == 201, placed.text
    assert placed.json()["promised_delivery"] == "2026-12-01"


def _till_sale(**overrides):  # type: ignore[no-untyped-def]
    sale = {
        "channel": "store",
        "fulfilment": "in_store",
        "store_id": "st-par-01",
        "discount_minor": 0,
        "shipping_minor": 0,
        "total_minor": 3300,
        "payments": [],
    }
    return order_body(**{**sale, **overrides})


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        pytest.param(
            _till_sale(promised_delivery="2020-01-01"),
            "promised_delivery",
            "An in_store order is not delivered, so it takes no promised_delivery",
            id="till-sale-with-a-promise",
        ),
        pytest.param(
            _till_sale(carrier="DHL"),
            "carrier",
            "takes no carrier: leave it out, or send fulfilment ship",
            id="till-sale-with-a-carrier",
        ),
        pytest.param(
            order_body(fulfilment="pickup_in_store", store_id="st-par-01", carrier="DHL"),
            "carrier",
            "A pickup_in_store order is not delivered",
            id="pick-up-with-a-carrier",
        ),
        pytest.param(
            _till_sale(channel="web"),
            "fulfilment",
            "its channel is store, not web: an order placed by web is ship or pickup_in_store",
            id="web-order-sold-at-a-till",
        ),
        pytest.param(
            order_body(fulfilment="pickup_in_store", store_id="web"),
            "store_id",
            "'web' is the online warehouse, where no customer comes in",
            id="pick-up-at-the-warehouse",
        ),
        pytest.param(
            _till_sale(store_id="web"),
            "store_id",
            "names the store of the sale",
            id="till-sale-at-the-warehouse",
        ),
    ],
)
def test_what_an_order_s_fulfilment_cannot_hold_is_refused_not_dropped(
    client, db, writer, body, field, words
) -> None:
    response = _post(client, body, writer)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert orders.count_orders(db) == 0
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01").reserved == 0


def test_each_fulfilment_takes_what_fits_it(client, db, writer) -> None:
    catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 20), (CORKSCREW, "st-par-01", 20)])
    shipped = order_body(order_id="O-SHIP", carrier="DHL", promised_delivery="2099-01-01")
    by_phone = order_body(order_id="O-PHONE", channel="call_center")
    pick_up = order_body(
        order_id="O-PICK", channel="app", fulfilment="pickup_in_store", store_id="st-par-01"
    )
    ordered_in_shop = order_body(
        order_id="O-SHOP-PICK", channel="store", fulfilment="pickup_in_store", store_id="st-par-01"
    )
    till = _till_sale(order_id="O-TILL")
    for n, body in enumerate((shipped, by_phone, pick_up, ordered_in_shop, till)):
        response = _post(client, body, writer, key=f"k-fits-{n}")
        assert response.status_code == 201, response.text
    assert orders.get_order(db, order_id="O-SHIP").carrier == "DHL"
    assert orders.get_order(db, order_id="O-TILL").status == "completed"


def test_a_currency_nobody_uses_is_refused_naming_it(client, db, writer) -> None:
    response = _post(client, order_body(currency="QQQ"), writer)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "currency"
    assert "ISO 4217" in response.json()["detail"]
    assert orders.count_orders(db) == 0


@pytest.mark.parametrize(
    ("returned_at", "words"),
    [
        pytest.param("2099-01-01T00:00:00+00:00", "future", id="in-2099"),
        pytest.param("2001-01-01T00:00:00+00:00", "before order O-T was placed", id="before-it"),
    ],
)
def test_a_return_dated_in_the_future_or_before_its_order_is_refused(
    client, db, writer, returned_at, words
) -> None:
    _post(client, order_body(order_id="O-T"), writer)
    response = client.post(
        "/v1/orders/O-T/returns",
        json={
            "lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged"}],
            "channel": "store",
            "returned_at": returned_at,
        },
        headers={**writer, "Idempotency-Key": "r-when"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "returned_at"
    assert words in response.json()["detail"]
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []


def test_idempotency_key_semantics(client, db, writer) -> None:
    first = _post(client, order_body(), writer, key="abc")
    again = _post(client, order_body(), writer, key="abc")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert orders.count_orders(db) == 1
    different = _post(
        client, order_body(shipping_minor=0, total_minor=3000, payments=[]), writer, key="abc"
    )
    assert different.status_code == 422
    assert different.json()["field"] == "Idempotency-Key"
    missing = client.post("/v1/orders", json=order_body(), headers=writer)
    assert missing.status_code == 400
    assert missing.json()["field"] == "Idempotency-Key"
    assert orders.count_orders(db) == 1


def test_failed_command_frees_its_key_for_a_corrected_retry(client, db, writer) -> None:
    assert _post(client, order_body(total_minor=1), writer, key="k").status_code == 422
    assert _post(client, order_body(total_minor=1), writer, key="k").status_code == 422
    assert orders.count_orders(db) == 0


def test_pickup_in_store_reserves_stock_and_is_collected_with_its_code(
    client, db, writer, api_key
) -> None:
    body = order_body(
        fulfilment="pickup_in_store",
        store_id="st-par-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    placed = _post(client, body, writer).json()
    assert placed["status"] == "ready_for_pickup"
    assert re.fullmatch(r"[A-Z2-9]{8}", placed["pickup_code"])
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01").reserved == 2
    qr = client.get(placed["pickup_qr_url"], headers=auth(api_key("read")))
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.text.startswith("<?xml")
    wrong = client.post(
        f"/v1/orders/{placed['order_id']}/pickup",
        json={"pickup_code": "AAAAAAAA", "store_id": "st-par-01"},
        headers=command(writer),
    )
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "pickup_code"
    collected = client.post(
        f"/v1/orders/{placed['order_id']}/pickup",
        json={"pickup_code": placed["pickup_code"].lower(), "store_id": "st-par-01"},
        headers=command(writer),
    )
    assert collected.json()["status"] == "collected"
    level = catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01")
    assert (level.on_hand, level.reserved) == (3, 0)


def test_pickup_without_stock_is_a_conflict_and_reserves_nothing(client, db, writer) -> None:
    body = order_body(
        fulfilment="pickup_in_store",
        store_id="st-lyo-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    response = _post(client, body, writer)
    assert response.status_code == 409
    assert response.json()["field"] == "lines.0.quantity"
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-lyo-01").reserved == 0
    assert orders.count_orders(db) == 0


def test_pickup_where_the_store_keeps_no_stock_level_says_so_and_reserves_nothing(
    client, db, writer
) -> None:
    # given Lyon keeps a level for Chianti (1) but none for the corkscrew
    body = order_body(
        fulfilment="pickup_in_store",
        store_id="st-lyo-01",
        lines=[
            {"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200},
            {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
        ],
        discount_minor=0,
        shipping_minor=0,
        subtotal_minor=2100,
        total_minor=2100,
        payments=[],
    )

    response = _post(client, body, writer)

    # then the answer says the store keeps no stock level for it, not "not enough stock"
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["field"] == "lines.1.sku"
    assert "st-lyo-01 keeps no stock level for K-CORK" in problem["detail"]
    assert "PUT /v1/stock" in problem["detail"]
    assert "not enough stock" not in problem["detail"]
    # and nothing is reserved, nor any level made up
    db.expire_all()
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-lyo-01").reserved == 0
    assert catalog.get_stock(db, sku=CORKSCREW, store_id="st-lyo-01") is None
    assert orders.count_orders(db) == 0


def test_a_wrong_code_on_a_cancelled_pick_up_says_it_was_cancelled(client, db, writer) -> None:
    body = order_body(
        order_id="O-OFF",
        fulfilment="pickup_in_store",
        store_id="st-par-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    assert _post(client, body, writer).status_code == 201
    cancelled = client.post("/v1/orders/O-OFF/cancel", headers=command(writer))
    assert cancelled.status_code == 200, cancelled.text

    response = client.post(
        "/v1/orders/O-OFF/pickup",
        json={"pickup_code": "AAAAAAAA", "store_id": "st-par-01"},
        headers=command(writer),
    )

    assert response.status_code == 409, response.text
    assert response.json()["field"] == "order_id"
    assert "cancelled, not ready for pick-up" in response.json()["detail"]


def test_every_answer_gives_the_order_s_moments_in_utc(client, db, writer, api_key) -> None:
    # given a till at -05:00 sends its local time
    body = order_body(order_id="O-NY", placed_at="2026-12-06T23:30:00-05:00")
    placed = _post(client, body, writer, key="ny-1")
    replayed = _post(client, body, writer, key="ny-1")
    shipped = client.post(
        "/v1/orders/O-NY/status",
        json={"status": "shipped", "at": "2026-12-07T18:00:00+09:00"},
        headers=command(writer),
    )
    assert shipped.status_code == 200, shipped.text
    status = client.post(
        "/v1/orders/O-NY/status",
        json={"status": "delivered", "at": "2026-12-07T19:15:00+09:00"},
        headers=command(writer),
    )
    read = client.get("/v1/orders/O-NY", headers=auth(api_key("read")))

    # then placing, its replay, the status answer and the read all say the same UTC moments
    assert placed.status_code == 201, placed.text
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert status.status_code == 200, status.text
    for answer in (placed.json(), replayed.json(), status.json(), read.json()):
        assert answer["placed_at"] == "2026-12-07T04:30:00Z"
        assert answer["status_history"][0]["at"] == "2026-12-07T04:30:00Z"
    for answer in (status.json(), read.json()):
        assert answer["delivered_at"] == "2026-12-07T10:15:00Z"
        assert answer["status_history"][-1]["at"] == "2026-12-07T10:15:00Z"


def test_concurrent_pickup_orders_for_the_last_unit_one_wins(committed_url) -> None:
    # given a store with exactly one Chianti left
    with open_session(committed_url) as db:
        seed_catalog(db)
    barrier = threading.Barrier(6)
    results: list[str] = []

    def order(n: int) -> None:
        with open_session(committed_url) as db:
            barrier.wait(timeout=10)
            request = OrderIn(
                order_id=f"LAST-{n}",
                customer_id=f"C-{n}",
                channel="app",
                fulfilment="pickup_in_store",
                store_id="st-lyo-01",
                currency="EUR",
                lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200}],
                subtotal_minor=1200,
                total_minor=1200,
            )
            try:
                orders.place_order(db, order=request)
                results.append("won")
            except Conflict:
                results.append("refused")

    # when six customers order it at the same moment
    threads = [threading.Thread(target=order, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one order holds it
    assert sorted(results) == ["refused"] * 5 + ["won"]
    with open_session(committed_url) as db:
        level = catalog.get_stock(db, sku=CHIANTI, store_id="st-lyo-01")
        assert (level.on_hand, level.reserved) == (1, 1)
        assert orders.count_orders(db) == 1


def test_returns_refund_paid_amount_and_cannot_exceed_what_was_bought(client, db, writer) -> None:
    order = _post(client, order_body(order_id="O-R"), writer).json()
    first = client.post(
        "/v1/orders/O-R/returns",
        json={"lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged"}], "channel": "store"},
        headers={**writer, "Idempotency-Key": "r1"},
    )
    assert first.status_code == 201
    # 1 of 2 Chianti at 1200, less its share of the 300 order discount: 1200 - 300*1200/3300
    assert first.json()["refund_minor"] == 1200 - 109
    # paid by card alone: all of it is money to pay back, nothing in points
    assert (first.json()["money_refund_minor"], first.json()["points_refund_minor"]) == (1091, 0)
    too_many = client.post(
        "/v1/orders/O-R/returns",
        json={
            "lines": [{"sku": CHIANTI, "quantity": 2, "reason": "changed_mind"}],
            "channel": "web",
        },
        headers={**writer, "Idempotency-Key": "r2"},
    )
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "lines.0.quantity"
    returned = db.scalars(select(Event).where(Event.type == "order_returned")).all()
    assert [(e.properties["order_id"], e.properties["refund_minor"]) for e in returned] == [
        ("O-R", 1091)
    ]
    assert order["order_id"] == "O-R"


def test_late_delivery_job_emits_once_and_records_one_unsent_notice(db) -> None:
    seed_catalog(db)
    clock.set_clock(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    request = OrderIn(**order_body(order_id="O-LATE", promised_delivery="2026-03-04"))
    orders.place_order(db, order=request)
    orders.update_delivery_status(db, order_id="O-LATE", status="shipped")
    # before the promise nothing is late
    assert orders.flag_late_deliveries(db) == []
    # the promised day passes without delivery
    clock.set_clock(lambda: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    assert orders.flag_late_deliveries(db) == ["O-LATE"]
    assert orders.flag_late_deliveries(db) == []
    late = db.scalars(select(Event).where(Event.type == "delivery_late")).all()
    assert [e.properties["reason"] for e in late] == ["promised date passed"]
    notices = orders.notices_for(db, order_id="O-LATE")
    assert len(notices) == 1
    assert "4 March" in notices[0].message
    # no channel has sent it yet: the campaigns domain sends it and stamps it
    assert notices[0].sent_at is None


def test_carrier_delay_is_flagged_before_the_promise_passes(db) -> None:
    seed_catalog(db)
    clock.set_clock(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    orders.place_order(
        db, order=OrderIn(**order_body(order_id="O-D", promised_delivery="2026-03-06"))
    )
    orders.update_delivery_status(db, order_id="O-D", status="delayed", note="storm")
    assert orders.flag_late_deliveries(db) == ["O-D"]


def test_promise_kept_share_by_carrier(db) -> None:
    seed_catalog(db)
    clock.set_clock(lambda: datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    for n, carrier in enumerate(["DHL", "DHL", "DHL", "UPS"]):
        orders.place_order(
            db,
            order=OrderIn(
                **order_body(order_id=f"O-{n}", carrier=carrier, promised_delivery="2026-03-03")
            ),
        )
        orders.update_delivery_status(db, order_id=f"O-{n}", status="shipped")
    on_time = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    # the carriers report the deliveries once they happened (a time ahead of now is refused)
    clock.set_clock(lambda: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    orders.update_delivery_status(db, order_id="O-0", status="delivered", at=on_time)
    orders.update_delivery_status(
        db, order_id="O-1", status="delivered", at=on_time + timedelta(days=1)
    )
    orders.update_delivery_status(db, order_id="O-3", status="delivered", at=on_time)
    clock.set_clock(lambda: datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    rows = {row.key: (row.due, row.on_time) for row in orders.promise_kept(db, by="carrier")}
    assert rows == {"DHL": (3, 1), "UPS": (1, 1)}


@pytest.mark.parametrize(
    ("status", "at", "words"),
    [
        pytest.param("packed", "2030-01-01T00:00:00Z", "future", id="packed-in-2030"),
        pytest.param("delivered", "2040-01-01T00:00:00Z", "future", id="delivered-in-2040"),
        pytest.param(
            "shipped", "2020-01-01T00:00:00Z", "before order T-A-2 was placed", id="before-placing"
        ),
        pytest.param(
            "delivered",
            "2026-12-07T11:00:00Z",
            "before the order's last status (shipped at 2026-12-07T12:00:00+00:00)",
            id="before-the-last-status",
        ),
    ],
)
def test_a_delivery_status_dated_ahead_of_now_or_before_the_order_s_past_is_refused(
    client, db, writer, status, at, words
) -> None:
    clock.set_clock(lambda: datetime(2026, 12, 7, 14, 0, tzinfo=UTC))
    body = order_body(order_id="T-A-2", placed_at="2026-12-07T09:00:00Z")
    assert _post(client, body, writer).status_code == 201
    shipped = {"status": "shipped", "at": "2026-12-07T12:00:00Z"}
    if status == "delivered" and at.startswith("2026"):
        sent = client.post("/v1/orders/T-A-2/status", json=shipped, headers=command(writer))
        assert sent.status_code == 200, sent.text
    before = [(c.status, c.at) for c in orders.status_history(db, order_id="T-A-2")]
    response = client.post(
        "/v1/orders/T-A-2/status", json={"status": status, "at": at}, headers=command(writer)
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "at"
    assert words in response.json()["detail"]
    assert orders.get_order(db, order_id="T-A-2").delivered_at is None
    assert [(c.status, c.at) for c in orders.status_history(db, order_id="T-A-2")] == before
    logged = db.scalars(
        select(Event.type).where(Event.type.in_(["order_packed", "order_delivered"]))
    )
    assert list(logged) == []
    # a time in the order's own past, after the last status, and one a little ahead of a
    # slow server clock are taken
    for update in (shipped, {"status": "delivered", "at": "2026-12-07T14:03:00Z"}):
        if update == shipped and status == "delivered" and at.startswith("2026"):
            continue
        sent = client.post("/v1/orders/T-A-2/status", json=update, headers=command(writer))
        assert sent.status_code == 200, sent.text
    assert sent.json()["delivered_at"] == "2026-12-07T14:03:00Z"


def test_an_order_is_read_with_its_status_history_oldest_first(client, db, writer, api_key) -> None:
    clock.set_clock(lambda: datetime(2026, 12, 7, 14, 0, tzinfo=UTC))
    assert _post(client, order_body(order_id="T-H", placed_at="2026-12-07T09:00:00Z"), writer)
    for status, at, note in (
        ("packed", "2026-12-07T10:00:00Z", None),
        ("shipped", "2026-12-07T11:30:00+01:00", "tracking 1Z999"),
        ("delivered", None, None),
    ):
        update = {
            "status": status,
            **({"at": at} if at else {}),
            **({"note": note} if note else {}),
        }
        sent = client.post("/v1/orders/T-H/status", json=update, headers=command(writer))
        assert sent.status_code == 200, sent.text
    expected = [
        {"status": "placed", "at": "2026-12-07T09:00:00Z", "note": None},
        {"status": "packed", "at": "2026-12-07T10:00:00Z", "note": None},
        {"status": "shipped", "at": "2026-12-07T10:30:00Z", "note": "tracking 1Z999"},
        {"status": "delivered", "at": "2026-12-07T14:00:00Z", "note": None},
    ]
    assert sent.json()["status_history"] == expected
    reader = auth(api_key("read"))
    assert client.get("/v1/orders/T-H", headers=reader).json()["status_history"] == expected
    listed = client.get("/v1/orders", params={"customer_id": "C-100"}, headers=reader).json()
    assert listed["items"][0]["status_history"] == expected
    # a pick-up tells when it was ready and when it was collected
    pick_up = order_body(
        order_id="T-P", fulfilment="pickup_in_store", store_id="st-par-01", placed_at=None
    )
    placed = _post(client, pick_up, writer, key="k-pick").json()
    assert [(c["status"], c["at"]) for c in placed["status_history"]] == [
        ("placed", "2026-12-07T14:00:00Z"),
        ("ready_for_pickup", "2026-12-07T14:00:00Z"),
    ]


def test_a_customers_orders_come_a_page_at_a_time_newest_first(client, db, writer, api_key) -> None:
    reader = auth(api_key("read"))
    # given a customer with five orders, two of them placed at the same moment
    placed = [f"2026-01-0{day}T10:00:00+00:00" for day in (1, 2, 3, 3, 4)]
    for n, at in enumerate(placed):
        body = order_body(order_id=f"O-P{n}", placed_at=at)
        assert _post(client, body, writer, key=f"page-{n}").status_code == 201
    # when they are read two at a time, following next_cursor
    seen, cursor = [], None
    for _ in range(5):
        query = "customer_id=C-100&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/v1/orders?{query}", headers=reader).json()
        seen.append([order["order_id"] for order in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # then every order comes once, newest first, ties by order id, and the last page says so
    assert seen == [["O-P4", "O-P3"], ["O-P2", "O-P1"], ["O-P0"]]
    # and a cursor that is not one of theirs is refused naming it
    other = client.get("/v1/orders?customer_id=C-100&cursor=O-NOPE", headers=reader)
    assert other.status_code == 422
    assert other.json()["field"] == "cursor"


def test_a_return_at_a_store_the_catalogue_lacks_is_refused(client, db, writer) -> None:
    _post(client, order_body(order_id="O-S"), writer)
    body = {
        "lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged"}],
        "channel": "store",
        "store_id": "no-such-store",
    }
    response = client.post(
        "/v1/orders/O-S/returns", json=body, headers={**writer, "Idempotency-Key": "r-ghost"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "store_id"
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []


def test_a_return_key_reused_for_another_order_is_refused_not_applied(client, db, writer) -> None:
    for order_id in ("O-K1", "O-K2"):
        _post(client, order_body(order_id=order_id), writer, key=f"place-{order_id}")
    body = {"lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged"}], "channel": "store"}
    headers = {**writer, "Idempotency-Key": "one-return"}
    assert client.post("/v1/orders/O-K1/returns", json=body, headers=headers).status_code == 201
    again = client.post("/v1/orders/O-K2/returns", json=body, headers=headers)
    assert again.status_code == 422
    assert again.json()["field"] == "Idempotency-Key"
    returned = db.scalars(select(Event).where(Event.type == "order_returned")).all()
    assert [e.properties["order_id"] for e in returned] == ["O-K1"]
