"""Returns: what each one refunds (never more than was paid, all of them exactly that), which
orders can be returned, and units spread over the lines of their SKU."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert
from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.models import Order, OrderLine, ReturnLine
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform import clock
from rapport.platform.db import open_session
from rapport.platform.errors import Problem
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, run_at_once, seed_catalog

SKUS = ("R-0", "R-1", "R-2", "R-3")
_order_numbers = itertools.count(1)


def seed_products(db: Session) -> None:
    """The factories' catalogue and stores, with four more products stocked on the web."""
    seed_catalog(db)
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=sku,
                name=f"Product {sku}",
                category_path="Test/Returns",
                price_minor=1000,
                cost_minor=500,
                currency="EUR",
            )
            for sku in SKUS
        ],
    )
    catalog.set_stock(db, levels=[(sku, "web", 1_000_000) for sku in SKUS])


@pytest.fixture
def writer(db: Session, api_key: Any) -> dict[str, str]:
    seed_products(db)
    return auth(api_key("write"))


def order_of(order_id: str, lines: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """A shipped web order of ``lines``, its totals computed from them and ``changes``."""
    subtotal = sum(
        line["quantity"] * line["unit_price_minor"] - line.get("discount_minor", 0)
        for line in lines
    )
    body: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": "C-RET",
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": lines,
        "discount_minor": 0,
        "shipping_minor": 0,
        "subtotal_minor": subtotal,
    }
    body.update(changes)
    body["total_minor"] = body["subtotal_minor"] - body["discount_minor"] + body["shipping_minor"]
    return body


def returning(*units: tuple[str, int], restock: bool = False) -> dict[str, Any]:
    return {
        "lines": [
            {"sku": sku, "quantity": quantity, "reason": "changed_mind", "restock": restock}
            for sku, quantity in units
        ],
        "channel": "web",
    }


# --- what a return refunds -----------------------------------------------------------------


def test_three_lines_returned_one_by_one_or_together_refund_exactly_what_was_paid(
    client: Any, db: Session, writer: dict[str, str]
) -> None:
    # given two orders of three 10.00 lines with 1.00 off the order: 29.00 paid for each
    lines = [{"sku": sku, "quantity": 1, "unit_price_minor": 1000} for sku in SKUS[:3]]
    for order_id in ("O-ONE-BY-ONE", "O-TOGETHER"):
        body = order_of(order_id, lines, discount_minor=100)
        assert client.post("/v1/orders", json=body, headers=command(writer)).status_code == 201

    # when one comes back a line at a time, and the other all at once
    one_by_one = [
        client.post(
            "/v1/orders/O-ONE-BY-ONE/returns", json=returning((sku, 1)), headers=command(writer)
        ).json()["refund_minor"]
        for sku in SKUS[:3]
    ]
    together = client.post(
        "/v1/orders/O-TOGETHER/returns",
        json=returning(*((sku, 1) for sku in SKUS[:3])),
        headers=command(writer),
    ).json()

    # then both refund the 29.00 paid, not 29.01 (9.67 three times)
    assert sum(one_by_one) == 2900
    assert sorted(one_by_one) == [966, 967, 967]
    assert together["refund_minor"] == together["money_refund_minor"] == 2900
    assert sum(line["refund_minor"] for line in together["lines"]) == 2900
    logged = db.scalars(select(Event).where(Event.type == "order_returned")).all()
    assert sum(event.properties["refund_minor"] for event in logged) == 2 * 2900
    # in the order's currency, which traits take the refund off
    assert {event.properties["currency"] for event in logged} == {"EUR"}


def test_a_return_after_returns_an_earlier_version_refunded_never_goes_past_what_was_paid(
    client: Any, db: Session, writer: dict[str, str]
) -> None:
    # given an order of three 10.00 lines with 1.00 off (29.00 paid), of which an earlier
    # version refunded the second and third lines 9.67 each (rounding each return alone)
    lines = [{"sku": sku, "quantity": 1, "unit_price_minor": 1000} for sku in SKUS[:3]]
    body = order_of("O-OLD", lines, discount_minor=100)
    assert client.post("/v1/orders", json=body, headers=command(writer)).status_code == 201
    for line in db.scalars(select(OrderLine).where(OrderLine.order_id == "O-OLD")):
        if line.line_no == 1:
            continue
        line.returned_quantity = 1
        db.add(
            ReturnLine(
                return_id="ret-old",
                order_id="O-OLD",
                line_no=line.line_no,
                sku=line.sku,
                quantity=1,
                reason="changed_mind",
                refund_minor=967,
                channel="web",
                customer_id=None,
                returned_at=clock.now(),
            )
        )
    db.flush()

    # when the first line comes back now
    last = client.post(
        "/v1/orders/O-OLD/returns", json=returning((SKUS[0], 1)), headers=command(writer)
    )

    # then it refunds what is left of the 29.00 (9.66), not its own 9.67
    assert last.status_code == 201, last.text
    assert last.json()["refund_minor"] == 2900 - 2 * 967


