"""Segment's E-commerce spec v2 as orders and returns: "Order Completed" sent to the Segment
routes becomes one order with its points, "Order Refunded" a return that takes them back, a
key with orders-from-tracking off gives no order, and what cannot become an order is kept with
its reason for the operator."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.domains import load_tasks
from rapport.events import segment
from rapport.events.models import Event, ProcessorCursor
from rapport.events.processors import (
    registered_processors,
    run_batch,
    run_processors,
)
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.models import Order, TrackedOrderEvent
from rapport.orders.schemas import OrderIn
from rapport.orders.tracked import mapping
from rapport.orders.tracked import processor as processor_module
from rapport.orders.tracked.processor import TRACKING_SOURCE
from rapport.platform import clock, formatting, jobs
from rapport.platform import service as platform
from rapport.platform.db import create_db_engine, open_session
from rapport.platform.migrations_runner import upgrade
from tests.conftest import app_committing_to, auth, command
from tests.events.factories import basic_auth
from tests.orders.factories import CHIANTI, CORKSCREW, seed_catalog

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def tracking_key(
    db: Session, *, orders_from_tracking: bool = True, server_side: bool = True
) -> str:
    """A key for the shop's tracking: server-side keys may write (their orders are trusted);
    a browser's key only ingests."""
    scopes = [platform.Scope.INGEST] + ([platform.Scope.WRITE] if server_side else [])
    issued = platform.create_api_key(db, name="site", scopes=scopes)
    issued.key.orders_from_tracking = orders_from_tracking
    db.commit()
    return issued.secret


def completed(order_id: str, **changes: Any) -> dict[str, Any]:
    """Order Completed as Segment's spec example has it: 2 x 12.00 + 9.00 of goods, 3.00 off,
    4.90 shipping and 2.00 tax."""
    properties: dict[str, Any] = {
        "order_id": order_id,
        "affiliation": "Web shop",
        "revenue": 33.0,
        "subtotal": 30.0,
        "total": 36.9,
        "discount": 3,
        "shipping": 4.9,
        "tax": 2,
        "coupon": "SPRING",
        "currency": "EUR",
        "products": [
            {"product_id": "p-1", "sku": CHIANTI, "name": "Chianti", "price": 12, "quantity": 2},
            {"product_id": CORKSCREW, "name": "Corkscrew", "price": 9.0, "category": "Tools"},
        ],
    }
    properties.update(changes)
    return properties


