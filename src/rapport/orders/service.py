"""Order verbs: the only functions other code calls to read or change orders.

Every verb owns its transaction and appends its events (``order_placed``,
``order_collected``, ``order_delivered``, ``delivery_late``, ``order_returned`` …) in it.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.orders.models import (
    CustomerNotice,
    Order,
    OrderLine,
    OrderPayment,
    OrderStatusChange,
    ReturnLine,
)
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform import clock, jobs
from rapport.platform.db import upsert_rows
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.ids import new_id
from rapport.platform.privacy import PrivacySubject

DEFAULT_PROMISE_DAYS = 3
PICKUP_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread at the till
BeforeCommit = Callable[[Session, Order], None]

_DELIVERY_FLOW = {
    "packed": {"placed"},
    "shipped": {"placed", "packed", "delayed"},
    "out_for_delivery": {"shipped", "delayed"},
    "delayed": {"placed", "packed", "shipped", "out_for_delivery"},
    "delivered": {"shipped", "out_for_delivery", "delayed"},
    "failed": {"shipped", "out_for_delivery", "delayed"},
}
_STATUS_EVENTS = {
    "packed": "order_packed",
    "shipped": "order_shipped",
    "out_for_delivery": "order_out_for_delivery",
    "delivered": "order_delivered",
    "delayed": "delivery_delayed",
    "failed": "delivery_failed",
}


def _pickup_code() -> str:
    return "".join(secrets.choice(PICKUP_CODE_ALPHABET) for _ in range(8))


def _resolve_customer(db: Session, customer_id: str | None) -> str | None:
    if customer_id is None:
        return None
    known = customers.get_customer(db, customer_id=customer_id)
    if known is None:
        known = customers.find_customer(db, kind="external_id", value=customer_id)
    if known is None and customers.erased_kinds(db, {"external_id": customer_id}):
        raise InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    if known is None:
        known = customers.resolve_identities(
            db, identities={"external_id": customer_id}, source="order"
        )
    if known.status != "active":
        raise InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    return known.customer_id


def _line_payload(lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    return [
        {
            "line_no": line.line_no,
            "sku": line.sku,
            "category": line.category,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "discount_minor": line.discount_minor,
        }
        for line in lines
    ]


def _record_status(
    db: Session, order: Order, status: str, at: datetime, note: str | None = None
) -> None:
    order.status = status
    order.updated_at = clock.now()
    db.add(OrderStatusChange(order_id=order.order_id, status=status, note=note, at=at))


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
    if order.fulfilment in ("pickup_in_store", "in_store"):
        if not order.store_id:
            raise InvalidInput(f"A {order.fulfilment} order needs a store_id", field="store_id")
        if catalog.get_store(db, store_id=order.store_id) is None:
            raise InvalidInput(f"Unknown store {order.store_id!r}", field="store_id")
    now = clock.now()
    placed_at = order.placed_at or now
    record = Order(
        order_id=order_id,
        customer_id=_resolve_customer(db, order.customer_id),
        channel=order.channel,
        fulfilment=order.fulfilment,
        store_id=order.store_id if order.fulfilment != "ship" else (order.store_id or "web"),
        status="placed",
        currency=order.currency,
        subtotal_minor=subtotal,
        discount_minor=order.discount_minor,
        shipping_minor=order.shipping_minor,
        total_minor=total,
        placed_at=placed_at,
        source="api",
        created_at=now,
        updated_at=now,
    )
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
    _record_status(db, record, "placed", placed_at)
    if order.fulfilment == "pickup_in_store":
        assert order.store_id is not None
        for index, line in enumerate(order.lines):
            if not catalog.reserve_stock(
                db, sku=line.sku, store_id=order.store_id, quantity=line.quantity
            ):
                db.rollback()
                raise Conflict(
                    f"{order.store_id} cannot hold {line.quantity} x {line.sku} for pick-up: "
                    "not enough stock",
                    field=f"lines.{index}.quantity",
                )
        record.pickup_code = _pickup_code()
        _record_status(db, record, "ready_for_pickup", placed_at)
    elif order.fulfilment == "in_store":
        record.delivered_at = placed_at
        _record_status(db, record, "completed", placed_at)
    if order.fulfilment in ("ship", "in_store"):
        assert record.store_id is not None
        _take_sold_units(db, location=record.store_id, order=order)
    append_event(
        db,
        type="order_placed",
        channel=order.channel,
        customer_id=record.customer_id,
        occurred_at=placed_at,
        properties={
            "order_id": order_id,
            "total_minor": total,
            "discount_minor": record.discount_minor,
            "shipping_minor": record.shipping_minor,
            "points_payment_minor": sum(
                payment.amount_minor for payment in order.payments if payment.method == "points"
            ),
            "currency": order.currency,
            "store_id": record.store_id,
            "fulfilment": order.fulfilment,
            "lines": _line_payload(lines),
        },
    )
    db.flush()
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


def get_order(db: Session, *, order_id: str) -> Order | None:
    return db.get(Order, order_id)


def get_lines(db: Session, *, order_id: str) -> list[OrderLine]:
    return list(
        db.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
        )
    )


def status_history(db: Session, *, order_id: str) -> list[OrderStatusChange]:
    return list(
        db.scalars(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order_id)
            .order_by(OrderStatusChange.id)
        )
    )


def customer_orders(db: Session, *, customer_id: str, limit: int = 100) -> list[Order]:
    """A customer's orders across channels, newest first."""
    return list(
        db.scalars(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.placed_at.desc())
            .limit(limit)
        )
    )