@st.composite
def orders_and_returns(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[tuple[int, int]]]]:
    """An order of one to four lines (quantities, prices and line discounts drawn), an order
    discount up to its subtotal and any shipping; and its units returned in a drawn sequence
    of returns, each of one or more (line, units) parts, until every unit came back."""
    count = draw(st.integers(1, 4))
    lines = []
    for index in range(count):
        quantity = draw(st.integers(1, 7))
        price = draw(st.integers(0, 5000))
        discount = draw(st.integers(0, quantity * price))
        lines.append(
            {
                "sku": SKUS[index],
                "quantity": quantity,
                "unit_price_minor": price,
                "discount_minor": discount,
            }
        )
    subtotal = sum(
        line["quantity"] * line["unit_price_minor"] - line["discount_minor"] for line in lines
    )
    body = order_of(
        f"O-PROP-{next(_order_numbers)}",
        lines,
        discount_minor=draw(st.integers(0, subtotal)),
        shipping_minor=draw(st.sampled_from([0, 0, 495])),
    )
    left = [line["quantity"] for line in lines]
    returns: list[list[tuple[int, int]]] = []
    while sum(left):
        parts: dict[int, int] = {}
        for _ in range(draw(st.integers(1, 3))):
            open_lines = [i for i in range(count) if left[i]]
            if not open_lines:
                break
            index = draw(st.sampled_from(open_lines))
            units = draw(st.integers(1, left[index]))
            left[index] -= units
            parts[index] = parts.get(index, 0) + units
        returns.append(sorted(parts.items()))
    return body, returns


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=orders_and_returns())
def test_no_sequence_of_returns_refunds_more_than_was_paid_and_all_of_them_refund_exactly_that(
    db: Session, drawn: tuple[dict[str, Any], list[list[tuple[int, int]]]]
) -> None:
    body, returns = drawn
    if catalog.get_product(db, sku=SKUS[0]) is None:
        seed_products(db)
    order = orders.place_order(db, order=orders.OrderIn.model_validate(body))
    paid_for_goods = order.total_minor - order.shipping_minor

    refunded = 0
    for parts in returns:
        request = returning(*((body["lines"][index]["sku"], units) for index, units in parts))
        result = orders.record_return(
            db, order_id=order.order_id, request=orders.ReturnIn.model_validate(request)
        )
        assert result.refund_minor == sum(line.refund_minor for line in result.lines)
        assert all(line.refund_minor >= 0 for line in result.lines)
        refunded += result.refund_minor
        # never more than was paid for the goods, whatever came back so far
        assert refunded <= paid_for_goods

    # every unit back: exactly what was paid for the goods (shipping is not refunded)
    assert refunded == paid_for_goods


# --- only what the customer was given can come back ----------------------------------------


def _stock(db: Session, sku: str, store_id: str) -> tuple[int, int]:
    level = catalog.get_stock(db, sku=sku, store_id=store_id)
    assert level is not None
    db.refresh(level)
    return level.on_hand, level.reserved


def _pickup_order(client: Any, writer: dict[str, str], order_id: str) -> dict[str, Any]:
    """Four Chianti to collect in Paris (it holds five)."""
    body = order_of(
        order_id,
        [{"sku": CHIANTI, "quantity": 4, "unit_price_minor": 1000}],
        fulfilment="pickup_in_store",
        store_id="st-par-01",
    )
    placed = client.post("/v1/orders", json=body, headers=command(writer))
    assert placed.status_code == 201, placed.text
    return dict(placed.json())