def track(
    client: Any,
    secret: str,
    event: str,
    properties: dict[str, Any],
    *,
    user_id: str | None = "C-100",
    anonymous_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    message: dict[str, Any] = {
        "event": event,
        "messageId": f"msg-{next(_numbers)}",
        "properties": properties,
        "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
        "context": context or {},
    }
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    response = client.post("/v1/track", json=message, headers=basic_auth(secret))
    assert response.status_code == 200, response.text


# The processors an order from tracking goes through: profiles, orders, then loyalty's
# earning from the order_placed / order_returned events orders.tracked logs.
PROCESSORS = ("customers.profile", "orders.tracked", "loyalty.earning")


def process(db: Session) -> None:
    """Run those processors, in that order (the profile first, as the worker registers them),
    until the log is caught up: the order other tests happened to register them in must not
    decide whether a sender's profile exists when their message is handled."""
    load_tasks()
    named = {proc.name: proc for proc in registered_processors()}
    chain = [named[name] for name in PROCESSORS if name in named]
    assert len(chain) == len(PROCESSORS)
    # On PostgreSQL, positions other tests' rolled-back inserts took are holes in the log;
    # with nobody else writing to this database they are final at once, clock or not.
    while sum(run_batch(db, proc) for proc in chain):
        pass


def refusals(db: Session) -> list[tuple[str, str, str]]:
    rows = db.scalars(
        select(TrackedOrderEvent)
        .where(TrackedOrderEvent.outcome == "refused")
        .order_by(TrackedOrderEvent.id)
    )
    return [(row.order_id or "", row.reason or "", row.field or "") for row in rows]


# The operator's list of refusals (the orders router includes it).
REFUSALS = "/v1/orders/tracked/refusals"


@pytest.fixture
def shop(db: Session) -> None:
    clock.set_clock(lambda: NOW)
    seed_catalog(db, stock=50)


# --- through the HTTP API ------------------------------------------------------------------


def test_order_completed_becomes_one_order_with_points_and_refunds_take_them_back(
    client, api_key, db, shop
) -> None:
    # given a site sending Segment's e-commerce events with a key whose mapping is on
    secret = tracking_key(db)
    read = auth(api_key("read"))

    # when an order is completed on the app and the log is processed, twice over (a replay)
    track(client, secret, "Order Completed", completed("W-1001"), context={"app": {"name": "S"}})
    process(db)
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "orders.tracked").values(position=0)
    )
    process(db)

    # then it is one order, as POST /v1/orders would have made it, for the shop's customer
    order = client.get("/v1/orders/W-1001", headers=read).json()
    assert {k: order[k] for k in ("channel", "fulfilment", "currency", "status")} == {
        "channel": "app",
        "fulfilment": "ship",
        "currency": "EUR",
        "status": "placed",
    }
    assert (order["subtotal_minor"], order["discount_minor"], order["shipping_minor"]) == (
        3300,
        300,
        490,
    )
    assert order["total_minor"] == 3490  # Rapport's orders hold no tax
    assert [(li["sku"], li["quantity"], li["unit_price_minor"]) for li in order["lines"]] == [
        (CHIANTI, 2, 1200),
        (CORKSCREW, 1, 900),
    ]
    assert order["promised_delivery"] is None  # the shop delivers: never flagged late
    customer_id = order["customer_id"]
    shop_customer = customers.find_customer(db, kind="external_id", value="C-100")
    assert shop_customer is not None
    assert shop_customer.customer_id == customer_id
    assert db.scalar(select(Order.source).where(Order.order_id == "W-1001")) == "tracking"
    assert len(orders.customer_orders(db, customer_id=customer_id)) == 1
    # and the member earned 30 points for 30 euros of goods and 200 for a first purchase
    member = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()
    assert member["balance"] == 45 + 200  # 30 euros of goods x 1.5 on the app, first purchase

    # when one bottle is refunded, then the rest of the order
    track(
        client,
        secret,
        "Order Refunded",
        {"order_id": "W-1001", "products": [{"sku": CHIANTI, "quantity": 1}]},
    )
    process(db)
    after_one = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()
    track(client, secret, "Order Refunded", {"order_id": "W-1001", "total": 24.9})
    process(db)
    # (and the whole log handled once more, as after the processor's cursor was moved back)
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "orders.tracked").values(position=0)
    )
    process(db)

    # then each is a return, and the points the returned lines earned go back
    lines = client.get("/v1/orders/W-1001", headers=read).json()["lines"]
    assert [(li["sku"], li["returned_quantity"]) for li in lines] == [(CHIANTI, 2), (CORKSCREW, 1)]
    assert after_one["balance"] < 245
    final = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()
    assert final["balance"] < after_one["balance"]
    # what the lines earned is gone (each return rounds down in the member's favour); the
    # first-purchase bonus is not tied to lines
    assert final["balance"] in (200, 201)
    outcomes = db.scalars(select(TrackedOrderEvent.outcome).order_by(TrackedOrderEvent.id))
    assert list(outcomes) == ["placed", "returned", "returned"]


def test_an_order_posted_to_the_orders_api_is_not_placed_again(client, api_key, db, shop) -> None:
    # given an order the shop posted to /v1/orders, with its points
    secret = tracking_key(db)
    write, read = auth(api_key("write")), auth(api_key("read"))
    body = {
        "order_id": "W-2002",
        "customer_id": "C-200",
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "subtotal_minor": 2400,
        "total_minor": 2400,
    }
    posted = client.post("/v1/orders", json=body, headers=write | {"Idempotency-Key": "k-1"})
    assert posted.status_code == 201, posted.text
    customer_id = posted.json()["customer_id"]

    # when the same order also arrives as Order Completed from the site's tracking
    products = [{"sku": CHIANTI, "price": 12, "quantity": 2}]
    track(
        client,
        secret,
        "Order Completed",
        {"order_id": "W-2002", "products": products, "total": 24, "currency": "EUR"},
        user_id="C-200",
    )
    process(db)

    # then there is still one order, earning once, and the operator sees why
    assert len(orders.customer_orders(db, customer_id=customer_id)) == 1
    member = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()
    assert member["balance"] == 24 + 200
    assert refusals(db) == [("W-2002", "order_exists", "properties.order_id")]


