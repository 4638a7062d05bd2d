"""What became of each tracked order and refund: one row per handled event
(``tracked_order_events``), so an event handled again (a replayed batch, a processor cursor
moved back) is passed over; the refusals among them listed for the operator
(``GET /v1/orders/tracked/refusals``), counted in ``/metrics``
(``rapport_tracked_orders_total{outcome, reason}``) and part of a person's export and erasure
(a refusal names the person as the sender did)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from prometheus_client import Counter
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from rapport.events.service import LoggedEvent, event_ids_at
from rapport.orders.models import Order, TrackedOrderEvent
from rapport.orders.tracked.mapping import Refusal
from rapport.platform import clock
from rapport.platform.ids import new_id
from rapport.platform.middleware import METRICS
from rapport.platform.privacy import ExportedColumns, PrivacySubject

TRACKED = Counter(
    "rapport_tracked_orders",
    "Tracked e-commerce events (Order Completed, Order Refunded) by what became of them:"
    " placed, returned or refused (with the refusal's reason).",
    ["outcome", "reason"],
    registry=METRICS,
)

MAX_PAGE = 200
Outcome = Literal["placed", "returned", "cancelled", "refused"]


def handled_positions(db: Session, positions: Iterable[int]) -> set[int]:
    """Which of these log positions were handled already (one query per batch)."""
    wanted = list(positions)
    if not wanted:
        return set()
    return set(
        db.scalars(
            select(TrackedOrderEvent.event_position).where(
                TrackedOrderEvent.event_position.in_(wanted)
            )
        )
    )


def record_outcome(
    db: Session,
    event: LoggedEvent,
    outcome: Outcome,
    *,
    order_id: str | None,
    return_id: str | None = None,
    refusal: Refusal | None = None,
    customer_id: str | None = None,
) -> None:
    """Keep what became of ``event``, in the processor's transaction, and count it (counted
    when handled: a batch replayed after a crash counts again, the table does not)."""
    # Nothing that names an erased person is kept; an applied event names nobody (its order
    # or return does, under the customer id).
    named = refusal is not None and refusal.reason != "customer_erased"
    db.add(
        TrackedOrderEvent(
            event_position=event.position,
            event_id=event.event_id[:100],
            event_type=event.type,
            order_id=order_id[:100] if order_id else None,
            outcome=outcome,
            return_id=return_id,
            reason=refusal.reason if refusal else None,
            field=refusal.field[:200] if refusal else None,
            message=refusal.message[:500] if refusal else None,
            customer_ref=(event.user_id or event.anonymous_id) if named else None,
            # Rapport's id when known (the shop's own number is customer_ref).
            customer_id=customer_id if named and _rapport_id(customer_id) else None,
            occurred_at=event.occurred_at,
            recorded_at=clock.now(),
        )
    )
    db.flush()
    TRACKED.labels(outcome, refusal.reason if refusal else "").inc()


@dataclass(frozen=True)
class RefusalPage:
    refusals: list[TrackedOrderEvent]
    counts: dict[str, int]
    next_before: int | None


def list_refusals(
    db: Session, *, reason: str | None = None, before: int | None = None, limit: int = 50
) -> RefusalPage:
    """The newest refusals first (``before``: the ``next_before`` of the previous page), and
    how many of each reason are kept in all."""
    limit = max(1, min(limit, MAX_PAGE))
    refused = TrackedOrderEvent.outcome == "refused"
    query = (select(TrackedOrderEvent).where(refused).order_by(TrackedOrderEvent.id.desc())).limit(
        limit + 1
    )
    if reason is not None:
        query = query.where(TrackedOrderEvent.reason == reason)
    if before is not None:
        query = query.where(TrackedOrderEvent.id < before)
    rows = list(db.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    counts = {
        str(found_reason): int(number)
        for found_reason, number in db.execute(
            select(TrackedOrderEvent.reason, func.count())
            .where(refused)
            .group_by(TrackedOrderEvent.reason)
            .order_by(TrackedOrderEvent.reason)
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
        TrackedOrderEvent.customer_id.in_(subject.customer_ids),
        TrackedOrderEvent.customer_ref.in_(references),
    )


# How a person's export shows their refused tracked orders (a test holds every column to
# exported or left out, see ``ExportedColumns``).
EXPORTED_REFUSALS = ExportedColumns(
    "tracked_order_events",
    (
        "event_id",
        "event_type",
        "order_id",
        "outcome",
        "return_id",
        "reason",
        "field",
        "message",
        "customer_ref",
        "occurred_at",
        "recorded_at",
    ),
    left_out={
        "id": "the row number, internal to Rapport",
        "event_position": "the event's place in Rapport's log, internal to Rapport",
        "customer_id": "the person's own customer id: the document's customer_id",
    },
)


def export_refusals(db: Session, *, subject: PrivacySubject) -> list[dict[str, Any]]:
    """The person's refused tracked orders and refunds, oldest first."""
    return [
        EXPORTED_REFUSALS.row(row)
        for row in db.scalars(
            select(TrackedOrderEvent).where(_naming(subject)).order_by(TrackedOrderEvent.id)
        )
    ]


def erase_refusals(db: Session, *, subject: PrivacySubject) -> None:
    """The person's refused tracked orders go (kept for the operator, in no report). Applied
    ones name nobody and stay, so their events are still never applied twice; those of the
    person's orders take the id their event has in the log now (the events domain's erasure,
    which runs first, replaced a sender's id, which may spell the person out)."""
    db.execute(delete(TrackedOrderEvent).where(_naming(subject)))
    theirs = select(Order.order_id).where(Order.customer_id.in_(subject.customer_ids))
    applied = list(
        db.scalars(select(TrackedOrderEvent).where(TrackedOrderEvent.order_id.in_(theirs)))
    )
    now = event_ids_at(db, positions=[row.event_position for row in applied])
    for row in applied:
        row.event_id = now.get(row.event_position, new_id("evt"))[:100]


def _rapport_id(value: str | None) -> bool:
    return value is not None and value.startswith("cus_") and len(value) <= 40


def _iso(value: datetime) -> str:
    return value.isoformat()