def _require(db: Session, order_id: str) -> Order:
    order = db.get(Order, order_id)
    if order is None:
        raise NotFound(f"No order {order_id!r}", field="order_id")
    return order


def confirm_pickup(db: Session, *, order_id: str, pickup_code: str, store_id: str) -> Order:
    """The till scanned the pick-up code: the reserved units leave with the customer."""
    order = _require(db, order_id)
    if order.fulfilment != "pickup_in_store":
        raise InvalidInput("This order is not for pick-up in store", field="order_id")
    if order.store_id != store_id:
        raise InvalidInput(f"This order is to be collected at {order.store_id}", field="store_id")
    if order.pickup_code is None or not secrets.compare_digest(
        order.pickup_code, pickup_code.strip().upper()
    ):
        raise InvalidInput("The pick-up code does not match this order", field="pickup_code")
    if order.status != "ready_for_pickup":
        raise Conflict(f"The order is {order.status}, not ready for pick-up", field="order_id")
    now = clock.now()
    for line in get_lines(db, order_id=order_id):
        catalog.collect_reserved(db, sku=line.sku, store_id=store_id, quantity=line.quantity)
    order.delivered_at = now
    _record_status(db, order, "collected", now)
    append_event(
        db,
        type="order_collected",
        channel="store",
        customer_id=order.customer_id,
        properties={"order_id": order_id, "store_id": store_id},
    )
    db.commit()
    return order


def update_delivery_status(
    db: Session, *, order_id: str, status: str, at: datetime | None = None, note: str | None = None
) -> Order:
    """A carrier or warehouse update for a shipped order."""
    order = _require(db, order_id)
    if order.fulfilment != "ship":
        raise InvalidInput("Only shipped orders have delivery statuses", field="order_id")
    if order.status == status:
        return order  # the same update twice changes nothing
    if order.status not in _DELIVERY_FLOW[status]:
        raise Conflict(f"An order that is {order.status} cannot become {status}", field="status")
    when = at or clock.now()
    if status == "delivered":
        order.delivered_at = when
    _record_status(db, order, status, when, note)
    append_event(
        db,
        type=_STATUS_EVENTS[status],
        channel=order.channel,
        customer_id=order.customer_id,
        occurred_at=when,
        properties={
            "order_id": order_id,
            "carrier": order.carrier,
            "promised_delivery": str(order.promised_delivery),
            "note": note,
        },
    )
    db.commit()
    return order


# ------------------------------------------------------------------------ delivery promises


def _late_reason(order: Order, today: date) -> str | None:
    if order.promised_delivery is None or order.delivered_at is not None:
        return None
    if order.status == "failed":
        return "delivery failed"
    if order.promised_delivery < today:
        return "promised date passed"
    if order.status == "delayed":
        return "carrier reported a delay"
    if order.promised_delivery == today and order.status in ("placed", "packed"):
        return "not shipped on the promised day"
    return None


