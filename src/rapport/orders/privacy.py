"""The orders domain's part of export and erasure (``rapport.flows.privacy``). Orders hold no
names or addresses (the customer is named by the random customer id only); what free text
they carry is the status notes staff and carriers write ("left with a neighbour, …")."""

from __future__ import annotations

from collections import defaultdict
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
from rapport.orders.tracked.outcomes import EXPORTED_REFUSALS, erase_refusals, export_refusals
from rapport.platform.privacy import ExportedColumns, PrivacySubject

PRIVACY_TABLES = (
    "orders",
    "return_lines",
    "customer_notices",
    "customer_values",
    "tracked_order_events",
)


# How the export shows each table's rows: every column exported or left out saying why (see
# ``ExportedColumns``; a test holds every column of PRIVACY_TABLES, and of the rows nested
# under an order, to one or the other).
_THEIR_ID = "the person's own customer id: the document's customer_id (or a profile merged into it)"
_NESTED = "the order's id: the row is under its order"
EXPORTED_COLUMNS = {
    e.table: e
    for e in (
        ExportedColumns(
            "orders",
            (
                "order_id",
                "channel",
                "fulfilment",
                "store_id",
                "status",
                "currency",
                "subtotal_minor",
                "discount_minor",
                "shipping_minor",
                "total_minor",
                "placed_at",
                "placed_offset_minutes",
                "promised_delivery",
                "delivered_at",
                "late_notified_at",
                "carrier",
                "pickup_code",
                "collect_by",
                "source",
                "created_at",
                "updated_at",
            ),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "order_lines",
            (
                "line_no",
                "sku",
                "category",
                "quantity",
                "unit_price_minor",
                "discount_minor",
                "total_minor",
                "returned_quantity",
            ),
            left_out={"order_id": _NESTED},
        ),
        ExportedColumns(
            "order_payments",
            ("method", "amount_minor"),
            left_out={"id": "the row number, internal to Rapport", "order_id": _NESTED},
        ),
        ExportedColumns(
            "order_status_changes",
            ("status", "note", "at"),
            left_out={"id": "the row number, internal to Rapport", "order_id": _NESTED},
        ),
        ExportedColumns(
            "return_lines",
            (
                "return_id",
                "line_no",
                "sku",
                "quantity",
                "reason",
                "refund_minor",
                "channel",
                "returned_at",
                "restocked_to",
            ),
            left_out={
                "id": "the row number, internal to Rapport",
                "order_id": _NESTED,
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "customer_notices",
            ("order_id", "kind", "message", "details", "created_at", "sent_at"),
            left_out={"id": "the row number, internal to Rapport", "customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "customer_values",
            (
                "customer_id",
                "frequency",
                "recency_days",
                "age_days",
                "monetary_minor",
                "expected_purchases_90d",
                "p_alive",
                "p_purchase_90d",
                "expected_spend_minor",
                "predicted_value_minor",
                "value_tier",
                "fitted_at",
            ),
        ),
        EXPORTED_REFUSALS,
    )
}


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's orders with their lines, payments, status history and returns, the
    notices sent about them, their predicted value and their tracked orders that were
    refused: every column of every table that is about them but those ``EXPORTED_COLUMNS``
    leaves out, saying why."""
    ids = list(subject.customer_ids)
    shown = EXPORTED_COLUMNS
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
        by_order[line.order_id]["lines"].append(shown["order_lines"].row(line))
    for payment in db.scalars(
        select(OrderPayment).where(OrderPayment.order_id.in_(order_ids)).order_by(OrderPayment.id)
    ):
        by_order[payment.order_id]["payments"].append(shown["order_payments"].row(payment))
    for change in db.scalars(
        select(OrderStatusChange)
        .where(OrderStatusChange.order_id.in_(order_ids))
        .order_by(OrderStatusChange.id)
    ):
        by_order[change.order_id]["status_history"].append(
            shown["order_status_changes"].row(change)
        )
    for returned in db.scalars(
        select(ReturnLine).where(ReturnLine.order_id.in_(order_ids)).order_by(ReturnLine.id)
    ):
        by_order[returned.order_id]["returns"].append(shown["return_lines"].row(returned))
    return {
        "orders": [{**shown["orders"].row(o), **by_order[o.order_id]} for o in placed],
        "order_notices": [
            shown["customer_notices"].row(n)
            for n in db.scalars(
                select(CustomerNotice)
                .where(CustomerNotice.customer_id.in_(ids))
                .order_by(CustomerNotice.id)
            )
        ],
        "customer_value": [
            shown["customer_values"].row(v)
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
