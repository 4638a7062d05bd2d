"""One order's records: reading an order, its lines and status history, and recording a
status change (shared by placing, fulfilment and returns)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from rapport.orders.models import (
    Order,
    OrderLine,
    OrderStatusChange,
)
from rapport.platform import clock
from rapport.platform.errors import InvalidInput, NotFound


def record_status(
    db: Session, order: Order, status: str, at: datetime, note: str | None = None
) -> None:
    """Set the order's status and keep the change in its history (the caller commits)."""
    order.status = status
    order.updated_at = clock.now()
    db.add(OrderStatusChange(order_id=order.order_id, status=status, note=note, at=at))


def claim_status(db: Session, order: Order, status: str) -> bool:
    """Move ``order`` to ``status`` with one guarded UPDATE that holds only while the order is
    still in the status it was read in, before anything else moves: of two changes at once (a
    cancellation and a till's collection) the later finds it changed and gets ``False``, and
    should roll back. :func:`record_status` then keeps the change in the history."""
    claimed = db.execute(
        update(Order)
        .where(Order.order_id == order.order_id, Order.status == order.status)
        .values(status=status, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def require_order(db: Session, order_id: str) -> Order:
    """The order, or 404 naming ``order_id``."""
    order = db.get(Order, order_id)
    if order is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    return order


def lock_order(db: Session, order_id: str) -> Order:
    """The order read afresh and held (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite runs one
    writing transaction at a time) until the transaction ends, or 404 naming ``order_id``.
    What changes an order without changing its status (a return) and what claims it by its
    status (a cancellation) both take it first, so of two at once the later waits and then
    reads what the earlier did: a return never lands beside a cancellation, nor two returns
    bring back the same units."""
    order = db.get(Order, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    return order


def get_order(db: Session, *, order_id: str) -> Order | None:
    return db.get(Order, order_id)


def get_lines(db: Session, *, order_id: str, fresh: bool = False) -> list[OrderLine]:
    """The order's lines by ``line_no``; ``fresh`` reads them again from the database even
    where this session loaded them before (after :func:`lock_order`: what others committed)."""
    query = select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
    if fresh:
        query = query.execution_options(populate_existing=True)
    return list(db.scalars(query))


def status_history(db: Session, *, order_id: str) -> list[OrderStatusChange]:
    """The order's status changes, oldest first (those of one moment as recorded)."""
    return list(
        db.scalars(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order_id)
            .order_by(OrderStatusChange.at, OrderStatusChange.id)
        )
    )


def customer_orders(
    db: Session, *, customer_id: str, limit: int = 100, after: str | None = None
) -> list[Order]:
    """A customer's orders across channels, newest first (ties by order id); ``after``, one of
    their order ids, starts the list just past that order (a page's cursor). An ``after``
    that is not one of theirs is 422 naming ``cursor``."""
    query = select(Order).where(Order.customer_id == customer_id)
    if after is not None:
        last = db.get(Order, after)
        if last is None or last.customer_id != customer_id:
            raise InvalidInput(
                "Not a cursor of this customer's orders: pass next_cursor as it came",
                field="cursor",
            )
        query = query.where(
            or_(
                Order.placed_at < last.placed_at,
                and_(Order.placed_at == last.placed_at, Order.order_id < last.order_id),
            )
        )
    return list(
        db.scalars(query.order_by(Order.placed_at.desc(), Order.order_id.desc()).limit(limit))
    )


def count_orders(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Order)) or 0
