"""The person's data in the campaigns tables, for export and erasure.

Erasure deletes what says something about the person (their inbox, suppressions, segment
memberships, with each segment's ``member_count`` going down by them, each delivery's
history, webhook tries and per-occasion values) and keeps the delivery rows themselves under
the random customer id, emptied, like orders: a campaign's results still count the person
once, and a campaign that runs again after the erasure finds the row and sends nothing (the
contact gate refuses an erased profile anyway).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from rapport.campaigns.models import (
    Delivery,
    DeliveryStatus,
    InboxMessage,
    Segment,
    SegmentMember,
    Suppression,
    WebhookAttempt,
)
from rapport.platform.privacy import PrivacySubject


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    ids = list(subject.customer_ids)
    deliveries = list(
        db.scalars(select(Delivery).where(Delivery.customer_id.in_(ids)).order_by(Delivery.id))
    )
    return {
        "messages": [
            {
                "campaign_id": d.campaign_id,
                "channel": d.channel,
                "status": d.status,
                "reason": d.reason,
                "queued_at": d.queued_at.isoformat(),
                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
            }
            for d in deliveries
        ],
        "inbox": [
            {
                "subject": m.subject,
                "body": m.body,
                "created_at": m.created_at.isoformat(),
                "read_at": m.read_at.isoformat() if m.read_at else None,
            }
            for m in db.scalars(
                select(InboxMessage)
                .where(InboxMessage.customer_id.in_(ids))
                .order_by(InboxMessage.id)
            )
        ],
        "suppressions": [
            {"channel": s.channel, "reason": s.reason, "at": s.at.isoformat()}
            for s in db.scalars(select(Suppression).where(Suppression.customer_id.in_(ids)))
        ],
        "segments": sorted(
            db.scalars(select(SegmentMember.segment_id).where(SegmentMember.customer_id.in_(ids)))
        ),
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    ids = list(subject.customer_ids)
    theirs = select(Delivery.id).where(Delivery.customer_id.in_(ids))
    db.execute(delete(DeliveryStatus).where(DeliveryStatus.delivery_id.in_(theirs)))
    db.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(theirs)))
    db.execute(delete(InboxMessage).where(InboxMessage.customer_id.in_(ids)))
    db.execute(delete(Suppression).where(Suppression.customer_id.in_(ids)))
    _leave_segments(db, ids)
    db.execute(
        update(Delivery)
        .where(Delivery.customer_id.in_(ids))
        .values(context={}, reason="erased", claimed_by=None)
        .execution_options(synchronize_session=False)
    )


def _leave_segments(db: Session, ids: list[str]) -> None:
    """Delete the person's segment memberships, each segment's ``member_count`` going down
    by the members it lost (so the count matches the member list, and incremental refreshes
    after it count from the truth)."""
    lost = db.execute(
        select(SegmentMember.segment_id, func.count())
        .where(SegmentMember.customer_id.in_(ids))
        .group_by(SegmentMember.segment_id)
    ).all()
    db.execute(delete(SegmentMember).where(SegmentMember.customer_id.in_(ids)))
    for segment_id, count in lost:
        db.execute(
            update(Segment)
            .where(Segment.id == segment_id)
            .values(
                member_count=case(
                    (Segment.member_count > count, Segment.member_count - count), else_=0
                )
            )
            .execution_options(synchronize_session="fetch")
        )