def test_a_refund_of_a_pick_up_order_not_collected_is_refused(client, api_key, db, shop) -> None:
    # given a pick-up order the shop posted, still waiting in the shop
    secret = tracking_key(db)
    body = {
        "order_id": "W-PICK",
        "customer_id": "C-100",
        "channel": "web",
        "fulfilment": "pickup_in_store",
        "store_id": "st-par-01",
        "currency": "EUR",
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "subtotal_minor": 2400,
        "total_minor": 2400,
    }
    posted = client.post("/v1/orders", json=body, headers=command(api_key("write")))
    assert posted.status_code == 201, posted.text

    # when the site's tracking says it was refunded
    track(client, secret, "Order Refunded", {"order_id": "W-PICK"})
    process(db)

    # then nothing is returned, and the operator sees why
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []
    assert refusals(db) == [("W-PICK", "not_handed_over", "properties.order_id")]
    kept = db.scalars(select(TrackedOrderEvent.message)).one()
    assert "has not been collected" in kept


def test_a_refund_sent_by_another_person_is_refused(client, api_key, db, shop) -> None:
    # given an order of C-100's, and another customer, C-200
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-MINE"), user_id="C-100")
    track(client, secret, "Order Completed", completed("W-THEIRS"), user_id="C-200")
    process(db)
    owner = orders.get_order(db, order_id="W-MINE").customer_id
    other = orders.get_order(db, order_id="W-THEIRS").customer_id

    # when C-200 (by the shop's number, then by Rapport's id) says C-100's order was refunded
    track(client, secret, "Order Refunded", {"order_id": "W-MINE"}, user_id="C-200")
    track(client, secret, "Order Refunded", {"order_id": "W-MINE"}, user_id=other)
    # and a visitor who never bought anything says so
    track(client, secret, "Order Refunded", {"order_id": "W-MINE"}, user_id="C-NOBODY")
    process(db)
    nobody = customers.find_customer_ref(db, ref="C-NOBODY")  # the profile tracking made

    # then nothing comes back, and each is kept as a refusal under its sender, not the owner
    assert [li.returned_quantity for li in orders.get_lines(db, order_id="W-MINE")] == [0, 0]
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []
    assert refusals(db) == [("W-MINE", "not_the_customer", "userId")] * 3
    kept = db.scalars(select(TrackedOrderEvent).where(TrackedOrderEvent.outcome == "refused"))
    assert [(row.customer_ref, row.customer_id) for row in kept] == [
        ("C-200", other),
        (other, other),
        ("C-NOBODY", nobody),
    ]
    assert owner not in (other, nobody)
    # and the owner's own refund is applied
    track(client, secret, "Order Refunded", {"order_id": "W-MINE"}, user_id="C-100")
    process(db)
    assert [li.returned_quantity for li in orders.get_lines(db, order_id="W-MINE")] == [2, 1]


def test_a_refund_sent_by_a_profile_merged_with_the_customer_is_applied(
    client, api_key, db, shop
) -> None:
    # given an order of C-100's, and C-101, found later to be the same person
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-ONE"), user_id="C-100")
    track(client, secret, "Order Completed", completed("W-TWO-IDS"), user_id="C-101")
    process(db)
    first = orders.get_order(db, order_id="W-ONE").customer_id
    second = orders.get_order(db, order_id="W-TWO-IDS").customer_id
    customers.merge_customers(
        db, source_customer_id=first, target_customer_id=second, reason="same", actor="test"
    )

    # when the shop sends the refund of C-100's order under C-101's number
    track(client, secret, "Order Refunded", {"order_id": "W-ONE"}, user_id="C-101")
    process(db)

    # then it is the same person's: the return is recorded
    assert refusals(db) == []
    assert [li.returned_quantity for li in orders.get_lines(db, order_id="W-ONE")] == [2, 1]


