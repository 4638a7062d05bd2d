"""Orders from history (transaction files, the demo retailer): bulk-loaded with their lines,
delivery outcomes and returns, their events logged at their historical times."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.orders import events as order_events
from rapport.orders.models import (
    Order,
    OrderLine,
    ReturnLine,
)
from rapport.orders.pickups import deadline_for
from rapport.orders.placing import offset_minutes
from rapport.platform import clock
from rapport.platform.db import upsert_rows


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
    are skipped, so re-running an import adds nothing. Returns how many were added. The
    callers check that these times have passed (the transaction importer refuses a later one
    naming its line; the demo's last day is before today); tests stage orders to come."""
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
                order_events.DeliveryLate(
                    order_id=o.order_id,
                    promised_delivery=str(o.promised_delivery),
                    reason="promised date passed" if o.delivered_at else "delivery failed",
                    failed=o.delivered_at is None,
                ),
                channel=o.channel,
                customer_id=customer_id,
                occurred_at=late_at,
                event_id=f"{source}-{o.order_id}-late",
                source=source,
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
                "placed_offset_minutes": offset_minutes(o.placed_at),
                # the deadline it had, as a live pick-up's (one function for both)
                "collect_by": (
                    deadline_for(o.placed_at, offset_minutes(o.placed_at))
                    if o.fulfilment == "pickup_in_store"
                    else None
                ),
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
        # History records no discounts and no points paid: the one shape logs them as 0.
        append_event(
            db,
            order_events.OrderPlaced(
                order_id=o.order_id,
                total_minor=subtotal,
                discount_minor=0,
                shipping_minor=0,
                points_payment_minor=0,
                currency=o.currency,
                store_id=o.store_id,
                fulfilment=o.fulfilment,
                lines=[
                    order_events.PlacedLine(
                        line_no=line_no,
                        sku=line.sku,
                        category=line.category,
                        quantity=line.quantity,
                        unit_price_minor=line.unit_price_minor,
                        discount_minor=0,
                    )
                    for line_no, line in enumerate(o.lines, start=1)
                ],
            ),
            channel=o.channel,
            customer_id=customer_id,
            occurred_at=o.placed_at,
            event_id=f"{source}-{o.order_id}-placed",
            source=source,
        )
        if o.returns:
            # History records no per-line refund or restocking: those fields stay None.
            append_event(
                db,
                order_events.OrderReturned(
                    order_id=o.order_id,
                    return_id=return_id,
                    refund_minor=sum(
                        row["refund_minor"] for row in return_rows if row["order_id"] == o.order_id
                    ),
                    currency=o.currency,
                    lines=[
                        order_events.ReturnedLine(
                            sku=r.sku,
                            line_no=line_no_of.get(r.sku),
                            quantity=r.quantity,
                            reason=r.reason,
                        )
                        for r in o.returns
                    ],
                ),
                channel=o.returns[0].channel,
                customer_id=customer_id,
                occurred_at=max(r.returned_at for r in o.returns),
                event_id=f"{source}-{o.order_id}-returned",
                source=source,
            )
    upsert_rows(db, Order.__table__, order_rows, key_columns=["order_id"])
    upsert_rows(db, OrderLine.__table__, line_rows, key_columns=["order_id", "line_no"])
    if return_rows:
        db.execute(insert(ReturnLine), return_rows)
    db.commit()
    return len(fresh)
