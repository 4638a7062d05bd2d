"""The orders domain's part of export and erasure (``rapport.flows.privacy``). Orders hold no
names or addresses (the customer is named by the random customer id only); what free text
they carry is the status notes staff and carriers write ("left with a neighbour, …")."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rapport.orders.models import (
    CustomerNotice,
    CustomerValueScore,
    Order,
    OrderLine,
    OrderPayment,
    OrderStatusChange,
    ReturnLine,
)
from rapport.orders.tracked.outcomes import erase_refusals, export_refusals
from rapport.platform.privacy import PrivacySubject

PRIVACY_TABLES = (
    "orders",
    "return_lines",
    "customer_notices",
    "customer_values",
    "tracked_order_events",
)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's orders with their lines, payments, status history and returns, the
    notices sent about them, and their tracked orders that were refused."""
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
        "customer_value": [
            {
                "customer_id": v.customer_id,
                "frequency": v.frequency,
                "recency_days": v.recency_days,
                "age_days": v.age_days,
                "monetary_minor": v.monetary_minor,
                "expected_purchases_90d": v.expected_purchases_90d,
                "p_alive": v.p_alive,
                "p_purchase_90d": v.p_purchase_90d,
                "expected_spend_minor": v.expected_spend_minor,
                "predicted_value_minor": v.predicted_value_minor,
                "value_tier": v.value_tier,
                "fitted_at": _iso(v.fitted_at),
            }
            for v in db.scalars(
                select(CustomerValueScore)
                .where(CustomerValueScore.customer_id.in_(ids))
                .order_by(CustomerValueScore.customer_id)
            )
        ],
        "tracked_order_refusals": export_refusals(db, subject=subject),
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Orders, lines, payments and returns stay under the random customer id (revenue,
    returns and kept-promise reports add up); the free-text status notes of the person's
    orders go, and so does their predicted value (the next fit leaves erased people out), and
    their refused tracked orders (which name them as the shop did)."""
    erase_refusals(db, subject=subject)
    db.execute(
        delete(CustomerValueScore).where(CustomerValueScore.customer_id.in_(subject.customer_ids))
    )
    mine = select(Order.order_id).where(Order.customer_id.in_(subject.customer_ids))
    db.execute(
        update(OrderStatusChange)
        .where(OrderStatusChange.order_id.in_(mine), OrderStatusChange.note.is_not(None))
        .values(note=None)
    )