def flag_late_deliveries(db: Session) -> list[str]:
    """Find shipped orders that missed or will miss their promise; for each, once: log
    ``delivery_late`` (the loyalty apology rule reacts to it) and queue a notice."""
    now = clock.now()
    today = now.date()
    candidates = db.scalars(
        select(Order).where(
            Order.fulfilment == "ship",
            Order.delivered_at.is_(None),
            Order.late_notified_at.is_(None),
            Order.promised_delivery <= today,
        )
    ).all()
    candidates = [
        *candidates,
        *db.scalars(
            select(Order).where(
                Order.status == "delayed",
                Order.late_notified_at.is_(None),
                Order.promised_delivery > today,
            )
        ).all(),
    ]
    flagged = []
    for order in candidates:
        reason = _late_reason(order, today)
        if reason is None:
            continue
        # Claim the order with a guarded update, so two workers cannot both notify.
        claimed = db.execute(
            update(Order)
            .where(Order.order_id == order.order_id, Order.late_notified_at.is_(None))
            .values(late_notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        append_event(
            db,
            type="delivery_late",
            channel=order.channel,
            customer_id=order.customer_id,
            properties={
                "order_id": order.order_id,
                "promised_delivery": str(order.promised_delivery),
                "reason": reason,
            },
        )
        # An erased (or merged-into-erased) customer is told nothing; the event stays,
        # pseudonymous, for the promise-keeping figures.
        if order.customer_id is None or customers.may_contact(
            db, customer_id=order.customer_id, purpose=customers.SERVICE
        ):
            notice = CustomerNotice(
                order_id=order.order_id,
                customer_id=order.customer_id,
                kind="delivery_delay",
                message=(
                    f"We're sorry: your order {order.order_id} will not arrive by "
                    f"{order.promised_delivery:%d %B} as promised ({reason}). We're on it."
                ),
                details={"reason": reason, "carrier": order.carrier},
                created_at=now,
            )
            db.add(notice)
            db.flush()
            jobs.enqueue(db, kind="orders.send_notice", payload={"notice_id": notice.id})
        flagged.append(order.order_id)
    db.commit()
    return flagged


def send_notice(db: Session, *, notice_id: int) -> bool:
    """Mark a queued notice as sent (delivery channels plug in here). Safe to run twice. A
    notice whose customer may no longer be contacted (erased since it was queued) is
    dropped, not sent."""
    notice = db.get(CustomerNotice, notice_id)
    if notice is None or notice.sent_at is not None:
        return False
    if notice.customer_id is not None and not customers.may_contact(
        db, customer_id=notice.customer_id, purpose=customers.SERVICE
    ):
        db.delete(notice)
        db.commit()
        return False
    notice.sent_at = clock.now()
    db.commit()
    return True


def notices_for(db: Session, *, order_id: str) -> list[CustomerNotice]:
    return list(
        db.scalars(
            select(CustomerNotice)
            .where(CustomerNotice.order_id == order_id)
            .order_by(CustomerNotice.id)
        )
    )


@dataclass(frozen=True)
class PromiseKept:
    key: str
    due: int
    on_time: int

    @property
    def share(self) -> float:
        return self.on_time / self.due if self.due else 0.0


def promise_kept(db: Session, *, by: str, since: date | None = None) -> list[PromiseKept]:
    """On-time share of shipped orders whose promised date has come, by channel, store or
    carrier. Delivered after the promise, failed, or still out past the promise: not kept."""
    column = {"channel": Order.channel, "store": Order.store_id, "carrier": Order.carrier}.get(by)
    if column is None:
        raise InvalidInput("Group by channel, store or carrier", field="by")
    today = clock.now().date()
    query = select(column, Order.promised_delivery, Order.delivered_at, Order.status).where(
        Order.fulfilment == "ship", Order.promised_delivery <= today
    )
    if since is not None:
        query = query.where(Order.promised_delivery >= since)
    due: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for key, promised, delivered_at, status in db.execute(query):
        name = key or "unknown"
        due[name] += 1
        on_time = (
            promised is not None and delivered_at is not None and delivered_at.date() <= promised
        )
        if on_time and status != "failed":
            kept[name] += 1
    return [PromiseKept(key=k, due=due[k], on_time=kept[k]) for k in sorted(due)]


def late_deliveries(db: Session, *, limit: int = 100) -> list[Order]:
    """Orders flagged late, most recent first."""
    return list(
        db.scalars(
            select(Order)
            .where(Order.late_notified_at.is_not(None))
            .order_by(Order.late_notified_at.desc())
            .limit(limit)
        )
    )


# ------------------------------------------------------------------------------------ returns


@dataclass(frozen=True)
class RecordedReturn:
    return_id: str
    order_id: str
    refund_minor: int
    lines: list[ReturnLine]


def record_return(
    db: Session,
    *,
    order_id: str,
    request: ReturnIn,
    before_commit: Callable[[Session, RecordedReturn], None] | None = None,
) -> RecordedReturn:
    """Units brought back: the refund is each line's paid amount per unit, less its share of
    any order discount. Lines marked ``restock`` go back into the stock of ``store_id`` (by
    default the order's own location) in the same transaction. Logs ``order_returned``
    with the lines."""
    order = _require(db, order_id)
    lines = {line.sku: line for line in get_lines(db, order_id=order_id)}
    restock_at = request.store_id or order.store_id or "web"
    if any(item.restock for item in request.lines) and (
        catalog.get_store(db, store_id=restock_at) is None
    ):
        raise InvalidInput(f"Unknown store {restock_at!r} to restock", field="store_id")
    now = clock.now()
    returned_at = request.returned_at or now
    return_id = new_id("ret")
    recorded = []
    refund_total = 0
    for index, item in enumerate(request.lines):
        line = lines.get(item.sku)
        if line is None:
            raise InvalidInput(
                f"{item.sku!r} is not on order {order_id}", field=f"lines.{index}.sku"
            )
        if line.returned_quantity + item.quantity > line.quantity:
            left = line.quantity - line.returned_quantity
            raise InvalidInput(
                f"Only {left} of {item.sku} can still be returned",
                field=f"lines.{index}.quantity",
            )
        paid = line.total_minor * item.quantity // line.quantity
        discount_share = (
            order.discount_minor * paid // order.subtotal_minor if order.subtotal_minor else 0
        )
        refund = paid - discount_share
        line.returned_quantity += item.quantity
        refund_total += refund
        recorded.append(
            ReturnLine(
                return_id=return_id,
                order_id=order_id,
                line_no=line.line_no,
                sku=item.sku,
                quantity=item.quantity,
                reason=item.reason,
                refund_minor=refund,
                channel=request.channel,
                customer_id=order.customer_id,
                returned_at=returned_at,
                restocked_to=restock_at if item.restock else None,
            )
        )
    for returned in recorded:
        if returned.restocked_to is not None:
            catalog.return_to_stock(
                db, sku=returned.sku, store_id=returned.restocked_to, quantity=returned.quantity
            )
    db.add_all(recorded)
    append_event(
        db,
        type="order_returned",
        channel=request.channel,
        customer_id=order.customer_id,
        occurred_at=returned_at,
        properties={
            "order_id": order_id,
            "return_id": return_id,
            "refund_minor": refund_total,
            "lines": [
                {
                    "sku": r.sku,
                    "line_no": r.line_no,
                    "quantity": r.quantity,
                    "reason": r.reason,
                    "refund_minor": r.refund_minor,
                    "restocked_to": r.restocked_to,
                }
                for r in recorded
            ],
        },
    )
    result = RecordedReturn(
        return_id=return_id, order_id=order_id, refund_minor=refund_total, lines=recorded
    )
    db.flush()
    if before_commit is not None:
        before_commit(db, result)
    db.commit()
    return result


# ------------------------------------------------------------------------ charged prices


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
    charged_unit_minor: int
    channel_unit_minor: int
    difference_minor: int  # (charged - channel price) x quantity: positive is overcharged
    basis: str  # "channel rule" (with its reason) or "catalogue price (current)"
    reason: str | None


@dataclass(frozen=True)
class ChargedPriceReport:
    since: datetime
    until: datetime
    lines_checked: int
    differences: list[ChargedDifference]
    overcharged_minor: int
    undercharged_minor: int
    truncated: bool


def charged_price_report(
    db: Session, *, since: datetime, until: datetime, limit: int = 500
) -> ChargedPriceReport:
    """What orders placed in [since, until) were charged per unit (before discounts, which
    are shown as such), against the channel's price at the moment of the order: the price
    rule for that channel (or store) live then, else the catalogue price. The catalogue
    keeps no history of its own prices, so that fallback is today's catalogue price.
    Cancelled orders are left out; the ``limit`` largest differences are listed."""
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
        )
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(Order.placed_at >= since, Order.placed_at < until, Order.status != "cancelled")
    ).all()
    skus = sorted({str(row.sku) for row in rows})
    products = catalog.get_products(db, skus=skus)
    rules = catalog.channel_prices(db, skus=skus)
    differences = []
    for row in rows:
        product = products.get(row.sku)
        if product is None:
            continue  # a product since removed from the catalogue: nothing to compare with
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
        differences.append(
            ChargedDifference(
                order_id=row.order_id,
                line_no=row.line_no,
                sku=row.sku,
                channel=row.channel,
                store_id=row.store_id,
                placed_at=placed_at,
                quantity=row.quantity,
                charged_unit_minor=row.unit_price_minor,
                channel_unit_minor=price,
                difference_minor=(row.unit_price_minor - price) * row.quantity,
                basis="channel rule" if rule is not None else "catalogue price (current)",
                reason=rule.reason if rule is not None else None,
            )
        )
    differences.sort(key=lambda d: (-abs(d.difference_minor), d.order_id, d.line_no))
    return ChargedPriceReport(
        since=since,
        until=until,
        lines_checked=len(rows),
        differences=differences[:limit],
        overcharged_minor=sum(d.difference_minor for d in differences if d.difference_minor > 0),
        undercharged_minor=-sum(d.difference_minor for d in differences if d.difference_minor < 0),
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


def count_orders(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Order)) or 0


