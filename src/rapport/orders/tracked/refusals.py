"""Tracked orders and returns that could not be applied: kept with their reason for the
operator (``GET /v1/orders/tracked/refusals``), counted in ``/metrics``
(``rapport_tracked_orders_total{outcome, reason}``), and part of a person's export and
erasure (they name the person as the sender did)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from rapport.events.service import LoggedEvent
from rapport.orders.models import TrackedOrderRefusal
from rapport.orders.tracked.mapping import Refusal
from rapport.platform import clock
from rapport.platform.middleware import METRICS
from rapport.platform.privacy import PrivacySubject

TRACKED = Counter(
    "rapport_tracked_orders",
    "Tracked e-commerce events (Order Completed, Order Refunded) by what became of them:"
    " placed, returned or refused (with the refusal's reason).",
    ["outcome", "reason"],
    registry=METRICS,
)

MAX_PAGE = 200


def count(outcome: str, reason: str = "") -> None:
    """Count one applied or refused message. Counted when handled: a batch replayed after a
    crash counts again, the table does not."""
    TRACKED.labels(outcome, reason).inc()


def record_refusal(
    db: Session,
    event: LoggedEvent,
    refusal: Refusal,
    *,
    order_id: str | None,
    customer_id: str | None,
) -> None:
    """Keep the refusal in the processor's transaction (one row per event: a replayed batch
    finds it there and adds nothing)."""
    exists = db.scalar(
        select(TrackedOrderRefusal.id).where(TrackedOrderRefusal.event_position == event.position)
    )
    if exists is not None:
        return
    erased = refusal.reason == "customer_erased"
    db.add(
        TrackedOrderRefusal(
            event_position=event.position,
            event_id=event.event_id[:100],
            event_type=event.type,
            order_id=order_id[:100] if order_id else None,
            reason=refusal.reason,
            field=refusal.field[:200],
            message=refusal.message[:500],
            # Nothing that names an erased person is kept.
            customer_ref=None if erased else (event.user_id or event.anonymous_id),
            customer_id=None if erased else customer_id,
            occurred_at=event.occurred_at,
            recorded_at=clock.now(),
        )
    )
    db.flush()
    count("refused", refusal.reason)


@dataclass(frozen=True)
class RefusalPage:
    refusals: list[TrackedOrderRefusal]
    counts: dict[str, int]
    next_before: int | None


def list_refusals(
    db: Session, *, reason: str | None = None, before: int | None = None, limit: int = 50
) -> RefusalPage:
    """The newest refusals first (``before``: the ``next_before`` of the previous page), and
    how many of each reason are kept in all."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(TrackedOrderRefusal).order_by(TrackedOrderRefusal.id.desc()).limit(limit + 1)
    if reason is not None:
        query = query.where(TrackedOrderRefusal.reason == reason)
    if before is not None:
        query = query.where(TrackedOrderRefusal.id < before)
    rows = list(db.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    counts = {
        str(found_reason): int(number)
        for found_reason, number in db.execute(
            select(TrackedOrderRefusal.reason, func.count())
            .group_by(TrackedOrderRefusal.reason)
            .order_by(TrackedOrderRefusal.reason)
        )
    }
    return RefusalPage(
        refusals=rows, counts=counts, next_before=rows[-1].id if more and rows else None
    )


def _naming(subject: PrivacySubject) -> Any:
    references: Sequence[str] = [
        *subject.customer_ids,
        *subject.identity_values("external_id"),
        *subject.identity_values("anonymous_id"),
    ]
    return or_(
        TrackedOrderRefusal.customer_id.in_(subject.customer_ids),
        TrackedOrderRefusal.customer_ref.in_(references),
    )


def export_refusals(db: Session, *, subject: PrivacySubject) -> list[dict[str, Any]]:
    """The person's refused tracked orders, oldest first."""
    return [
        {
            "event_id": row.event_id,
            "event_type": row.event_type,
            "order_id": row.order_id,
            "reason": row.reason,
            "message": row.message,
            "occurred_at": _iso(row.occurred_at),
        }
        for row in db.scalars(
            select(TrackedOrderRefusal).where(_naming(subject)).order_by(TrackedOrderRefusal.id)
        )
    ]


def erase_refusals(db: Session, *, subject: PrivacySubject) -> None:
    """The person's refused tracked orders go (they are kept for the operator, not counted in
    any report)."""
    db.execute(delete(TrackedOrderRefusal).where(_naming(subject)))


def _iso(value: datetime) -> str:
    return value.isoformat()