@pytest.mark.parametrize(
    "refund",
    [
        pytest.param({"products": [{"sku": CHIANTI, "quantity": 3}]}, id="three-named"),
        pytest.param({}, id="the-whole-order"),
    ],
)
def test_a_refund_of_a_product_sold_at_two_prices_returns_both_lines(
    client, api_key, db, shop, refund
) -> None:
    # given an order with one Chianti at 12.00 and two at 10.00: two lines of one SKU
    secret = tracking_key(db)
    products = [
        {"sku": CHIANTI, "price": 12, "quantity": 1},
        {"sku": CHIANTI, "price": 10, "quantity": 2},
    ]
    track(
        client,
        secret,
        "Order Completed",
        {"order_id": "W-TWO", "products": products, "total": 32, "currency": "EUR"},
    )
    process(db)
    lines = orders.get_lines(db, order_id="W-TWO")
    assert [(line.sku, line.quantity) for line in lines] == [(CHIANTI, 1), (CHIANTI, 2)]

    # when all three are refunded
    track(client, secret, "Order Refunded", {"order_id": "W-TWO", **refund})
    process(db)

    # then both lines come back whole, refunding what they cost
    assert refusals(db) == []
    db.expire_all()
    lines = orders.get_lines(db, order_id="W-TWO")
    assert [line.returned_quantity for line in lines] == [1, 2]
    returned = db.scalars(select(Event).where(Event.type == "order_returned")).one()
    assert returned.properties["refund_minor"] == 3200


@pytest.mark.parametrize(
    "key",
    [
        pytest.param({"orders_from_tracking": False}, id="switched-off"),
        pytest.param({"server_side": False}, id="browser-key-that-may-only-track"),
    ],
)
def test_a_key_with_orders_from_tracking_off_makes_no_order(client, api_key, db, shop, key) -> None:
    # given a site key that posts no orders: switched off by a shop that posts them itself, or
    # one that may only track (a browser's, readable by anyone: a forged order must earn nothing)
    secret = tracking_key(db, **key)

    # when Order Completed and Order Refunded arrive on that key
    track(client, secret, "Order Completed", completed("W-3003"), user_id="C-300")
    track(client, secret, "Order Refunded", {"order_id": "W-3003"}, user_id="C-300")
    process(db)

    # then they stay events: no order, no refusal
    assert orders.get_order(db, order_id="W-3003") is None
    assert refusals(db) == []
    assert db.scalar(select(Order.order_id)) is None


# Order Completed messages Rapport cannot hold as orders, and the refusal each leaves.
WRONG_ORDERS = [
    # the stated total is not the products' value with shipping (and tax)
    (completed("W-41", total=40.0), ("W-41", "totals_disagree", "properties.total")),
    (completed("W-42", revenue=31.5), ("W-42", "totals_disagree", "properties.revenue")),
    (completed("W-43", products=[]), ("W-43", "no_products", "properties.products")),
    (
        completed("W-44", products=[{"sku": "NOPE", "price": 1}], revenue=1, subtotal=None),
        ("W-44", "unknown_product", "properties.products.0.sku"),
    ),
    (completed("W-45", currency="EUX"), ("W-45", "unknown_currency", "properties.currency")),
    (
        completed("W-46", products=[{"sku": CHIANTI, "quantity": 1}]),
        ("W-46", "invalid_product", "properties.products.0.price"),
    ),
    (completed(""), ("", "missing_order_id", "properties.order_id")),
    # an order id POST /v1/orders would refuse too
    (completed("W 4/7"), ("W 4/7", "invalid_order_id", "properties.order_id")),
]


def test_a_message_that_cannot_be_an_order_is_kept_with_its_reason(
    client, api_key, db, shop
) -> None:
    # given a site whose tracked orders are wrong in every way listed above
    secret = tracking_key(db)

    # when they arrive and are processed
    for properties, _ in WRONG_ORDERS:
        track(client, secret, "Order Completed", properties)
    process(db)

    # then no order is made and each refusal says why, for the operator
    assert db.scalar(select(Order.order_id)) is None
    assert refusals(db) == [expected for _, expected in WRONG_ORDERS]
    kept = db.scalars(select(TrackedOrderEvent)).all()
    assert {(row.customer_ref, row.event_type, row.outcome) for row in kept} == {
        ("C-100", "order_completed", "refused")
    }


