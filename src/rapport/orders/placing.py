"""Placing an order from any channel: totals recomputed and checked, stock reserved for
pick-up or taken for a sale, a delivery promise for shipped orders, ``order_placed`` logged."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.cancelling import cancel_order
from rapport.orders.models import (
    Order,
    OrderLine,
    OrderPayment,
    local_day,
)
from rapport.orders.pickups import announce_ready, deadline_for, not_collected_reason
from rapport.orders.records import record_status
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput
from rapport.platform.ids import new_id

DEFAULT_PROMISE_DAYS = 3
WEB_WAREHOUSE = "web"  # the online warehouse's location: stock, never a place to shop
PICKUP_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread at the till
BeforeCommit = Callable[[Session, Order], None]


def _pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_CODE_ALPHABET) for _ in range(8))


def _resolve_customer(db: Session, customer_id: str | None) -> str | None:
    """Rapport's id for the order's customer (a merged profile's survivor), creating the
    profile for a shop's customer number seen the first time; an erased one is refused."""
    if customer_id is None:
        return None
    erased = InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    found = customers.find_customer_ref(db, ref=customer_id)
    if found is None:
        if customers.erased_kinds(db, {"external_id": customer_id}):
            raise erased
        return customers.resolve_identities(
            db, identities={"external_id": customer_id}, source="order"
        ).customer_id
    known = customers.get_customer(db, customer_id=found)
    if known is None or known.status != "active":
        raise erased
    return found


def _check_fulfilment(order: OrderIn) -> None:
    """Refuse what an order's fulfilment cannot hold (422 naming the field), rather than
    dropping it: only a shipped order has a promise and a carrier; a till sale is the store
    channel's; a pick-up or a till sale happens at a store a customer walks into."""
    ships = order.fulfilment == "ship"
    if not ships:
        kind = ("An " if order.fulfilment == "in_store" else "A ") + order.fulfilment
        for field in ("promised_delivery", "carrier"):
            if getattr(order, field) is not None:
                raise InvalidInput(
                    f"{kind} order is not delivered, so it takes no {field}: "
                    "leave it out, or send fulfilment ship for an order to deliver",
                    field=field,
                )
        if not order.store_id:
            raise InvalidInput(f"{kind} order needs a store_id", field="store_id")
        if order.store_id == WEB_WAREHOUSE:
            raise InvalidInput(
                f"{WEB_WAREHOUSE!r} is the online warehouse, where no customer comes in: a "
                f"{order.fulfilment} order names the store of the "
                + ("pick-up" if order.fulfilment == "pickup_in_store" else "sale"),
                field="store_id",
            )
    if order.fulfilment == "in_store" and order.channel != "store":
        raise InvalidInput(
            f"An in_store order is a sale at a store's till, so its channel is store, not "
            f"{order.channel}: an order placed by {order.channel} is ship or pickup_in_store",
            field="fulfilment",
        )


def place_order(db: Session, *, order: OrderIn, before_commit: BeforeCommit | None = None) -> Order:
    """Record an order from any channel: totals recomputed and checked, stock reserved for
    pick-up, a delivery promise for shipped orders, and ``order_placed`` logged."""
    order_id = order.order_id or new_id("ord")
    if db.get(Order, order_id) is not None:
        raise Conflict(f"Order {order_id!r} already exists", field="order_id")
    products = catalog.get_products(db, skus=[line.sku for line in order.lines])
    for index, line in enumerate(order.lines):
        if line.sku not in products:
            raise InvalidInput(f"Unknown SKU {line.sku!r}", field=f"lines.{index}.sku")
        if line.discount_minor > line.quantity * line.unit_price_minor:
            raise InvalidInput(
                "A line discount cannot exceed the line amount",
                field=f"lines.{index}.discount_minor",
            )
    line_totals = [
        line.quantity * line.unit_price_minor - line.discount_minor for line in order.lines
    ]
    subtotal = sum(line_totals)
    total = subtotal - order.discount_minor + order.shipping_minor
    if order.subtotal_minor != subtotal:
        raise InvalidInput(
            f"subtotal_minor is {order.subtotal_minor} but the lines add up to {subtotal}",
            field="subtotal_minor",
            expected=subtotal,
        )
    if total < 0:
        raise InvalidInput("The order discount exceeds the subtotal", field="discount_minor")
    if order.total_minor != total:
        raise InvalidInput(
            f"total_minor is {order.total_minor} but subtotal - discount + shipping is {total}",
            field="total_minor",
            expected=total,
        )
    if order.payments and sum(p.amount_minor for p in order.payments) != total:
        raise InvalidInput("The payments do not add up to total_minor", field="payments")
    _check_fulfilment(order)
    # A shipped order leaves from the web warehouse unless it names the store it ships from.
    ships = order.fulfilment == "ship"
    ships_from_web = ships and order.store_id in (None, WEB_WAREHOUSE)
    if not ships_from_web and catalog.get_store(db, store_id=order.store_id or "") is None:
        way_out = ", or leave store_id out to ship from the web" if ships else ""
        raise InvalidInput(
            f"Unknown store {order.store_id!r}: add it (PUT /v1/stores/{{store_id}}) first"
            + way_out,
            field="store_id",
        )
    if order.placed_at is not None and clock.is_in_future(order.placed_at):
        raise InvalidInput(
            "placed_at is more than 5 minutes in the future; check the sending till's clock",
            field="placed_at",
        )
    now = clock.now()
    placed_at = order.placed_at or now
    # The placing day as the sender lives it (its offset), so a same-day promise is never early.
    if order.promised_delivery is not None and order.promised_delivery < placed_at.date():
        raise InvalidInput(
            f"promised_delivery {order.promised_delivery.isoformat()} is before the order was "
            f"placed ({placed_at.date().isoformat()}): promise the day it will arrive, or leave "
            f"it out for {DEFAULT_PROMISE_DAYS} days after placing",
            field="promised_delivery",
        )
    record = Order(
        order_id=order_id,
        customer_id=_resolve_customer(db, order.customer_id),
        channel=order.channel,
        fulfilment=order.fulfilment,
        store_id=order.store_id if not ships else (order.store_id or WEB_WAREHOUSE),
        status="placed",
        currency=order.currency,
        subtotal_minor=subtotal,
        discount_minor=order.discount_minor,
        shipping_minor=order.shipping_minor,
        total_minor=total,
        placed_at=placed_at,
        placed_offset_minutes=offset_minutes(placed_at),
        source="api",
        created_at=now,
        updated_at=now,
    )
    if order.fulfilment == "pickup_in_store":
        record.collect_by = deadline_for(placed_at, record.placed_offset_minutes)
    if order.fulfilment == "ship":
        record.promised_delivery = order.promised_delivery or (
            placed_at.date() + timedelta(days=DEFAULT_PROMISE_DAYS)
        )
        record.carrier = order.carrier
    db.add(record)
    db.flush()
    lines = [
        OrderLine(
            order_id=order_id,
            line_no=index + 1,
            sku=line.sku,
            category=products[line.sku].category_path,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            discount_minor=line.discount_minor,
            total_minor=line_totals[index],
        )
        for index, line in enumerate(order.lines)
    ]
    db.add_all(lines)
    db.add_all(
        OrderPayment(order_id=order_id, method=p.method, amount_minor=p.amount_minor)
        for p in order.payments
    )
    record_status(db, record, "placed", placed_at)
    ready_for_pickup = False
    past_collect_by = (
        record.collect_by is not None
        and local_day(now, record.placed_offset_minutes) > record.collect_by
    )
    if order.fulfilment == "pickup_in_store" and not past_collect_by:
        # (one recorded after its last day never waits at the store: it reserves nothing)
        assert order.store_id is not None
        for index, line in enumerate(order.lines):
            if not catalog.reserve_stock(
                db, sku=line.sku, store_id=order.store_id, quantity=line.quantity
            ):
                untracked = catalog.get_stock(db, sku=line.sku, store_id=order.store_id) is None
                db.rollback()
                if untracked:
                    # Nothing to reserve: a pick-up needs units the store counts, which a till
                    # sale (left alone where the store keeps no level) does not.
                    raise Conflict(
                        f"{order.store_id} keeps no stock level for {line.sku}, so it cannot "
                        "reserve it for pick-up: set its stock there with PUT /v1/stock first",
                        field=f"lines.{index}.sku",
                    )
                raise Conflict(
                    f"{order.store_id} cannot hold {line.quantity} x {line.sku} for pick-up: "
                    "not enough stock",
                    field=f"lines.{index}.quantity",
                )
        record.pickup_code = _pickup_code()
        record_status(db, record, "ready_for_pickup", placed_at)
        ready_for_pickup = True
    elif order.fulfilment == "in_store":
        record.delivered_at = placed_at
        record_status(db, record, "completed", placed_at)
    if order.fulfilment in ("ship", "in_store"):
        assert record.store_id is not None
        _take_sold_units(db, location=record.store_id, order=order)
    append_event(
        db,
        order_events.OrderPlaced(
            order_id=order_id,
            total_minor=total,
            discount_minor=record.discount_minor,
            shipping_minor=record.shipping_minor,
            points_payment_minor=sum(
                payment.amount_minor for payment in order.payments if payment.method == "points"
            ),
            currency=order.currency,
            store_id=record.store_id,
            fulfilment=order.fulfilment,
            lines=[
                order_events.PlacedLine(
                    line_no=line.line_no,
                    sku=line.sku,
                    category=line.category,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    discount_minor=line.discount_minor,
                )
                for line in lines
            ],
        ),
        channel=order.channel,
        customer_id=record.customer_id,
        occurred_at=placed_at,
    )
    if ready_for_pickup:
        # After order_placed in the log: the notice names the store and the last day it waits.
        announce_ready(db, record)
    db.flush()
    if past_collect_by:
        # Recorded after its last day (a historic import, a till days late): never ready, it
        # was not collected. Cancelled in this transaction without a reservation to release
        # (so a store short of the units today does not refuse it), with no ready or
        # not-collected notice: the customer is not told of a wait already over.
        assert record.collect_by is not None
        return cancel_order(
            db,
            order_id=order_id,
            reason=not_collected_reason(record.collect_by),
            before_commit=before_commit,
            units_reserved=False,
        )
    if before_commit is not None:
        before_commit(db, record)
    db.commit()
    return record


def _take_sold_units(db: Session, *, location: str, order: OrderIn) -> None:
    """A shipped order or a till sale takes its units from the selling location's stock in
    the order's transaction (so a retry under the same Idempotency-Key, answered from the
    stored reply, moves nothing). Pick-up orders reserve instead, and their units leave at
    collection, so nothing is counted twice. A location that keeps no stock level for a SKU
    is left alone; one that holds too few refuses the order (409 naming the line)."""
    # SKU order: two orders taking the same SKUs lock their rows in one order (no deadlock).
    for index, line in sorted(enumerate(order.lines), key=lambda pair: pair[1].sku):
        taken = catalog.take_stock(db, sku=line.sku, store_id=location, quantity=line.quantity)
        if taken is False:
            db.rollback()
            raise Conflict(
                f"{location} has fewer than {line.quantity} x {line.sku} available: correct the "
                "stock count (PUT /v1/stock) or sell from another location",
                field=f"lines.{index}.quantity",
            )


def offset_minutes(placed_at: datetime) -> int | None:
    """The UTC offset ``placed_at`` was sent with, in minutes (None for UTC): the clock the
    order's promise is read and judged by."""
    offset = placed_at.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    return minutes or None
