"""Purchases read in bulk for campaigns: who bought from some categories (local invitations),
and each customer's orders and spend in a window (a campaign's conversion and revenue)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.orders.models import Order, OrderLine
from rapport.orders.purchases import CustomerOrderTotals

# Ids per query: far below every database's bind-parameter limit.
_CHUNK = 500


def bought_in_categories(
    *, categories: Sequence[str], since: datetime | None = None
) -> Select[tuple[str]]:
    """A SELECT of the distinct customers with a (not cancelled) order holding a line in any
    of ``categories`` (a category includes its subcategories), placed at or after ``since``
    when given."""
    line_category = cast(ColumnElement[str], OrderLine.category)
    query = (
        select(Order.customer_id)
        .join(OrderLine, OrderLine.order_id == Order.order_id)
        .where(
            Order.customer_id.is_not(None),
            Order.status != "cancelled",
            or_(*(catalog.category_condition(line_category, c) for c in categories))
            if categories
            else false(),
        )
        .distinct()
    )
    if since is not None:
        query = query.where(Order.placed_at >= since)
    return query  # type: ignore[return-value]


def order_totals_in_window(
    db: Session, *, customer_ids: Sequence[str], since: datetime, until: datetime
) -> dict[str, CustomerOrderTotals]:
    """Orders and spend (order totals as placed) per customer of ``customer_ids`` for orders
    placed in [since, until), cancelled ones left out; customers with none are absent."""
    totals: dict[str, CustomerOrderTotals] = {}
    wanted = sorted(set(customer_ids))
    for start in range(0, len(wanted), _CHUNK):
        rows = db.execute(
            select(Order.customer_id, func.count(), func.coalesce(func.sum(Order.total_minor), 0))
            .where(
                Order.customer_id.in_(wanted[start : start + _CHUNK]),
                Order.placed_at >= since,
                Order.placed_at < until,
                Order.status != "cancelled",
            )
            .group_by(Order.customer_id)
        )
        for customer_id, count, spend in rows:
            if customer_id is not None:
                totals[customer_id] = CustomerOrderTotals(orders=int(count), spend_minor=int(spend))
    return totals
