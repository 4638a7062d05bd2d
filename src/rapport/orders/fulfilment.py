"""Fulfilment after the order: collection of pick-up-in-store orders at the till, and the
delivery statuses carriers and warehouses send for shipped orders."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.models import Order, OrderStatusChange
from rapport.orders.pickups import released_words
from rapport.orders.records import claim_status, get_lines, record_status, require_order
from rapport.orders.returns import units_restocked_at
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput
from rapport.platform.idempotency import BeforeCommit

_DELIVERY_FLOW = {
    "packed": {"placed"},
    "shipped": {"placed", "packed", "delayed"},
    "out_for_delivery": {"shipped", "delayed"},
    "delayed": {"placed", "packed", "shipped", "out_for_delivery"},
    "delivered": {"shipped", "out_for_delivery", "delayed"},
    "failed": {"shipped", "out_for_delivery", "delayed"},
}


def confirm_pickup(
    db: Session,
    *,
    order_id: str,
    pickup_code: str,
    store_id: str,
    before_commit: BeforeCommit | None = None,
) -> Order:
    """The till scanned the pick-up code: the reserved units leave with the customer (less any
    an earlier version let be returned before collection; 409 if that was all of them).
    ``before_commit`` runs last in the transaction, with the order."""
    order = require_order(db, order_id)
    if order.fulfilment != "pickup_in_store":
        raise InvalidInput("This order is not for pick-up in store", field="order_id")
    if order.status != "ready_for_pickup":
        # Its state first: a cancelled order is said to be cancelled, whatever code was typed,
        # and one released at its deadline is said to be so, with the date.
        raise Conflict(
            released_words(db, order) or f"The order is {order.status}, not ready for pick-up",
            field="order_id",
        )
    if order.store_id != store_id:
        raise InvalidInput(f"This order is to be collected at {order.store_id}", field="store_id")
    if order.pickup_code is None or not secrets.compare_digest(
        order.pickup_code, pickup_code.strip().upper()
    ):
        raise InvalidInput("The pick-up code does not match this order", field="pickup_code")
    lines = get_lines(db, order_id=order_id)
    if all(line.returned_quantity >= line.quantity for line in lines):
        raise Conflict(
            f"Every unit of order {order_id} was recorded as returned before it was collected "
            "(an earlier version allowed that): there is nothing to hand over",
            field="order_id",
        )
    if not claim_status(db, order, "collected"):
        # The claim wrote nothing; the caller's transaction (a request's, or a processor's
        # savepoint) ends with the error.
        raise Conflict(
            f"Order {order_id} changed while it was being collected (cancelled, say): read it"
            " again before handing anything over",
            field="order_id",
        )
    now = clock.now()
    restocked = units_restocked_at(db, order_id=order_id, store_id=store_id)
    for line in lines:
        # Units an earlier version let be returned before collection stay in the shop and
        # are not handed over: their reservation goes, and where that return counted them
        # back into this shop's stock (they never left), they are taken out of it again.
        counted_back = min(line.returned_quantity, restocked.get(line.line_no, 0))
        handed = line.quantity - line.returned_quantity + counted_back
        if not catalog.collect_reserved(db, sku=line.sku, store_id=store_id, quantity=handed):
            # The shop's count fell below its reservations (a reserved unit broke): the
            # caller's transaction ends with the error, so nothing is handed over.
            raise Conflict(
                f"{store_id} counts fewer than the {handed} x {line.sku} reserved for order "
                f"{order_id} (its stock is short of its reservations): hand over nothing, then "
                "correct the count with PUT /v1/stock or cancel the order",
                field=f"lines.{line.line_no - 1}.quantity",
            )
        if line.returned_quantity > counted_back:
            catalog.release_reserved(
                db, sku=line.sku, store_id=store_id, quantity=line.returned_quantity - counted_back
            )
    order.delivered_at = now
    record_status(db, order, "collected", now)
    append_event(
        db,
        order_events.OrderCollected(order_id=order_id, store_id=store_id),
        channel="store",
        customer_id=order.customer_id,
    )
    if before_commit is not None:
        db.flush()
        before_commit(db, order)
    db.commit()
    return order


@dataclass(frozen=True)
class _LastStatus:
    status: str
    at: datetime


def _last_status_change(db: Session, order: Order) -> _LastStatus:
    """The order's latest status change (by time, then as recorded); an order loaded from
    history has none, and its placing stands for it."""
    change = db.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.order_id == order.order_id)
        .order_by(OrderStatusChange.at.desc(), OrderStatusChange.id.desc())
        .limit(1)
    ).first()
    if change is None:
        return _LastStatus(status="placed", at=clock.as_utc(order.placed_at))
    return _LastStatus(status=change.status, at=clock.as_utc(change.at))


def _check_status_time(order: Order, at: datetime) -> None:
    """A status time may not lie ahead of this server's clock (beyond MAX_CLOCK_SKEW) nor
    before the order was placed: 422 naming ``at``."""
    if clock.is_in_future(at):
        raise InvalidInput(
            "at is more than 5 minutes in the future; check the sender's clock", field="at"
        )
    placed_at = clock.as_utc(order.placed_at)
    if at < placed_at:
        raise InvalidInput(
            f"at is before order {order.order_id} was placed ({placed_at.isoformat()})",
            field="at",
        )


def update_delivery_status(
    db: Session,
    *,
    order_id: str,
    status: str,
    at: datetime | None = None,
    note: str | None = None,
    before_commit: BeforeCommit | None = None,
) -> Order:
    """A carrier or warehouse update for a shipped order. ``before_commit`` runs last in the
    transaction, with the order (also when the update changed nothing)."""
    order = require_order(db, order_id)
    if order.fulfilment != "ship":
        raise InvalidInput("Only shipped orders have delivery statuses", field="order_id")
    if at is not None:
        _check_status_time(order, at)
    if order.status == status:  # the same update twice changes nothing
        if before_commit is not None:
            before_commit(db, order)
            db.commit()
        return order
    if order.status not in _DELIVERY_FLOW[status]:
        raise Conflict(f"An order that is {order.status} cannot become {status}", field="status")
    last = _last_status_change(db, order)
    if at is not None and at < last.at:
        raise InvalidInput(
            f"at is before the order's last status ({last.status} at {last.at.isoformat()}): "
            "send the statuses in the order they happened",
            field="at",
        )
    # Without a time the update happened now, yet never before the last status (a placed_at
    # may lie up to MAX_CLOCK_SKEW ahead of this server's clock).
    when = at or max(clock.now(), last.at)
    if status == "delivered":
        order.delivered_at = when
    record_status(db, order, status, when, note)
    append_event(
        db,
        order_events.DELIVERY_STATUS_EVENTS[status](
            order_id=order_id,
            carrier=order.carrier,
            promised_delivery=str(order.promised_delivery),
            note=note,
        ),
        channel=order.channel,
        customer_id=order.customer_id,
        occurred_at=when,
    )
    if before_commit is not None:
        db.flush()
        before_commit(db, order)
    db.commit()
    return order
