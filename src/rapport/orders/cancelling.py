"""Cancelling an order not yet handed over: a pick-up's reserved units released, a parcel's
units back in the stock they left, status ``cancelled`` with its status change, and
``order_cancelled`` logged (loyalty takes back the points the order earned, its
first-purchase bonus too, and gives back those it was paid with and the coupons it used;
traits take it off the customer's orders)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.models import Order, OrderLine, OrderPayment, OrderStatusChange
from rapport.orders.records import claim_status, get_lines, lock_order, record_status
from rapport.platform import clock
from rapport.platform.errors import Conflict
from rapport.platform.idempotency import BeforeCommit

# Once one of these happened the goods left the shop: what comes back is a return.
HANDED_OVER = frozenset(
    {"shipped", "out_for_delivery", "delivered", "failed", "collected", "completed"}
)


def cancellable(order: Order, history: list[str], lines: Sequence[OrderLine] = ()) -> bool:
    """Whether ``order``, whose status changes were ``history`` and whose lines are
    ``lines``, may still be cancelled: not cancelled, never handed over, nothing returned."""
    return (
        order.status != "cancelled"
        and not ({order.status, *history} & HANDED_OVER)
        and _returned_units(lines) == 0
    )


def _returned_units(lines: Sequence[OrderLine]) -> int:
    return sum(line.returned_quantity for line in lines)


def cancel_order(
    db: Session,
    *,
    order_id: str,
    reason: str | None = None,
    before_commit: BeforeCommit | None = None,
    units_reserved: bool = True,
) -> Order:
    """Call off an order that was not handed over: ``cancelled`` (409 naming ``order_id``
    for one already cancelled, or shipped, delivered, collected or sold at the till).
    ``before_commit`` runs last in the transaction, with the order. The order is held first
    (:func:`lock_order`), as a return holds it: of a cancellation and a return at the same
    moment, the later reads what the earlier did and is refused. ``units_reserved`` False:
    a pick-up recorded after its deadline, which reserved nothing, so releases nothing."""
    order = lock_order(db, order_id)
    if order.status == "cancelled":
        raise Conflict(f"Order {order_id} is already cancelled", field="order_id")
    taken = set(
        db.scalars(select(OrderStatusChange.status).where(OrderStatusChange.order_id == order_id))
    )
    handed_over = (taken | {order.status}) & HANDED_OVER
    if handed_over:
        raise Conflict(
            f"Order {order_id} is {order.status}: it was {_handed_over_words(handed_over)}, "
            "so it can no longer be cancelled; record what comes back as a return "
            f"(POST /v1/orders/{order_id}/returns)",
            field="order_id",
        )
    lines = get_lines(db, order_id=order_id, fresh=True)
    returned = _returned_units(lines)
    if returned:
        # A return means something was handed over: cancelling would put its units back on
        # sale and take its total off the customer's spend a second time.
        raise Conflict(
            f"Order {order_id} has {returned} unit(s) returned already, so it can no longer "
            "be cancelled; record the rest as a return instead "
            f"(POST /v1/orders/{order_id}/returns)",
            field="order_id",
        )
    now = clock.now()
    if not claim_status(db, order, "cancelled"):
        # The claim wrote nothing; the caller's transaction (a request's, or a processor's
        # savepoint) ends with the error.
        raise Conflict(
            f"Order {order_id} changed while it was being cancelled: read it again",
            field="order_id",
        )
    assert order.store_id is not None or order.fulfilment == "ship"
    location = order.store_id or "web"
    pickup = order.fulfilment == "pickup_in_store"
    released = pickup and units_reserved
    for line in sorted(lines, key=lambda line: line.sku):  # one lock order, as placing takes
        if pickup:
            if released:
                catalog.release_reserved(
                    db, sku=line.sku, store_id=location, quantity=line.quantity
                )
        elif catalog.get_stock(db, sku=line.sku, store_id=location) is not None:
            # A parcel not sent: its units, taken at placing, are back on the shelf.
            catalog.return_to_stock(db, sku=line.sku, store_id=location, quantity=line.quantity)
    record_status(db, order, "cancelled", now, reason)
    points_paid = sum(
        db.scalars(
            select(OrderPayment.amount_minor).where(
                OrderPayment.order_id == order_id, OrderPayment.method == "points"
            )
        )
    )
    append_event(
        db,
        order_events.OrderCancelled(
            order_id=order_id,
            reason=reason,
            total_minor=order.total_minor,
            points_paid_minor=points_paid,
            currency=order.currency,
            store_id=order.store_id,
            fulfilment=order.fulfilment,
            released=released,
        ),
        channel=order.channel,
        customer_id=order.customer_id,
        occurred_at=now,
    )
    if before_commit is not None:
        db.flush()
        before_commit(db, order)
    db.commit()
    return order


def _handed_over_words(statuses: set[str]) -> str:
    if "collected" in statuses:
        return "collected"
    if "completed" in statuses:
        return "sold at the till"
    if "delivered" in statuses:
        return "delivered"
    return "handed to the carrier"