def test_refusals_are_listed_newest_first_by_page_for_admin_keys_only(
    client, api_key, db, shop
) -> None:
    # given three refused messages: two refunds of unknown orders and one order without id
    secret = tracking_key(db)
    track(client, secret, "Order Refunded", {"order_id": "GONE-1"})
    track(client, secret, "Order Refunded", {"order_id": "GONE-2"})
    track(client, secret, "Order Completed", completed(""))
    process(db)
    admin = auth(api_key("admin"))

    # when the operator reads them two at a time, and one reason alone
    first = client.get(f"{REFUSALS}?limit=2", headers=admin).json()
    rest = client.get(f"{REFUSALS}?limit=2&before={first['next_before']}", headers=admin).json()
    unknown = client.get(f"{REFUSALS}?reason=unknown_order", headers=admin)

    # then pages follow each other and every refusal is counted
    assert [r["reason"] for r in first["refusals"]] == ["missing_order_id", "unknown_order"]
    assert [r["order_id"] for r in rest["refusals"]] == ["GONE-1"]
    assert rest["next_before"] is None
    assert first["counts"] == {"missing_order_id": 1, "unknown_order": 2}
    assert [r["order_id"] for r in unknown.json()["refusals"]] == ["GONE-2", "GONE-1"]
    # and a read key may not see them
    denied = client.get(REFUSALS, headers=auth(api_key("read")))
    assert denied.status_code == 403


def test_an_anonymous_visitor_order_goes_to_their_visitor_profile(client, api_key, db, shop):
    # given a guest checkout: only Segment's anonymousId names the buyer
    secret = tracking_key(db)
    track(
        client,
        secret,
        "Order Completed",
        completed("W-5005"),
        user_id=None,
        anonymous_id="anon-77",
    )

    # when it is processed
    process(db)

    # then the order belongs to the visitor's profile
    order = orders.get_order(db, order_id="W-5005")
    assert order is not None
    assert order.customer_id is not None
    read = auth(api_key("read"))
    profile = client.get(f"/v1/customers/{order.customer_id}", headers=read).json()
    assert profile["is_anonymous"] is True


# --- the mapping ---------------------------------------------------------------------------


def test_money_is_converted_by_the_currency_exponent() -> None:
    # given prices in yen (no decimals) and Kuwaiti dinar (three)
    yen = mapping.products_of(
        {"products": [{"sku": "A", "price": 1200, "quantity": 3}]}, required=True
    )
    order = mapping.build_order(
        {"total": 3600},
        order_id="J-1",
        products=yen,
        skus=["A"],
        currency="JPY",
        customer_id=None,
        channel="web",
        placed_at=NOW,
    )
    dinar = mapping.products_of({"products": [{"sku": "A", "price": "1.255"}]}, required=True)
    kuwait = mapping.build_order(
        {"revenue": 1.255},
        order_id="K-1",
        products=dinar,
        skus=["A"],
        currency="KWD",
        customer_id=None,
        channel="web",
        placed_at=NOW,
    )

    # then each is in its own minor units
    assert (order.lines[0].unit_price_minor, order.total_minor) == (1200, 3600)
    assert (kuwait.lines[0].unit_price_minor, kuwait.total_minor) == (1255, 1255)
    assert mapping.currency_exponent("EUR") == 2
    assert mapping.currency_exponent("XYZ") is None


@pytest.mark.parametrize(
    ("currency", "price", "minor", "shown"),
    [("IQD", "1.234", 1234, "IQD1.234"), ("RSD", "12.34", 1234, "RSD12.34"), ("AFN", 5, 500, None)],
)
def test_money_of_a_currency_cldr_shows_without_decimals_has_its_iso_4217_exponent(
    currency: str, price: str | int, minor: int, shown: str | None
) -> None:
    # given a price in a currency ISO 4217 gives decimals and CLDR shows without
    products = mapping.products_of({"products": [{"sku": "A", "price": price}]}, required=True)
    order = mapping.build_order(
        {"total": price},
        order_id="Q-1",
        products=products,
        skus=["A"],
        currency=currency,
        customer_id=None,
        channel="web",
        placed_at=NOW,
    )
    # then it is stored in ISO 4217 minor units, which the admin pages show back as sent
    assert (order.lines[0].unit_price_minor, order.total_minor) == (minor, minor)
    assert mapping.currency_exponent(currency) == formatting.minor_unit_digits(currency)
    if shown is not None:
        assert formatting.money(minor, currency) == shown