# ------------------------------------------------------------------------------ bulk import


@dataclass(frozen=True)
class ImportedLine:
    sku: str
    quantity: int
    unit_price_minor: int
    category: str | None = None


@dataclass(frozen=True)
class ImportedReturn:
    sku: str
    quantity: int
    reason: str
    returned_at: datetime
    channel: str


@dataclass(frozen=True)
class ImportedOrder:
    """An order from history (demo generator, transaction files). Totals are the lines'."""

    order_id: str
    customer_external_id: str | None
    channel: str
    fulfilment: str
    store_id: str | None
    placed_at: datetime
    currency: str
    lines: list[ImportedLine]
    promised_delivery: date | None = None
    delivered_at: datetime | None = None
    carrier: str | None = None
    returns: list[ImportedReturn] = field(default_factory=list)


def import_orders(db: Session, *, orders: Sequence[ImportedOrder], source: str = "import") -> int:
    """Bulk-load historical orders with their lines and returns, logging ``order_placed``,
    delivery outcomes and ``order_returned`` at their historical times. Orders already present
    are skipped, so re-running an import adds nothing. Returns how many were added."""
    if not orders:
        return 0
    existing = set(
        db.scalars(select(Order.order_id).where(Order.order_id.in_([o.order_id for o in orders])))
    )
    fresh = [o for o in orders if o.order_id not in existing]
    externals = {o.customer_external_id for o in fresh if o.customer_external_id}
    resolved = customers.customer_ids_by_external_id(db, external_ids=externals)
    # An erased person's orders in an old export are loaded without them (totals stay true).
    unknown = externals - resolved.keys()
    for external_id in unknown - customers.erased_values(db, kind="external_id", values=unknown):
        created = customers.resolve_identities(
            db, identities={"external_id": external_id}, source=source
        )
        resolved[external_id] = created.customer_id
    now = clock.now()
    order_rows, line_rows, return_rows = [], [], []
    for o in fresh:
        customer_id = resolved.get(o.customer_external_id or "")
        subtotal = sum(line.quantity * line.unit_price_minor for line in o.lines)
        # Without a delivery date a shipped order failed only if it had a promise to keep;
        # sources that record no deliveries at all (Online Retail, CDNOW) count as delivered.
        undelivered = "failed" if o.promised_delivery is not None else "delivered"
        status = {
            "ship": "delivered" if o.delivered_at else undelivered,
            "pickup_in_store": "collected",
            "in_store": "completed",
        }[o.fulfilment]
        # A historical delivery that broke its promise was flagged back then, the day after.
        late_at = None
        if (
            o.fulfilment == "ship"
            and o.promised_delivery is not None
            and (o.delivered_at is None or o.delivered_at.date() > o.promised_delivery)
        ):
            late_at = datetime.combine(o.promised_delivery + timedelta(days=1), time(8), tzinfo=UTC)
            append_event(
                db,
                type="delivery_late",
                channel=o.channel,
                customer_id=customer_id,
                occurred_at=late_at,
                event_id=f"{source}-{o.order_id}-late",
                source=source,
                properties={
                    "order_id": o.order_id,
                    "promised_delivery": str(o.promised_delivery),
                    "reason": "promised date passed" if o.delivered_at else "delivery failed",
                },
            )
        order_rows.append(
            {
                "order_id": o.order_id,
                "customer_id": customer_id,
                "channel": o.channel,
                "fulfilment": o.fulfilment,
                "store_id": o.store_id,
                "status": status,
                "currency": o.currency,
                "subtotal_minor": subtotal,
                "discount_minor": 0,
                "shipping_minor": 0,
                "total_minor": subtotal,
                "placed_at": o.placed_at,
                "promised_delivery": o.promised_delivery,
                "delivered_at": o.delivered_at,
                "carrier": o.carrier,
                "pickup_code": None,
                "late_notified_at": late_at,
                "source": source,
                "created_at": now,
                "updated_at": now,
            }
        )
        returned: Counter[str] = Counter()
        for r in o.returns:
            returned[r.sku] += r.quantity
        line_no_of: dict[str, int] = {}
        for index, line in enumerate(o.lines, start=1):
            line_no_of.setdefault(line.sku, index)
            line_rows.append(
                {
                    "order_id": o.order_id,
                    "line_no": index,
                    "sku": line.sku,
                    "category": line.category,
                    "quantity": line.quantity,
                    "unit_price_minor": line.unit_price_minor,
                    "discount_minor": 0,
                    "total_minor": line.quantity * line.unit_price_minor,
                    "returned_quantity": min(returned.pop(line.sku, 0), line.quantity),
                }
            )
        unit_price = {line.sku: line.unit_price_minor for line in o.lines}
        return_id = f"ret-{o.order_id}"
        for r in o.returns:
            if r.sku in line_no_of:
                return_rows.append(
                    {
                        "return_id": return_id,
                        "order_id": o.order_id,
                        "line_no": line_no_of[r.sku],
                        "sku": r.sku,
                        "quantity": r.quantity,
                        "reason": r.reason,
                        "refund_minor": r.quantity * unit_price[r.sku],
                        "channel": r.channel,
                        "customer_id": customer_id,
                        "returned_at": r.returned_at,
                    }
                )
        append_event(
            db,
            type="order_placed",
            channel=o.channel,
            customer_id=customer_id,
            occurred_at=o.placed_at,
            event_id=f"{source}-{o.order_id}-placed",
            source=source,
            properties={
                "order_id": o.order_id,
                "total_minor": subtotal,
                "currency": o.currency,
                "store_id": o.store_id,
                "fulfilment": o.fulfilment,
                "discount_minor": 0,
                "shipping_minor": 0,
                "lines": [
                    {
                        "line_no": line_no,
                        "sku": line.sku,
                        "category": line.category,
                        "quantity": line.quantity,
                        "unit_price_minor": line.unit_price_minor,
                    }
                    for line_no, line in enumerate(o.lines, start=1)
                ],
            },
        )
        if o.returns:
            append_event(
                db,
                type="order_returned",
                channel=o.returns[0].channel,
                customer_id=customer_id,
                occurred_at=max(r.returned_at for r in o.returns),
                event_id=f"{source}-{o.order_id}-returned",
                source=source,
                properties={
                    "order_id": o.order_id,
                    "return_id": return_id,
                    "refund_minor": sum(
                        row["refund_minor"] for row in return_rows if row["order_id"] == o.order_id
                    ),
                    "lines": [
                        {
                            "sku": r.sku,
                            "line_no": line_no_of.get(r.sku),
                            "quantity": r.quantity,
                            "reason": r.reason,
                        }
                        for r in o.returns
                    ],
                },
            )
    upsert_rows(db, Order.__table__, order_rows, key_columns=["order_id"])
    upsert_rows(db, OrderLine.__table__, line_rows, key_columns=["order_id", "line_no"])
    if return_rows:
        db.execute(insert(ReturnLine), return_rows)
    db.commit()
    return len(fresh)