def test_a_pick_up_order_not_collected_cannot_be_returned_until_it_is(
    client: Any, db: Session, writer: dict[str, str]
) -> None:
    # given a pick-up order waiting in the shop (5 on hand, 4 of them reserved)
    placed = _pickup_order(client, writer, "O-PICK")
    assert _stock(db, CHIANTI, "st-par-01") == (5, 4)

    # when the till records its return before the customer collected it
    early = client.post(
        "/v1/orders/O-PICK/returns",
        json=returning((CHIANTI, 4), restock=True),
        headers=command(writer),
    )

    # then it is refused, saying why and what to do, and nothing is refunded or restocked
    assert early.status_code == 409, early.text
    assert early.json()["field"] == "order_id"
    assert "has not been collected" in early.json()["detail"]
    assert "/v1/orders/O-PICK/pickup" in early.json()["detail"]
    assert _stock(db, CHIANTI, "st-par-01") == (5, 4)
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []

    # when the customer collects it, and later brings it back
    collected = client.post(
        "/v1/orders/O-PICK/pickup",
        json={"pickup_code": placed["pickup_code"], "store_id": "st-par-01"},
        headers=command(writer),
    )
    assert collected.status_code == 200, collected.text
    assert _stock(db, CHIANTI, "st-par-01") == (1, 0)
    back = client.post(
        "/v1/orders/O-PICK/returns",
        json=returning((CHIANTI, 4), restock=True),
        headers=command(writer),
    )

    # then the return is recorded and its units are on sale again
    assert back.status_code == 201, back.text
    assert back.json()["refund_minor"] == 4000
    assert _stock(db, CHIANTI, "st-par-01") == (5, 0)


def test_a_cancelled_order_cannot_be_returned(
    client: Any, db: Session, writer: dict[str, str]
) -> None:
    body = order_of("O-GONE", [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1000}])
    assert client.post("/v1/orders", json=body, headers=command(writer)).status_code == 201
    order = db.get(Order, "O-GONE")
    assert order is not None
    order.status = "cancelled"
    db.flush()
    refused = client.post(
        "/v1/orders/O-GONE/returns", json=returning((CHIANTI, 1)), headers=command(writer)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "order_id"
    assert "was cancelled" in refused.json()["detail"]
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []


def _returned_before_collection(db: Session, order_id: str, units: int, *, restocked: bool) -> None:
    """What an earlier version recorded for a return of a pick-up order not yet collected: the
    line's units marked returned, a return line, and (restocked) the units counted back."""
    line = db.scalars(select(OrderLine).where(OrderLine.order_id == order_id)).one()
    line.returned_quantity = units
    db.add(
        ReturnLine(
            return_id=f"ret-old-{order_id}",
            order_id=order_id,
            line_no=line.line_no,
            sku=line.sku,
            quantity=units,
            reason="changed_mind",
            refund_minor=units * 1000,
            channel="store",
            customer_id=None,
            returned_at=clock.now(),
            restocked_to="st-par-01" if restocked else None,
        )
    )
    if restocked:
        catalog.return_to_stock(db, sku=line.sku, store_id="st-par-01", quantity=units)
    db.flush()


@pytest.mark.parametrize("restocked", [True, False], ids=["restocked", "not-restocked"])
def test_collecting_an_order_an_earlier_version_let_be_returned_hands_over_only_the_rest(
    client: Any, db: Session, writer: dict[str, str], restocked: bool
) -> None:
    # given two pick-up orders of four Chianti, of which an earlier version recorded 1 and 4
    # units as returned before collection
    catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 8)])
    part = _pickup_order(client, writer, "O-PART")
    whole = _pickup_order(client, writer, "O-WHOLE")
    _returned_before_collection(db, "O-PART", 1, restocked=restocked)
    _returned_before_collection(db, "O-WHOLE", 4, restocked=restocked)

    # when the customers come with their codes
    def collect(order: dict[str, Any]) -> Any:
        return client.post(
            f"/v1/orders/{order['order_id']}/pickup",
            json={"pickup_code": order["pickup_code"], "store_id": "st-par-01"},
            headers=command(writer),
        )

    taken_part, taken_whole = collect(part), collect(whole)

    # then the order with units left hands over only those three: they leave the shop, and
    # the returned unit (still on the shelf) is no longer reserved nor counted twice
    assert taken_part.status_code == 200, taken_part.text
    assert taken_part.json()["status"] == "collected"
    # and the order returned whole has nothing to hand over: refused, its stock as it was
    assert taken_whole.status_code == 409, taken_whole.text
    assert taken_whole.json()["field"] == "order_id"
    assert "nothing to hand over" in taken_whole.json()["detail"]
    phantom = 4 if restocked else 0
    assert _stock(db, CHIANTI, "st-par-01") == (8 - 3 + phantom, 4)