@pytest.mark.parametrize(
    ("_case", "stated"),
    [
        ("Segment's example", {"revenue": 25, "subtotal": 22.5, "total": 27.5}),
        ("revenue after discount, subtotal before", {"revenue": 22.5, "subtotal": 25}),
        ("tax inside the prices", {"total": 25.5}),
        ("float noise of the shop's sums", {"total": 27.500000000000004}),
        ("within one cent", {"total": 27.51}),
    ],
)
def test_stated_totals_are_accepted_in_each_reading(_case, stated) -> None:
    # given 19 + 2 x 3 of goods, 2.50 off, 3 shipping and 2 tax (Segment's spec example)
    products = mapping.products_of(
        {"products": [{"sku": "A", "price": 19}, {"sku": "B", "price": 3, "quantity": 2}]},
        required=True,
    )
    properties = {"discount": 2.5, "shipping": 3, "tax": 2, **stated}

    # when it is mapped
    order = mapping.build_order(
        properties,
        order_id="S-1",
        products=products,
        skus=["A", "B"],
        currency="USD",
        customer_id="u-1",
        channel="app",
        placed_at=NOW,
    )

    # then it is the order Rapport keeps: goods less discount plus shipping
    assert isinstance(order, OrderIn)
    assert (order.subtotal_minor, order.discount_minor, order.total_minor) == (2500, 250, 2550)
    assert order.channel == "app"


def test_amounts_that_are_not_money_are_refused() -> None:
    for value in (-1, "abc", float("inf"), True, [1]):
        with pytest.raises(mapping.Refusal) as refused:
            mapping.amount(value, field="properties.total")
        assert refused.value.reason == "invalid_amount"
    assert mapping.amount("19.99", field="x") == Decimal("19.99")


def test_the_processor_reads_the_source_the_segment_routes_stamp() -> None:
    assert TRACKING_SOURCE == segment.SOURCE != segment.SOURCE_WITHOUT_ORDERS


# --- the shops' own SDKs, default settings, against a running server --------------------------


def test_segment_and_rudderstack_sdks_order_and_refund_once(live_server) -> None:
    from rudderstack.analytics import Client as RudderClient
    from segment.analytics import Client as SegmentClient

    # given a catalogue, one key per site with the mapping on, and one with it off
    with open_session(live_server.database_url) as db:
        seed_catalog(db, stock=50)
        keys = {
            name: tracking_key(db, orders_from_tracking=name != "pos-site")
            for name in ("segment", "rudder", "pos-site")
        }
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    sdks = {
        "segment": SegmentClient(write_key=keys["segment"], host=live_server.base_url),
        "rudder": RudderClient(write_key=keys["rudder"], host=live_server.base_url),
        "pos-site": SegmentClient(write_key=keys["pos-site"], host=live_server.base_url),
    }

    def sent_and_processed() -> None:
        for sdk in sdks.values():
            sdk.flush()
        # twice: loyalty's processor runs before the one that logs order_placed
        run_processors(database_url=live_server.database_url)
        run_processors(database_url=live_server.database_url)

    # when each site completes an order and sends it again, with the SDKs' default settings
    for name, sdk in sdks.items():
        for _ in range(2):
            sdk.track(f"sdk-{name}", "Order Completed", completed(f"O-{name}"), timestamp=at)
    sent_and_processed()
    with open_session(live_server.database_url) as db:
        placed = {
            order.order_id: (order.customer_id, loyalty.balance(db, customer_id=order.customer_id))
            for order in db.scalars(select(Order))
            if order.customer_id
        }
    # and then refunds it
    for name, sdk in sdks.items():
        sdk.track(f"sdk-{name}", "Order Refunded", {"order_id": f"O-{name}"}, timestamp=at)
    sent_and_processed()
    for sdk in sdks.values():
        sdk.shutdown()

    # then each site with the mapping on has exactly one order, its points earned then taken
    # back; the site with it off has none
    assert {order_id: points for order_id, (_, points) in placed.items()} == {
        "O-segment": 230,
        "O-rudder": 230,
    }
    with open_session(live_server.database_url) as db:
        for order_id, (customer_id, _) in placed.items():
            assert loyalty.balance(db, customer_id=customer_id) in (200, 201)
            lines = orders.get_lines(db, order_id=order_id)
            assert all(line.returned_quantity == line.quantity for line in lines)
        kept = db.scalars(
            select(TrackedOrderEvent.reason).where(TrackedOrderEvent.reason.is_not(None))
        ).all()
    assert sorted(kept) == ["order_exists", "order_exists"]  # the second sends


