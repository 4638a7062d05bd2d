"""What the customer 360 shows of one customer's experience: their reviews and survey
answers, newest first (their tickets are :func:`rapport.feedback.tickets.customer_tickets`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.feedback.models import Review, SurveyResponse


def customer_reviews(db: Session, *, customer_id: str, limit: int = 20) -> list[Review]:
    return list(
        db.scalars(
            select(Review)
            .where(Review.customer_id == customer_id)
            .order_by(Review.created_at.desc(), Review.review_id)
            .limit(limit)
        )
    )


def customer_responses(db: Session, *, customer_id: str, limit: int = 20) -> list[SurveyResponse]:
    return list(
        db.scalars(
            select(SurveyResponse)
            .where(SurveyResponse.customer_id == customer_id)
            .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.response_id)
            .limit(limit)
        )
    )
