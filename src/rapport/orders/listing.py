"""Reads for the orders admin pages: orders and late deliveries a page at a time with their
filters, and one customer's orders and returns for the customer 360 panel."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.orders.models import Order, OrderLine, ReturnLine, local_day
from rapport.platform import clock

CHANNELS = ("web", "app", "store", "call_center")


@dataclass(frozen=True)
class OrderFilter:
    """What the orders list is narrowed to; empty fields do not narrow."""

    # Part of an order id or Rapport customer id, or what finds the customer in the customers
    # list (part of a name or email, exactly their customer number, phone or card).
    query: str = ""
    channel: str = ""
    status: str = ""
    carrier: str = ""
    late_only: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        text = self.query.strip()
        if text:
            lowered = text.lower()
            found.append(
                or_(
                    func.lower(Order.order_id).contains(lowered, autoescape=True),
                    func.lower(Order.customer_id).contains(lowered, autoescape=True),
                    Order.customer_id.in_(customers.search_audience(text)),
                )
            )
        if self.channel:
            found.append(Order.channel == self.channel)
        if self.status:
            found.append(Order.status == self.status)
        if self.carrier:
            found.append(Order.carrier == self.carrier)
        if self.late_only:
            found.append(Order.late_notified_at.is_not(None))
        return found


def count_orders(db: Session, *, where: OrderFilter) -> int:
    return db.scalar(select(func.count()).select_from(Order).where(*where.conditions())) or 0


def list_orders(
    db: Session, *, where: OrderFilter, offset: int = 0, limit: int = 50
) -> list[Order]:
    """Orders newest first (late ones: most recently flagged first)."""
    order_by = (
        (Order.late_notified_at.desc(), Order.order_id)
        if where.late_only
        else (Order.placed_at.desc(), Order.order_id)
    )
    return list(
        db.scalars(
            select(Order).where(*where.conditions()).order_by(*order_by).offset(offset).limit(limit)
        )
    )


def statuses(db: Session) -> list[str]:
    return sorted(s for s in db.scalars(select(Order.status).distinct()) if s)


def carriers(db: Session) -> list[str]:
    return sorted(
        c for c in db.scalars(select(Order.carrier).distinct()) if c is not None and c != ""
    )


def promise_state(order: Order, now: datetime | None = None) -> str:
    """``kept``, ``late``, ``due`` (not yet delivered, promise not passed) or ``''`` where
    nothing was promised (collected in a shop, picked up) or the order was cancelled (nothing
    is owed on it: never late, as the late filter and the promise report have it). Days are
    read at the offset the order was placed with, as its promise was."""
    if order.promised_delivery is None or order.status == "cancelled":
        return ""
    kept = order.promise_kept
    if kept is not None:
        return "kept" if kept else "late"
    if order.status == "failed":
        return "late"
    today = local_day(now or clock.now(), order.placed_offset_minutes)
    return "late" if today > order.promised_delivery else "due"


@dataclass(frozen=True)
class ReturnedItem:
    order_id: str
    sku: str
    quantity: int
    reason: str
    refund_minor: int
    returned_at: datetime
    channel: str


@dataclass(frozen=True)
class CustomerOrdersView:
    orders: list[Order]
    total_orders: int
    promise: dict[str, str]  # order id -> kept, late, due or ''
    units: dict[str, int]  # order id -> units bought
    returned_units: dict[str, int]
    returns: list[ReturnedItem]
    spent_minor: int
    currency: str | None
    units_bought: int
    units_returned: int
    by_channel: dict[str, int]

    @property
    def return_rate(self) -> float:
        return self.units_returned / self.units_bought if self.units_bought else 0.0


def customer_orders_view(
    db: Session, *, customer_id: str, offset: int = 0, limit: int = 10
) -> CustomerOrdersView:
    """One customer's orders across channels (a page of them, newest first) with whether
    each delivery kept its promise, and every return with its reason."""
    mine = Order.customer_id == customer_id
    orders = list(
        db.scalars(
            select(Order)
            .where(mine)
            .order_by(Order.placed_at.desc(), Order.order_id)
            .offset(offset)
            .limit(limit)
        )
    )
    totals = db.execute(
        select(
            func.count(), func.coalesce(func.sum(Order.total_minor), 0), func.min(Order.currency)
        ).where(mine, Order.status != "cancelled")
    ).one()
    by_channel = dict(
        db.execute(select(Order.channel, func.count()).where(mine).group_by(Order.channel)).all()
    )
    units: dict[str, int] = defaultdict(int)
    returned: dict[str, int] = defaultdict(int)
    bought_total = returned_total = 0
    for order_id, quantity, returned_quantity in db.execute(
        select(OrderLine.order_id, OrderLine.quantity, OrderLine.returned_quantity)
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(mine)
    ):
        units[order_id] += quantity
        returned[order_id] += returned_quantity
        bought_total += quantity
        returned_total += returned_quantity
    returns = [
        ReturnedItem(
            order_id=r.order_id,
            sku=r.sku,
            quantity=r.quantity,
            reason=r.reason,
            refund_minor=r.refund_minor,
            returned_at=r.returned_at,
            channel=r.channel,
        )
        for r in db.scalars(
            select(ReturnLine)
            .where(ReturnLine.customer_id == customer_id)
            .order_by(ReturnLine.returned_at.desc())
            .limit(20)
        )
    ]
    now = clock.now()
    return CustomerOrdersView(
        orders=orders,
        total_orders=sum(by_channel.values()),
        promise={o.order_id: promise_state(o, now) for o in orders},
        units=dict(units),
        returned_units=dict(returned),
        returns=returns,
        spent_minor=int(totals[1]),
        currency=totals[2],
        units_bought=bought_total,
        units_returned=returned_total,
        by_channel={str(k): int(v) for k, v in by_channel.items()},
    )