def test_a_refused_order_is_in_the_persons_export_and_goes_with_their_erasure(
    client, api_key, db, shop
) -> None:
    # given a refused tracked order of the shop's customer C-100
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-6006", total=1.0))
    process(db)
    person = customers.find_customer(db, kind="external_id", value="C-100")
    assert person is not None
    admin = auth(api_key("admin"))

    # when they ask for their data, then to be erased
    exported = client.get(f"/v1/customers/{person.customer_id}/export", headers=admin)
    erased = client.post(
        f"/v1/customers/{person.customer_id}/erase",
        json={"requested_by": "dpo"},
        headers=command(admin),
    )

    # then the export lists the refusal, and nothing of it is kept after the erasure
    assert exported.status_code == 200, exported.text
    assert [r["order_id"] for r in exported.json()["tracked_order_refusals"]] == ["W-6006"]
    assert erased.status_code == 200, erased.text
    assert refusals(db) == []


def test_an_erasure_leaves_no_senders_id_naming_the_person_on_their_tracked_orders(
    client, api_key, db, shop
) -> None:
    # given an order the shop tracked under a message id that spells out who bought it
    secret = tracking_key(db)
    message_id = "order-W-6107-c100.buyer@example.com"
    response = client.post(
        "/v1/track",
        json={
            "event": "Order Completed",
            "messageId": message_id,
            "userId": "C-100",
            "properties": completed("W-6107"),
            "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
        },
        headers=basic_auth(secret),
    )
    assert response.status_code == 200, response.text
    process(db)
    assert orders.get_order(db, order_id="W-6107") is not None
    person = customers.find_customer(db, kind="external_id", value="C-100")
    assert person is not None
    # when the person is erased
    erased = client.post(
        f"/v1/customers/{person.customer_id}/erase",
        json={"requested_by": "dpo"},
        headers=command(auth(api_key("admin"))),
    )
    assert erased.status_code == 200, erased.text
    # then neither the log nor the record of the applied order keeps the sender's id, and
    # the order still counts once
    db.expire_all()
    kept = db.scalars(select(TrackedOrderEvent.event_id)).all()
    logged = db.scalars(select(Event.event_id)).all()
    assert message_id not in [*kept, *logged]
    assert len(kept) == 1
    assert kept[0] in logged
    assert orders.get_order(db, order_id="W-6107") is not None


def test_an_existing_install_does_not_turn_old_tracked_orders_into_orders(tmp_path) -> None:
    # given an install from before tracked orders, whose log holds an Order Completed
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "c17000000002")
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Event.__table__).values(
                event_id="old-1",
                type="order_completed",
                user_id="C-1",
                channel="web",
                occurred_at=NOW,
                received_at=NOW,
                properties=completed("OLD-1"),
                context={},
                source="segment",
            )
        )

    # when it is upgraded
    upgrade(url)

    # then the tracked-orders processor starts after it: old purchases are not placed again
    with engine.connect() as connection:
        cursor = connection.execute(
            select(ProcessorCursor.position).where(ProcessorCursor.name == "orders.tracked")
        ).scalar_one()
        head = connection.execute(select(func.max(Event.position))).scalar_one()
    engine.dispose()
    assert cursor == head == 1


# --- a poison message holds nothing up -------------------------------------------------------


@pytest.fixture
def committed_api(committed_url: str, tmp_path) -> Iterator[tuple[TestClient, str]]:
    """The app on a database whose every request commits, as in production, so the worker's
    own sessions see what was sent; the committed URL beside it."""
    application = app_committing_to(
        committed_url, tmp_path, secret_key="tracked-orders-secret-for-tests"
    )
    with TestClient(application) as client:
        yield client, committed_url


def test_an_order_priced_beyond_any_amount_is_refused_and_holds_up_no_order_or_job(
    committed_api, monkeypatch
) -> None:
    # given a shop tracking orders, and a job due now (the worker runs only it: no schedules)
    client, url = committed_api
    load_tasks()
    monkeypatch.setattr(jobs, "_schedules", {})
    ran: list[dict[str, Any]] = []
    monkeypatch.setitem(jobs._handlers, "test.due", lambda _db, payload: ran.append(payload))
    with open_session(url) as db:
        seed_catalog(db, stock=50)
        secret = tracking_key(db)
        jobs.enqueue(db, kind="test.due", payload={"n": 1})
        db.commit()

    # when an order priced 1e308 arrives (the tester's message), then a valid one, and the
    # worker ticks once
    poison = {
        "userId": "PROBE-4",
        "event": "Order Completed",
        "messageId": "oc5",
        "properties": {
            "order_id": "TRK-5",
            "currency": "EUR",
            "products": [{"sku": CHIANTI, "price": 1e308, "quantity": 1}],
        },
    }
    assert client.post("/v1/track", json=poison, headers=basic_auth(secret)).status_code == 200
    valid = {**poison, "messageId": "oc6", "properties": completed("TRK-6")}
    assert client.post("/v1/track", json=valid, headers=basic_auth(secret)).status_code == 200
    jobs.Worker(database_url=url).tick()

    # then the valid order is placed, the other refused as an invalid amount, the job ran
    with open_session(url) as db:
        assert list(db.scalars(select(Order.order_id))) == ["TRK-6"]
        assert refusals(db) == [("TRK-5", "invalid_amount", "properties.products.0.price")]
    assert ran == [{"n": 1}]


