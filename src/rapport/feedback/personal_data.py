"""The feedback domain's part of privacy requests (``rapport.flows.privacy``): what it exports
of a person and how it erases them, keeping scores, ratings and ticket times."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.feedback.models import Invitation, Review, SurveyResponse, Ticket
from rapport.platform import clock
from rapport.platform.privacy import PrivacySubject

# Who "moderated" a held review that an erasure took out of the queue.
ERASURE_MODERATOR = "erasure"
PRIVACY_TABLES = (
    "feedback_invitations",
    "feedback_responses",
    "feedback_reviews",
    "feedback_tickets",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The person's survey invitations and answers (with comments), reviews and tickets."""
    ids = list(subject.customer_ids)
    return {
        "survey_invitations": [
            {
                "invitation_id": i.invitation_id,
                "survey_id": i.survey_id,
                "created_at": _iso(i.created_at),
                "expires_at": _iso(i.expires_at),
                "answered_at": _iso(i.answered_at),
            }
            for i in db.scalars(
                select(Invitation)
                .where(Invitation.customer_id.in_(ids))
                .order_by(Invitation.created_at)
            )
        ],
        "survey_responses": [
            {
                "survey_id": r.survey_id,
                "kind": r.kind,
                "score": r.score,
                "comment": r.comment,
                "answers": r.answers,
                "order_id": r.order_id,
                "answered_at": _iso(r.answered_at),
            }
            for r in db.scalars(
                select(SurveyResponse)
                .where(SurveyResponse.customer_id.in_(ids))
                .order_by(SurveyResponse.answered_at)
            )
        ],
        "reviews": [
            {
                "review_id": r.review_id,
                "sku": r.sku,
                "rating": r.rating,
                "title": r.title,
                "body": r.body,
                "photos": r.photos,
                "status": r.status,
                "created_at": _iso(r.created_at),
            }
            for r in db.scalars(
                select(Review).where(Review.customer_id.in_(ids)).order_by(Review.created_at)
            )
        ],
        "tickets": [
            {
                "ticket_id": t.ticket_id,
                "kind": t.kind,
                "channel": t.channel,
                "subject": t.subject,
                "body": t.body,
                "status": t.status,
                "opened_at": _iso(t.opened_at),
                "resolved_at": _iso(t.resolved_at),
                "resolution": t.resolution,
                "apology_points": t.apology_points,
            }
            for t in db.scalars(
                select(Ticket).where(Ticket.customer_id.in_(ids)).order_by(Ticket.opened_at)
            )
        ],
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Scores, ratings and ticket times stay under the random customer id (NPS, rating
    summaries and SLA reports add up); what the person wrote goes: survey comments and
    free-text answers, review titles, texts and photos (and the device and network digests
    kept for screening), ticket subjects, messages and resolutions. Unanswered survey links
    expire now. Reviews still held for moderation leave the queue as ``rejected`` (by
    ``erasure``): nothing is published under the person's id any more."""
    ids = list(subject.customer_ids)
    now = clock.now()
    db.execute(
        update(SurveyResponse)
        .where(SurveyResponse.customer_id.in_(ids))
        .values(comment=None, answers={})
    )
    db.execute(
        update(Invitation)
        .where(Invitation.customer_id.in_(ids), Invitation.answered_at.is_(None))
        .where(Invitation.expires_at > now)
        .values(expires_at=now)
    )
    db.execute(
        update(Review)
        .where(Review.customer_id.in_(ids))
        .values(title="", body="", photos=[], device_id=None, address_digest=None)
    )
    db.execute(
        update(Review)
        .where(Review.customer_id.in_(ids), Review.status == "flagged")
        .values(status="rejected", moderated_at=now, moderated_by=ERASURE_MODERATOR)
    )
    db.execute(
        update(Ticket)
        .where(Ticket.customer_id.in_(ids))
        .values(subject="(erased)", body="", resolution=None)
    )