# ------------------------------------------------------------------------------ aggregates


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


# ------------------------------------------------------------------------------ privacy
# The orders domain's part of export and erasure (rapport.flows.privacy). Orders hold no
# names or addresses (the customer is named by the random customer id only); what free text
# they carry is the status notes staff and carriers write ("left with a neighbour, …").

PRIVACY_TABLES = ("orders", "return_lines", "customer_notices")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's orders with their lines, payments, status history and returns, and the
    notices sent about them."""
    ids = list(subject.customer_ids)
    placed = list(
        db.scalars(select(Order).where(Order.customer_id.in_(ids)).order_by(Order.placed_at))
    )
    order_ids = [o.order_id for o in placed]
    by_order: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"lines": [], "payments": [], "status_history": [], "returns": []}
    )
    for line in db.scalars(
        select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.line_no)
    ):
        by_order[line.order_id]["lines"].append(
            {
                "sku": line.sku,
                "category": line.category,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "total_minor": line.total_minor,
                "returned_quantity": line.returned_quantity,
            }
        )
    for payment in db.scalars(select(OrderPayment).where(OrderPayment.order_id.in_(order_ids))):
        by_order[payment.order_id]["payments"].append(
            {"method": payment.method, "amount_minor": payment.amount_minor}
        )
    for change in db.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.order_id.in_(order_ids))
        .order_by(OrderStatusChange.id)
    ):
        by_order[change.order_id]["status_history"].append(
            {"status": change.status, "note": change.note, "at": _iso(change.at)}
        )
    for returned in db.scalars(select(ReturnLine).where(ReturnLine.order_id.in_(order_ids))):
        by_order[returned.order_id]["returns"].append(
            {
                "sku": returned.sku,
                "quantity": returned.quantity,
                "reason": returned.reason,
                "refund_minor": returned.refund_minor,
                "channel": returned.channel,
                "returned_at": _iso(returned.returned_at),
            }
        )
    return {
        "orders": [
            {
                "order_id": o.order_id,
                "channel": o.channel,
                "fulfilment": o.fulfilment,
                "store_id": o.store_id,
                "status": o.status,
                "currency": o.currency,
                "total_minor": o.total_minor,
                "placed_at": _iso(o.placed_at),
                "promised_delivery": _iso(o.promised_delivery),
                "delivered_at": _iso(o.delivered_at),
                "carrier": o.carrier,
                "pickup_code": o.pickup_code,
                **by_order[o.order_id],
            }
            for o in placed
        ],
        "order_notices": [
            {
                "order_id": n.order_id,
                "kind": n.kind,
                "message": n.message,
                "created_at": _iso(n.created_at),
                "sent_at": _iso(n.sent_at),
            }
            for n in db.scalars(
                select(CustomerNotice)
                .where(CustomerNotice.customer_id.in_(ids))
                .order_by(CustomerNotice.id)
            )
        ],
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Orders, lines, payments and returns stay under the random customer id (revenue,
    returns and kept-promise reports add up); the free-text status notes of the person's
    orders go."""
    mine = select(Order.order_id).where(Order.customer_id.in_(subject.customer_ids))
    db.execute(
        update(OrderStatusChange)
        .where(OrderStatusChange.order_id.in_(mine), OrderStatusChange.note.is_not(None))
        .values(note=None)
    )