@pytest.mark.parametrize(
    ("_case", "properties", "field"),
    [
        ("a price in a string beyond Decimal's range", {"price": "1e999999"}, "products.0.price"),
        ("not a number", {"price": "NaN"}, "products.0.price"),
        ("infinite", {"price": "Infinity"}, "products.0.price"),
        ("one cent over the most an order holds", {"price": "21474836.48"}, "products.0.price"),
        ("a huge quantity", {"price": 1, "quantity": 1e308}, "products.0.quantity"),
        ("a total of lines beyond an order", {"price": "21474836", "quantity": 2}, "products"),
        ("a huge shipping", {"price": 1, "shipping": 1e308}, "shipping"),
        ("a huge total", {"price": 1, "total": "1e400"}, "total"),
    ],
)
def test_amounts_an_order_cannot_hold_are_refused_naming_the_field(
    _case, properties, field
) -> None:
    product = {"sku": "A", "price": properties.pop("price")}
    if "quantity" in properties:
        product["quantity"] = properties.pop("quantity")

    def mapped() -> OrderIn:
        products = mapping.products_of({"products": [product]}, required=True)
        return mapping.build_order(
            properties,
            order_id="H-1",
            products=products,
            skus=["A"],
            currency="EUR",
            customer_id=None,
            channel="web",
            placed_at=NOW,
        )

    with pytest.raises(mapping.Refusal) as refused:
        mapped()
    expected = "invalid_product" if field.endswith("quantity") else "invalid_amount"
    assert (refused.value.reason, refused.value.field) == (expected, f"properties.{field}")


def test_a_tiny_price_is_zero_cents() -> None:
    products = mapping.products_of({"products": [{"sku": "A", "price": 1e-308}]}, required=True)
    order = mapping.build_order(
        {},
        order_id="T-1",
        products=products,
        skus=["A"],
        currency="EUR",
        customer_id=None,
        channel="web",
        placed_at=NOW,
    )
    assert order.total_minor == 0


def test_an_unforeseen_error_on_one_message_refuses_it_and_the_next_is_placed(
    client, api_key, db, shop, monkeypatch
) -> None:
    # given a mapping that fails unexpectedly on one order (a bug no check foresaw)
    real = processor_module.build_order

    def failing(properties: Any, **kwargs: Any) -> OrderIn:
        if kwargs["order_id"] == "BUG-1":
            raise ArithmeticError("no check foresaw this")
        return real(properties, **kwargs)

    monkeypatch.setattr(processor_module, "build_order", failing)
    secret = tracking_key(db)

    # when that order and a valid one are processed
    track(client, secret, "Order Completed", completed("BUG-1"))
    track(client, secret, "Order Completed", completed("W-7007"))
    process(db)

    # then the first is kept as refused with reason error, and the second is placed
    assert list(db.scalars(select(Order.order_id))) == ["W-7007"]
    assert refusals(db) == [("BUG-1", "error", "")]
    cursor = db.scalar(
        select(ProcessorCursor.position).where(ProcessorCursor.name == "orders.tracked")
    )
    assert cursor == db.scalar(select(func.max(Event.position)))


def test_an_order_completed_dated_in_the_future_makes_no_order(client, db, shop) -> None:
    # given a site whose clock runs 70 years ahead
    secret = tracking_key(db)
    message = {
        "event": "Order Completed",
        "messageId": "msg-future",
        "userId": "C-100",
        "properties": completed("F-1"),
        "timestamp": "2099-03-01T10:00:00+00:00",
    }
    # when its order arrives, then it is refused at the door and no order is ever stored
    response = client.post("/v1/track", json=message, headers=basic_auth(secret))
    assert response.status_code == 422, response.text
    process(db)
    assert db.get(Order, "F-1") is None
