"""Order reports: lines charged otherwise than their channel price, and how concentrated
returns are among customers."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.orders.models import (
    Order,
    OrderLine,
    ReturnLine,
)
from rapport.platform import clock


@dataclass(frozen=True)
class ChargedDifference:
    """An order line charged at another unit price than its channel's price at order time."""

    order_id: str
    line_no: int
    sku: str
    channel: str
    store_id: str | None
    placed_at: datetime
    quantity: int
    currency: str  # the order's, which is the price's: other lines are not compared
    charged_unit_minor: int
    channel_unit_minor: int
    difference_minor: int  # (charged - channel price) x quantity: positive is overcharged
    basis: str  # "channel rule" (with its reason) or "catalogue price (current)"
    reason: str | None


@dataclass(frozen=True)
class ChargedTotals:
    currency: str
    overcharged_minor: int
    undercharged_minor: int


@dataclass(frozen=True)
class ChargedPriceReport:
    """``overcharged_minor`` and ``undercharged_minor`` are in ``currency``, the currency of
    most lines compared; ``totals`` has them for every currency (a catalogue priced in
    several)."""

    since: datetime
    until: datetime
    lines_checked: int
    lines_in_other_currency: int  # order in another currency than the product's price
    differences: list[ChargedDifference]
    currency: str | None
    overcharged_minor: int
    undercharged_minor: int
    totals: list[ChargedTotals]
    truncated: bool


RECENT_DAYS = 30


@dataclass(frozen=True)
class Window:
    """[since, until): what the reports and pages mean by a span of days."""

    since: datetime
    until: datetime


def last_30_days() -> Window:
    """ "The last 30 days" of every report and page: 30 whole days in UTC, today the last of
    them, from midnight 29 days ago to tomorrow's midnight (so an order placed a moment ago,
    or a few minutes ahead by a till's clock, is in it). The API's ``since``/``until`` dates
    name the same window: ``since`` = today - 29, ``until`` = today + 1."""
    today = clock.now().date()
    return Window(
        since=datetime.combine(today - timedelta(days=RECENT_DAYS - 1), time(), tzinfo=UTC),
        until=datetime.combine(today + timedelta(days=1), time(), tzinfo=UTC),
    )


def charged_price_report(
    db: Session, *, since: datetime, until: datetime, limit: int = 500
) -> ChargedPriceReport:
    """What orders placed in [since, until) were charged per unit (before discounts, which
    are shown as such), against the channel's price at the moment of the order: the price
    rule for that channel (or store) live then, else the catalogue price. The catalogue
    keeps no history of its own prices, so that fallback is today's catalogue price.
    A line is compared only when its order is in the product's price currency: amounts are
    never converted, so a line paid in another currency is counted, not judged. Cancelled
    orders are left out; the ``limit`` largest differences are listed."""
    rows = db.execute(
        select(
            OrderLine.order_id,
            OrderLine.line_no,
            OrderLine.sku,
            OrderLine.quantity,
            OrderLine.unit_price_minor,
            Order.channel,
            Order.store_id,
            Order.placed_at,
            Order.currency,
        )
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(Order.placed_at >= since, Order.placed_at < until, Order.status != "cancelled")
    ).all()
    skus = sorted({str(row.sku) for row in rows})
    products = catalog.get_products(db, skus=skus)
    rules = catalog.channel_prices(db, skus=skus)
    differences = []
    compared: Counter[str] = Counter()  # lines per currency
    over: Counter[str] = Counter()
    under: Counter[str] = Counter()
    other_currency = 0
    for row in rows:
        product = products.get(row.sku)
        if product is None:
            continue  # a product since removed from the catalogue: nothing to compare with
        if row.currency != product.currency:
            other_currency += 1
            continue
        compared[row.currency] += 1
        placed_at = clock.as_utc(row.placed_at)
        price, rule = catalog.price_on(
            product.price_minor,
            rules.get(row.sku, []),
            channel=row.channel,
            store_id=row.store_id,
            at=placed_at,
        )
        if price == row.unit_price_minor:
            continue
        difference = (row.unit_price_minor - price) * row.quantity
        (over if difference > 0 else under)[row.currency] += abs(difference)
        differences.append(
            ChargedDifference(
                order_id=row.order_id,
                line_no=row.line_no,
                sku=row.sku,
                channel=row.channel,
                store_id=row.store_id,
                placed_at=placed_at,
                quantity=row.quantity,
                currency=row.currency,
                charged_unit_minor=row.unit_price_minor,
                channel_unit_minor=price,
                difference_minor=difference,
                basis="channel rule" if rule is not None else "catalogue price (current)",
                reason=rule.reason if rule is not None else None,
            )
        )
    differences.sort(key=lambda d: (-abs(d.difference_minor), d.order_id, d.line_no))
    totals = [ChargedTotals(c, over[c], under[c]) for c in sorted(compared)]
    main = min(compared, key=lambda c: (-compared[c], c)) if compared else None
    return ChargedPriceReport(
        since=since,
        until=until,
        lines_checked=sum(compared.values()),
        lines_in_other_currency=other_currency,
        differences=differences[:limit],
        currency=main,
        overcharged_minor=over[main] if main else 0,
        undercharged_minor=under[main] if main else 0,
        totals=totals,
        truncated=len(differences) > limit,
    )


@dataclass(frozen=True)
class Concentration:
    customers: int
    customers_with_returns: int
    returned_units: int
    returned_orders: int
    top1_units_share: float
    top5_units_share: float
    top1_orders_share: float
    top5_orders_share: float


def concentration(
    per_customer_units: dict[str, int], per_customer_orders: dict[str, int], customers_total: int
) -> Concentration:
    """What share of returns the top 1% and 5% of customers (ranked by returns) make."""

    def share(values: dict[str, int], fraction: float) -> float:
        total = sum(values.values())
        if not total or not customers_total:
            return 0.0
        top_n = max(1, round(customers_total * fraction))
        return sum(sorted(values.values(), reverse=True)[:top_n]) / total

    return Concentration(
        customers=customers_total,
        customers_with_returns=len(per_customer_units),
        returned_units=sum(per_customer_units.values()),
        returned_orders=sum(per_customer_orders.values()),
        top1_units_share=share(per_customer_units, 0.01),
        top5_units_share=share(per_customer_units, 0.05),
        top1_orders_share=share(per_customer_orders, 0.01),
        top5_orders_share=share(per_customer_orders, 0.05),
    )


def returns_concentration(db: Session) -> Concentration:
    """Returns concentration over the customers who have ordered."""
    buyers = (
        db.scalar(
            select(func.count(func.distinct(Order.customer_id))).where(
                Order.customer_id.is_not(None)
            )
        )
        or 0
    )
    units: dict[str, int] = defaultdict(int)
    orders: dict[str, set[str]] = defaultdict(set)
    for customer_id, order_id, quantity in db.execute(
        select(ReturnLine.customer_id, ReturnLine.order_id, ReturnLine.quantity).where(
            ReturnLine.customer_id.is_not(None)
        )
    ):
        if customer_id is not None:
            units[customer_id] += quantity
            orders[customer_id].add(order_id)
    return concentration(dict(units), {k: len(v) for k, v in orders.items()}, buyers)
