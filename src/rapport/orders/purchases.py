"""What customers bought, as read-only answers for other domains (program analytics,
review badges, recommendation training)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from rapport.orders.models import (
    Order,
    OrderLine,
)
from rapport.platform import clock


@dataclass(frozen=True)
class CustomerOrderTotals:
    orders: int
    spend_minor: int  # order totals as placed, before any return


def order_totals_by_customer(
    db: Session, *, since: datetime, until: datetime
) -> dict[str, CustomerOrderTotals]:
    """Orders and spend per known customer for orders placed in [since, until); cancelled
    orders are left out. Read-only (program analytics compare customer groups with it)."""
    rows = db.execute(
        select(Order.customer_id, func.count(), func.coalesce(func.sum(Order.total_minor), 0))
        .where(
            Order.customer_id.is_not(None),
            Order.placed_at >= since,
            Order.placed_at < until,
            Order.status != "cancelled",
        )
        .group_by(Order.customer_id)
    )
    return {
        customer_id: CustomerOrderTotals(orders=int(count), spend_minor=int(spend))
        for customer_id, count, spend in rows
        if customer_id is not None
    }


def delivered_skus(db: Session, *, customer_id: str, skus: Sequence[str]) -> dict[str, datetime]:
    """For each of ``skus`` the customer has received (delivered, collected or bought in
    store), when they first had it. Read-only (verified-purchase badges on reviews)."""
    if not skus:
        return {}
    rows = db.execute(
        select(OrderLine.sku, func.min(Order.delivered_at))
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(
            Order.customer_id == customer_id,
            Order.delivered_at.is_not(None),
            Order.status != "cancelled",
            OrderLine.sku.in_(list(skus)),
        )
        .group_by(OrderLine.sku)
    ).all()
    return {str(sku): clock.as_utc(at) for sku, at in rows if at is not None}


def delivered_lines(
    db: Session, *, customer_id: str, sku: str, order_id: str | None = None
) -> list[tuple[str, int]]:
    """(order id, line no) of every line of ``sku`` the customer received (delivered,
    collected or bought in store), in ``order_id`` only when given; first received first.
    Read-only (one review per purchase)."""
    query = (
        select(OrderLine.order_id, OrderLine.line_no)
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(
            Order.customer_id == customer_id,
            Order.delivered_at.is_not(None),
            Order.status != "cancelled",
            OrderLine.sku == sku,
        )
        .order_by(Order.delivered_at, OrderLine.order_id, OrderLine.line_no)
    )
    if order_id is not None:
        query = query.where(OrderLine.order_id == order_id)
    return [(str(order), int(line_no)) for order, line_no in db.execute(query)]


@dataclass(frozen=True)
class PurchaseLine:
    order_id: str
    customer_id: str | None
    sku: str
    placed_at: datetime
    store_id: str | None
    channel: str
    category: str | None


def purchase_lines(db: Session, *, until: datetime | None = None) -> list[PurchaseLine]:
    """Every line bought and kept (cancelled orders and fully returned lines left out), oldest
    first. Read-only: recommendation training learns from it."""
    query = (
        select(
            Order.order_id,
            Order.customer_id,
            OrderLine.sku,
            Order.placed_at,
            Order.store_id,
            Order.channel,
            OrderLine.category,
        )
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(Order.status != "cancelled", OrderLine.returned_quantity < OrderLine.quantity)
        .order_by(Order.placed_at, OrderLine.order_id, OrderLine.line_no)
    )
    if until is not None:
        query = query.where(Order.placed_at < until)
    return [
        PurchaseLine(
            order_id=order_id,
            customer_id=customer_id,
            sku=sku,
            placed_at=clock.as_utc(placed_at),
            store_id=store_id,
            channel=channel,
            category=category,
        )
        for order_id, customer_id, sku, placed_at, store_id, channel, category in db.execute(query)
    ]


_RECENTLY_BOUGHT = (
    select(OrderLine.sku)
    .join(Order, Order.order_id == OrderLine.order_id)
    .where(
        Order.customer_id == bindparam("customer_id"),
        Order.placed_at >= bindparam("since", type_=Order.placed_at.type),
        Order.status != "cancelled",
        OrderLine.returned_quantity < OrderLine.quantity,
    )
)


def recently_bought(db: Session, *, customer_id: str, since: datetime) -> set[str]:
    """SKUs the customer bought (and kept) since ``since``. Read-only."""
    rows = db.connection().execute(_RECENTLY_BOUGHT, {"customer_id": customer_id, "since": since})
    return {str(sku) for (sku,) in rows}
