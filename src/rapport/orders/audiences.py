"""Orders as audiences: SELECTs of customer ids by spend in a window, for other domains to nest
as subqueries (campaigns' segments). "Bought from a category" is ``campaign_reads``'
``bought_in_categories``; like it, cancelled orders are not purchases."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, func, select

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.orders.models import Order, OrderLine


def spent_audience(
    *, more_than_minor: int, since: datetime, category: str | None = None
) -> customers.CustomerIds:
    """Customers whose orders placed since ``since`` add up to more than ``more_than_minor``
    (order totals as placed; with ``category``, only the lines in that category or under it)."""
    purchase = (
        (Order.placed_at >= since) & Order.customer_id.is_not(None) & (Order.status != "cancelled")
    )
    if category is None:
        return customers.as_customer_ids(
            select(Order.customer_id)
            .where(purchase)
            .group_by(Order.customer_id)
            .having(func.sum(Order.total_minor) > more_than_minor)
        )
    line_category = cast(ColumnElement[str], OrderLine.category)
    return customers.as_customer_ids(
        select(Order.customer_id)
        .join(OrderLine, OrderLine.order_id == Order.order_id)
        .where(purchase, catalog.category_condition(line_category, category))
        .group_by(Order.customer_id)
        .having(func.sum(OrderLine.total_minor) > more_than_minor)
    )
