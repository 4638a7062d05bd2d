"""The deliveries log: deliveries filtered by campaign, status, channel, customer and date
(newest first, keyset pages), and one delivery with its status history and webhook tries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import WAITING
from rapport.campaigns.models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    InboxMessage,
    WebhookAttempt,
)


@dataclass(frozen=True)
class DeliveryFilters:
    campaign_id: int | None = None
    status: str | None = None
    channel: str | None = None
    customer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[Delivery]
    next_before: int | None


def find_deliveries(
    db: Session, *, filters: DeliveryFilters, before: int | None = None, limit: int = 50
) -> DeliveryPage:
    limit = max(1, min(limit, 200))
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit + 1)
    if filters.campaign_id is not None:
        query = query.where(Delivery.campaign_id == filters.campaign_id)
    if filters.status:
        query = query.where(Delivery.status == filters.status)
    if filters.channel:
        query = query.where(Delivery.channel == filters.channel)
    if filters.customer_id:
        query = query.where(Delivery.customer_id == filters.customer_id)
    if filters.since is not None:
        query = query.where(Delivery.queued_at >= filters.since)
    if filters.until is not None:
        query = query.where(Delivery.queued_at < filters.until)
    if before is not None:
        query = query.where(Delivery.id < before)
    rows = list(db.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(rows, rows[-1].id if more and rows else None)


def delivery_out(row: Delivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "campaign_id": row.campaign_id,
        "customer_id": row.customer_id,
        "recipient": row.recipient_key,
        "occasion": row.occasion,
        "group": row.grp,
        "channel": row.channel,
        "status": row.status,
        "reason": row.reason,
        "attempts": row.attempts,
        # Only a delivery still to be tried (or whose claim a dispatcher holds) has one.
        "next_attempt_at": row.next_attempt_at.isoformat()
        if row.next_attempt_at and row.status in WAITING
        else None,
        "queued_at": row.queued_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def delivery_history(db: Session, *, delivery_id: int) -> list[DeliveryStatus]:
    return list(
        db.scalars(
            select(DeliveryStatus)
            .where(DeliveryStatus.delivery_id == delivery_id)
            .order_by(DeliveryStatus.id)
            .limit(500)
        )
    )


def delivery_attempts(db: Session, *, delivery_id: int) -> list[WebhookAttempt]:
    return list(
        db.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
            .limit(100)
        )
    )


def delivery_detail(db: Session, *, delivery_id: int) -> dict[str, Any] | None:
    row = db.get(Delivery, delivery_id)
    if row is None:
        return None
    campaign = db.get(Campaign, row.campaign_id)
    return {
        **delivery_out(row),
        "campaign_name": campaign.name if campaign else None,
        "history": [
            {"status": h.status, "reason": h.reason, "at": h.at.isoformat()}
            for h in delivery_history(db, delivery_id=delivery_id)
        ],
        "webhook_attempts": [
            {
                "attempt": a.attempt,
                "status_code": a.status_code,
                "error": a.error,
                "duration_ms": a.duration_ms,
                "at": a.at.isoformat(),
            }
            for a in delivery_attempts(db, delivery_id=delivery_id)
        ],
    }


@dataclass(frozen=True)
class CustomerDelivery:
    """A message to a customer as their 360 page shows it."""

    delivery: Delivery
    campaign_name: str
    read_at: datetime | None  # in-app inbox messages only (email opens are not tracked)


def customer_deliveries(
    db: Session, *, customer_id: str, offset: int = 0, limit: int = 20
) -> tuple[int, list[CustomerDelivery]]:
    """How many messages a customer was sent or held from, and a page of them, newest
    first by the time the panel shows (when it was sent, else when it was queued), with
    their campaign's name and when an inbox message was read."""
    total = int(
        db.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.customer_id == customer_id)
        )
        or 0
    )
    rows = db.execute(
        select(Delivery, Campaign.name, InboxMessage.read_at)
        .join(Campaign, Campaign.id == Delivery.campaign_id, isouter=True)
        .join(InboxMessage, InboxMessage.delivery_id == Delivery.id, isouter=True)
        .where(Delivery.customer_id == customer_id)
        .order_by(func.coalesce(Delivery.sent_at, Delivery.queued_at).desc(), Delivery.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [
        CustomerDelivery(delivery, str(name or f"Campaign {delivery.campaign_id}"), read_at)
        for delivery, name, read_at in rows
    ]
