"""The person's data in the campaigns tables, for export and erasure.

Erasure deletes what says something about the person (their inbox, suppressions, segment
memberships, with each segment's ``member_count`` going down by them, each delivery's
history, webhook tries and per-occasion values) and keeps the delivery rows themselves under
the random customer id, emptied, like orders: a campaign's results still count the person
once, and a campaign that runs again after the erasure finds the row and sends nothing (the
contact gate refuses an erased profile anyway).
"""

from __future__ import annotations

from collections import defaultdict
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
from rapport.platform.privacy import ExportedColumns, PrivacySubject

# How the export shows each table's rows: every column exported or left out saying why (see
# ``ExportedColumns``; a test holds every column of PRIVACY_TABLES to one or the other).
_THEIR_ID = "the person's own customer id: the document's customer_id (or a profile merged into it)"
_DELIVERY = "the message's row number, internal to Rapport: the row is under its message"
EXPORTED_COLUMNS = {
    e.table: e
    for e in (
        ExportedColumns(
            "campaign_deliveries",
            (
                "campaign_id",
                "channel",
                "occasion",
                "grp",
                "status",
                "reason",
                "context",
                "attempts",
                "next_attempt_at",
                "queued_at",
                "sent_at",
                "updated_at",
            ),
            left_out={
                "id": "the message's row number, internal to Rapport",
                "customer_id": _THEIR_ID,
                "recipient_key": "the customer id again (a staff address for staff messages)",
                "claimed_by": "the worker sending it at the moment, internal to Rapport",
            },
            renamed={"grp": "group"},
        ),
        ExportedColumns(
            "campaign_delivery_history",
            ("status", "reason", "at"),
            left_out={"id": "the row number, internal to Rapport", "delivery_id": _DELIVERY},
        ),
        ExportedColumns(
            "campaign_webhook_attempts",
            ("endpoint_id", "attempt", "status_code", "error", "duration_ms", "at"),
            left_out={"id": "the row number, internal to Rapport", "delivery_id": _DELIVERY},
        ),
        ExportedColumns(
            "campaign_inbox",
            ("subject", "body", "created_at", "read_at"),
            left_out={
                "id": "the inbox message's row number, internal to Rapport",
                "customer_id": _THEIR_ID,
                "delivery_id": "the message it came with, internal to Rapport (under messages)",
            },
        ),
        ExportedColumns(
            "campaign_suppressions",
            ("channel", "reason", "at"),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "campaign_segment_members",
            ("segment_id", "added_at"),
            left_out={"customer_id": _THEIR_ID},
        ),
    )
}


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The messages sent or queued for the person (each with its context, status history
    and webhook tries), their inbox, channel suppressions and segment memberships: every
    column of every table that is about them but those ``EXPORTED_COLUMNS`` leaves out."""
    ids = list(subject.customer_ids)
    shown = EXPORTED_COLUMNS
    deliveries = list(
        db.scalars(select(Delivery).where(Delivery.customer_id.in_(ids)).order_by(Delivery.id))
    )
    theirs = [d.id for d in deliveries]
    history: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for change in db.scalars(
        select(DeliveryStatus)
        .where(DeliveryStatus.delivery_id.in_(theirs))
        .order_by(DeliveryStatus.id)
    ):
        history[change.delivery_id].append(shown["campaign_delivery_history"].row(change))
    tries: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for attempt in db.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(theirs))
        .order_by(WebhookAttempt.id)
    ):
        tries[attempt.delivery_id].append(shown["campaign_webhook_attempts"].row(attempt))
    return {
        "messages": [
            {
                **shown["campaign_deliveries"].row(d),
                "history": history[d.id],
                "webhook_tries": tries[d.id],
            }
            for d in deliveries
        ],
        "inbox": [
            shown["campaign_inbox"].row(m)
            for m in db.scalars(
                select(InboxMessage)
                .where(InboxMessage.customer_id.in_(ids))
                .order_by(InboxMessage.id)
            )
        ],
        "suppressions": [
            shown["campaign_suppressions"].row(s)
            for s in db.scalars(
                select(Suppression).where(Suppression.customer_id.in_(ids)).order_by(Suppression.at)
            )
        ],
        "segments": [
            shown["campaign_segment_members"].row(m)
            for m in db.scalars(
                select(SegmentMember)
                .where(SegmentMember.customer_id.in_(ids))
                .order_by(SegmentMember.segment_id)
            )
        ],
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