# --- a SKU on several lines ----------------------------------------------------------------


def test_every_unit_of_a_sku_on_two_lines_can_be_returned(
    client: Any, db: Session, writer: dict[str, str], api_key: Any
) -> None:
    # given an order with the same product on two lines: one at 1.00, two at 1.00
    lines = [
        {"sku": SKUS[0], "quantity": 1, "unit_price_minor": 100},
        {"sku": SKUS[0], "quantity": 2, "unit_price_minor": 100},
    ]
    body = order_of("O-TWICE", lines)
    assert client.post("/v1/orders", json=body, headers=command(writer)).status_code == 201

    def give_back(units: int) -> Any:
        return client.post(
            "/v1/orders/O-TWICE/returns", json=returning((SKUS[0], units)), headers=command(writer)
        )

    # when two come back, then one more, then one too many
    two, one, too_many = give_back(2), give_back(1), give_back(1)

    # then the three units bought came back, taken from the lines in order
    assert two.status_code == 201, two.text
    assert [(li["line_no"], li["quantity"]) for li in two.json()["lines"]] == [(1, 1), (2, 1)]
    assert one.status_code == 201, one.text
    assert [(li["line_no"], li["quantity"]) for li in one.json()["lines"]] == [(2, 1)]
    assert two.json()["refund_minor"] + one.json()["refund_minor"] == 300
    read = client.get("/v1/orders/O-TWICE", headers=auth(api_key("read"))).json()
    assert [line["returned_quantity"] for line in read["lines"]] == [1, 2]
    # and a fourth is refused, counting what is left on both lines
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "lines.0.quantity"
    assert too_many.json()["detail"] == f"Only 0 of {SKUS[0]} can still be returned"
    # and all three at once on another such order spread over both lines too
    body = order_of("O-TWICE-2", lines)
    assert client.post("/v1/orders", json=body, headers=command(writer)).status_code == 201
    three = client.post(
        "/v1/orders/O-TWICE-2/returns", json=returning((SKUS[0], 3)), headers=command(writer)
    )
    assert three.status_code == 201, three.text
    assert [(li["line_no"], li["quantity"]) for li in three.json()["lines"]] == [(1, 1), (2, 2)]
    logged = db.scalars(select(Event).where(Event.type == "order_returned")).all()
    assert [
        [(line["line_no"], line["quantity"]) for line in event.properties["lines"]]
        for event in logged
    ] == [[(1, 1), (2, 1)], [(2, 1)], [(1, 1), (2, 2)]]


def test_returns_at_the_same_moment_never_bring_back_more_than_was_bought(
    committed_url: str,
) -> None:
    # given parcels of two Chianti taken from the web warehouse's 100
    with open_session(committed_url) as db:
        seed_catalog(db)
    rounds = 4
    for n in range(rounds):
        with open_session(committed_url) as db:
            body = order_of(
                f"TWICE-{n}", [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 600}]
            )
            orders.place_order(db, order=OrderIn.model_validate(body))
    one_back = ReturnIn.model_validate(returning((CHIANTI, 1), restock=True))

    def give_back(order_id: str) -> str:
        with open_session(committed_url) as db:
            try:
                return orders.record_return(db, order_id=order_id, request=one_back).return_id
            except Problem as refused:
                db.rollback()
                return f"refused: {refused.detail}"

    # when three returns of one unit each come for each at the same moment
    outcomes = [run_at_once(*[lambda n=n: give_back(f"TWICE-{n}")] * 3) for n in range(rounds)]

    # then two of each went through and the third was told only what was left (none)
    for outcome in outcomes:
        refused = [said for said in outcome if said.startswith("refused")]
        assert refused == [f"refused: Only 0 of {CHIANTI} can still be returned"]
    with open_session(committed_url) as db:
        returned = db.scalars(select(OrderLine.returned_quantity)).all()
        assert returned == [2] * rounds
        back = db.scalars(select(ReturnLine.quantity)).all()
        assert sum(back) == 2 * rounds
        refunds = db.scalars(select(ReturnLine.refund_minor)).all()
        assert sum(refunds) == 1200 * rounds
        level = catalog.get_stock(db, sku=CHIANTI, store_id="web")
        assert level is not None
        assert level.on_hand == 100
        logged = db.scalars(select(Event).where(Event.type == "order_returned")).all()
        assert len(logged) == 2 * rounds
