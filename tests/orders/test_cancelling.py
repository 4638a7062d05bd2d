"""Cancelling an order not yet handed over: POST /v1/orders/{order_id}/cancel."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from rapport.catalog import service as catalog
from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform import clock
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict, Problem
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, run_at_once, seed_catalog

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@pytest.fixture
def writer(db, api_key):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW)
    seed_catalog(db)
    return auth(api_key("write"))


def _place(client, headers, **overrides):  # type: ignore[no-untyped-def]
    response = client.post("/v1/orders", json=order_body(**overrides), headers=command(headers))
    assert response.status_code == 201, response.text
    return response.json()


def _cancel(client, headers, order_id, body=None, key=None):  # type: ignore[no-untyped-def]
    headers = command(headers) if key is None else {**headers, "Idempotency-Key": key}
    return client.post(f"/v1/orders/{order_id}/cancel", json=body, headers=headers)


def _cancelled_events(db):  # type: ignore[no-untyped-def]
    return db.scalars(select(Event).where(Event.type == "order_cancelled")).all()


def test_a_pick_up_not_collected_is_cancelled_and_its_reservation_released(
    client, db, writer
) -> None:
    # given a pick-up order holding 2 Chianti and a corkscrew at Paris Rivoli
    _place(
        client,
        writer,
        order_id="O-PICK",
        fulfilment="pickup_in_store",
        store_id="st-par-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    assert catalog.get_stock(db, sku=CHIANTI, store_id="st-par-01").reserved == 2

    # when the shop cancels it, saying why
    clock.set_clock(lambda: NOW + timedelta(hours=2))
    response = _cancel(client, writer, "O-PICK", {"reason": "customer changed their mind"}, "c-1")

    # then the order is cancelled, with the change and its reason in its history
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "cancelled"
    assert answer["status_history"][-1] == {
        "status": "cancelled",
        "at": "2026-12-07T12:00:00Z",
        "note": "customer changed their mind",
    }
    # and the units are on sale again: nothing reserved, nothing taken
    for sku in (CHIANTI, CORKSCREW):
        level = catalog.get_stock(db, sku=sku, store_id="st-par-01")
        assert (level.on_hand, level.reserved) == (5, 0)
    # and order_cancelled is logged once, for the customer
    (event,) = _cancelled_events(db)
    assert event.properties["order_id"] == "O-PICK"
    assert event.properties["reason"] == "customer changed their mind"
    assert event.properties["released"] is True
    assert event.customer_id == orders.get_order(db, order_id="O-PICK").customer_id
    # a retry with the same key answers the same and changes nothing
    again = _cancel(client, writer, "O-PICK", {"reason": "customer changed their mind"}, "c-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == answer
    # a new cancellation of a cancelled order is a conflict that says so
    twice = _cancel(client, writer, "O-PICK")
    assert twice.status_code == 409
    assert twice.json()["detail"] == "Order O-PICK is already cancelled"
    assert len(_cancelled_events(db)) == 1
    # and a cancelled pick-up cannot be collected
    collected = client.post(
        "/v1/orders/O-PICK/pickup",
        json={"pickup_code": answer["pickup_code"], "store_id": "st-par-01"},
        headers=command(writer),
    )
    assert collected.status_code == 409


def test_a_parcel_not_sent_is_cancelled_its_units_back_and_never_flagged_late(
    client, db, writer
) -> None:
    # given a parcel placed and packed, its two Chianti taken from the web warehouse
    _place(client, writer, order_id="O-SHIP", promised_delivery="2026-12-09")
    packed = client.post(
        "/v1/orders/O-SHIP/status", json={"status": "packed"}, headers=command(writer)
    )
    assert packed.status_code == 200, packed.text
    assert catalog.get_stock(db, sku=CHIANTI, store_id="web").on_hand == 98

    # when it is cancelled without a reason (no body at all)
    response = _cancel(client, writer, "O-SHIP")

    # then it is cancelled and the two units are back in the warehouse (the corkscrew,
    # whose stock the warehouse does not keep, is left alone)
    assert response.status_code == 200, response.text
    assert response.json()["status_history"][-1]["note"] is None
    assert catalog.get_stock(db, sku=CHIANTI, store_id="web").on_hand == 100
    assert catalog.get_stock(db, sku=CORKSCREW, store_id="web") is None
    # and once its promised day has passed, nobody is told it is late, nor is it counted
    clock.set_clock(lambda: NOW + timedelta(days=5))
    assert orders.flag_late_deliveries(db) == []
    assert orders.promise_kept(db, by="channel") == []


@pytest.mark.parametrize(
    ("fulfilment", "steps", "words"),
    [
        pytest.param("ship", ["shipped"], "is shipped: it was handed to the carrier", id="shipped"),
        pytest.param(
            "ship",
            ["shipped", "delayed"],
            "is delayed: it was handed to the carrier",
            id="delayed-on-the-way",
        ),
        pytest.param("ship", ["shipped", "delivered"], "it was delivered", id="delivered"),
        pytest.param("pickup_in_store", ["collect"], "it was collected", id="collected"),
        pytest.param("in_store", [], "is completed: it was sold at the till", id="till-sale"),
    ],
)
def test_an_order_handed_over_cannot_be_cancelled(
    client, db, writer, fulfilment, steps, words
) -> None:
    overrides = {"order_id": "O-GONE", "fulfilment": fulfilment}
    if fulfilment != "ship":
        overrides.update(store_id="st-par-01", shipping_minor=0, total_minor=3000, payments=[])
    if fulfilment == "in_store":
        overrides["channel"] = "store"
    placed = _place(client, writer, **overrides)
    for step in steps:
        if step == "collect":
            body = {"pickup_code": placed["pickup_code"], "store_id": "st-par-01"}
            sent = client.post("/v1/orders/O-GONE/pickup", json=body, headers=command(writer))
        else:
            body = {"status": step}
            sent = client.post("/v1/orders/O-GONE/status", json=body, headers=command(writer))
        assert sent.status_code == 200, sent.text
    before = orders.get_order(db, order_id="O-GONE").status

    response = _cancel(client, writer, "O-GONE", {"reason": "too late"})

    assert response.status_code == 409, response.text
    assert response.json()["field"] == "order_id"
    assert words in response.json()["detail"]
    assert (
        "record what comes back as a return (POST /v1/orders/O-GONE/returns)"
        in (response.json()["detail"])
    )
    db.expire_all()
    assert orders.get_order(db, order_id="O-GONE").status == before
    assert _cancelled_events(db) == []


@pytest.mark.parametrize("restock", [False, True], ids=["damaged", "restocked"])
def test_an_order_with_a_return_cannot_be_cancelled(client, db, writer, restock) -> None:
    # given a parcel of two Chianti (the warehouse 100 -> 98), not shipped yet, of which one
    # came back (damaged, or put back on sale: 99)
    _place(client, writer, order_id="O-PART")
    returned = client.post(
        "/v1/orders/O-PART/returns",
        json={
            "lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged", "restock": restock}],
            "channel": "web",
        },
        headers=command(writer),
    )
    assert returned.status_code == 201, returned.text
    on_hand = 99 if restock else 98
    assert catalog.get_stock(db, sku=CHIANTI, store_id="web").on_hand == on_hand

    # when it is cancelled
    response = _cancel(client, writer, "O-PART", {"reason": "customer changed their mind"})

    # then it is refused, saying to return the rest instead, and nothing changes: no unit
    # back on sale twice, no order_cancelled taking its whole total off the customer's spend
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == "order_id"
    assert "1 unit(s) returned already" in problem["detail"]
    assert (
        "record the rest as a return instead (POST /v1/orders/O-PART/returns)"
        in (problem["detail"])
    )
    db.expire_all()
    assert catalog.get_stock(db, sku=CHIANTI, store_id="web").on_hand == on_hand
    assert orders.get_order(db, order_id="O-PART").status == "placed"
    assert _cancelled_events(db) == []
    # and the rest can still be returned
    rest = client.post(
        "/v1/orders/O-PART/returns",
        json={
            "lines": [
                {"sku": CHIANTI, "quantity": 1, "reason": "changed_mind"},
                {"sku": CORKSCREW, "quantity": 1, "reason": "changed_mind"},
            ],
            "channel": "web",
        },
        headers=command(writer),
    )
    assert rest.status_code == 201, rest.text


def test_a_cancellation_needs_a_key_a_known_order_and_a_short_reason(client, db, writer) -> None:
    _place(client, writer, order_id="O-K")
    missing = client.post("/v1/orders/O-K/cancel", headers=writer)
    assert missing.status_code == 400
    assert missing.json()["field"] == "Idempotency-Key"
    unknown = _cancel(client, writer, "O-NONE")
    assert unknown.status_code == 404
    too_long = _cancel(client, writer, "O-K", {"reason": "x" * 501})
    assert too_long.status_code == 422
    assert too_long.json()["field"] == "reason"
    misspelt = _cancel(client, writer, "O-K", {"reson": "typo"})
    assert misspelt.status_code == 422
    assert orders.get_order(db, order_id="O-K").status == "placed"
    assert _cancelled_events(db) == []


def _one_chianti_to_collect(url: str, order_id: str) -> str:
    """A pick-up at Lyon of its one Chianti, placed and committed; its pick-up code."""
    with open_session(url) as db:
        seed_catalog(db)
        request = order_body(
            order_id=order_id,
            fulfilment="pickup_in_store",
            store_id="st-lyo-01",
            lines=[{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200}],
            discount_minor=0,
            shipping_minor=0,
            subtotal_minor=1200,
            total_minor=1200,
            payments=[],
        )
        code = orders.place_order(db, order=OrderIn.model_validate(request)).pickup_code
    assert code is not None
    return code


def test_a_cancellation_racing_a_collection_releases_nothing(committed_url, backend) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: nothing can interleave")
    # given a pick-up holding the one Chianti of Lyon
    _one_chianti_to_collect(committed_url, "O-RACE")
    outcome: list[str] = []

    def cancel() -> None:
        with open_session(committed_url) as db:
            try:
                orders.cancel_order(db, order_id="O-RACE")
                outcome.append("cancelled")
            except Conflict as refused:
                outcome.append(str(refused.detail))

    # when a till is handing it over (its transaction holds the order) as the shop cancels it
    with open_session(committed_url) as till:
        till.execute(text("SELECT 1 FROM orders WHERE order_id = 'O-RACE' FOR UPDATE"))
        canceller = threading.Thread(target=cancel)
        canceller.start()
        time.sleep(1)  # the cancellation waits for the order
        till.execute(text("UPDATE orders SET status = 'collected' WHERE order_id = 'O-RACE'"))
        till.commit()
        canceller.join(timeout=30)

    # then the cancellation reads the order collected, and releases nothing
    assert len(outcome) == 1
    assert outcome[0].startswith("Order O-RACE is collected: it was collected, so it can no")
    with open_session(committed_url) as db:
        level = catalog.get_stock(db, sku=CHIANTI, store_id="st-lyo-01")
        assert (level.on_hand, level.reserved) == (1, 1)
        assert orders.get_order(db, order_id="O-RACE").status == "collected"
        assert db.scalars(select(Event).where(Event.type == "order_cancelled")).all() == []


def test_a_collection_after_the_order_was_cancelled_hands_nothing_over(
    committed_url, backend
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite runs one writing transaction at a time: nothing can interleave")
    # given a pick-up holding the one Chianti of Lyon
    code = _one_chianti_to_collect(committed_url, "O-LATE")

    # when the till has read the order, ready for pick-up, and the shop cancels it before the
    # till's collection goes through
    with open_session(committed_url) as till:
        read = orders.get_order(till, order_id="O-LATE")
        assert read is not None
        assert read.status == "ready_for_pickup"
        with open_session(committed_url) as shop:
            orders.cancel_order(shop, order_id="O-LATE", reason="customer called")
        with pytest.raises(Conflict) as refused:
            orders.confirm_pickup(till, order_id="O-LATE", pickup_code=code, store_id="st-lyo-01")

    # then the collection is refused, and the order stays cancelled with its unit in stock
    assert "changed while it was being collected" in refused.value.detail
    with open_session(committed_url) as db:
        assert orders.get_order(db, order_id="O-LATE").status == "cancelled"
        level = catalog.get_stock(db, sku=CHIANTI, store_id="st-lyo-01")
        assert (level.on_hand, level.reserved) == (1, 0)
        assert db.scalars(select(Event).where(Event.type == "order_collected")).all() == []


def _two_chianti_shipped(url: str, order_id: str) -> None:
    """A parcel of two Chianti from the web warehouse, placed and committed."""
    with open_session(url) as db:
        request = order_body(
            order_id=order_id,
            lines=[{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 600}],
            discount_minor=0,
            shipping_minor=0,
            subtotal_minor=1200,
            total_minor=1200,
            payments=[{"method": "card", "amount_minor": 1200}],
        )
        orders.place_order(db, order=OrderIn.model_validate(request))


def _attempt(url: str, verb: str, action) -> str:  # type: ignore[no-untyped-def]
    with open_session(url) as db:
        try:
            action(db)
        except Problem as refused:
            db.rollback()
            return f"refused: {refused.detail}"
    return verb


def test_a_cancellation_and_a_return_at_once_are_never_both_taken(committed_url) -> None:
    # given parcels of two Chianti taken from the web warehouse's 100
    with open_session(committed_url) as db:
        seed_catalog(db)
    rounds = 8
    for n in range(rounds):
        _two_chianti_shipped(committed_url, f"RACE-{n}")
    one_back = ReturnIn.model_validate(
        {
            "channel": "web",
            "lines": [{"sku": CHIANTI, "quantity": 1, "reason": "damaged", "restock": True}],
        }
    )

    # when each is cancelled and one of its units returned at the same moment
    outcomes = [
        run_at_once(
            lambda n=n: _attempt(
                committed_url,
                "cancelled",
                lambda db: orders.cancel_order(db, order_id=f"RACE-{n}"),
            ),
            lambda n=n: _attempt(
                committed_url,
                "returned",
                lambda db: orders.record_return(db, order_id=f"RACE-{n}", request=one_back),
            ),
        )
        for n in range(rounds)
    ]

    # then of each pair exactly one went through, and stock and the log say only that one
    cancelled = sum(1 for outcome in outcomes if outcome[0] == "cancelled")
    for cancel, give_back in outcomes:
        if cancel == "cancelled":
            assert give_back.startswith("refused: Order RACE-")
            assert "was cancelled" in give_back
        else:
            assert give_back == "returned"
            assert "unit(s) returned already" in cancel or "changed while" in cancel
    with open_session(committed_url) as db:
        level = catalog.get_stock(db, sku=CHIANTI, store_id="web")
        assert level is not None
        # 2 units back for each cancellation, 1 for each return
        assert level.on_hand == 100 - 2 * rounds + 2 * cancelled + (rounds - cancelled)
        logged = db.scalars(
            select(Event).where(Event.type.in_(["order_cancelled", "order_returned"]))
        ).all()
        by_order = sorted(event.properties["order_id"] for event in logged)
        assert by_order == sorted(f"RACE-{n}" for n in range(rounds))
        for n, (cancel, _) in enumerate(outcomes):
            order = orders.get_order(db, order_id=f"RACE-{n}")
            assert order is not None
            assert order.status == ("cancelled" if cancel == "cancelled" else "placed")
