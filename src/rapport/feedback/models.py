"""Feedback tables: survey definitions, invitations and answers, score targets and their
alerts, product reviews with their screening, and support tickets.

Answers keep a copy of what was known when the customer was asked (channel, store, journey
stage, tier, and the experience signals such as days late), so scores can be broken down and
moments of truth measured without reading other domains' tables afterwards.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

SURVEY_KINDS = ("nps", "csat", "ces")
TRIGGERS = (
    "after_delivery",
    "after_store_visit",
    "after_ticket_closed",
    "after_purchase",
    "manual",
)
REVIEW_STATUSES = ("published", "flagged", "rejected")
TICKET_KINDS = ("complaint", "question", "return_problem", "delivery_problem")
TICKET_STATUSES = ("open", "resolved")
PLAN_STATUSES = ("planned", "in_progress", "done", "dropped")


class Survey(Base):
    """A survey definition: what is asked, when, of whom, and how often at most."""

    __tablename__ = "feedback_surveys"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat', 'ces')", name="kind_known"),
        CheckConstraint(
            "trigger IN ('after_delivery', 'after_store_visit', 'after_ticket_closed', "
            "'after_purchase', 'manual')",
            name="trigger_known",
        ),
        CheckConstraint("sampling_rate >= 0 AND sampling_rate <= 1", name="sampling_rate_range"),
        CheckConstraint("fatigue_days >= 0", name="fatigue_days_not_negative"),
    )

    survey_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    trigger: Mapped[str] = mapped_column(String(30))
    # after_purchase only: the purchase channel that triggers it (None: any channel).
    channel: Mapped[str | None] = mapped_column(String(20), default=None)
    sampling_rate: Mapped[float] = mapped_column(Float, default=1.0)
    fatigue_days: Mapped[int] = mapped_column(Integer, default=30)
    consent_purpose: Mapped[str] = mapped_column(String(30), default="marketing_email")
    link_days: Mapped[int] = mapped_column(Integer, default=14)
    # {locale: {"question": ..., "comment": ..., "low": ..., "high": ...}}
    labels: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # [{"id": ..., "labels": {locale: text}}] free-text extra questions
    questions: Mapped[list[Any]] = mapped_column(JsonDocument, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invitation(Base):
    """One customer asked one survey about one moment; answered at most once."""

    __tablename__ = "feedback_invitations"
    __table_args__ = (
        Index("uq_feedback_invitations_source", "survey_id", "source_key", unique=True),
        Index("ix_feedback_invitations_customer", "customer_id", "created_at"),
    )

    invitation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    survey_id: Mapped[str] = mapped_column(String(60))
    # What prompted it (an order, a visit, a ticket): one invitation per survey and source.
    source_key: Mapped[str] = mapped_column(String(120))
    customer_id: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10), default="en")
    channel: Mapped[str | None] = mapped_column(String(20), default=None)
    store_id: Mapped[str | None] = mapped_column(String(40), default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    ticket_id: Mapped[str | None] = mapped_column(String(40), default=None)
    stage: Mapped[str] = mapped_column(String(30))
    tier: Mapped[str | None] = mapped_column(String(60), default=None)
    signals: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # When its email was given up before it went out (order cancelled, link expired, consent
    # withdrawn): it asked the customer nothing, so it does not count for fatigue.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SurveyResponse(Base):
    """An answer, with the context it was given in (for breakdowns and moments of truth)."""

    __tablename__ = "feedback_responses"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat', 'ces')", name="kind_known"),
        Index("ix_feedback_responses_kind_answered", "kind", "answered_at"),
        Index("ix_feedback_responses_customer", "customer_id"),
    )

    response_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    invitation_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    survey_id: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    answers: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    channel: Mapped[str | None] = mapped_column(String(20), default=None)
    store_id: Mapped[str | None] = mapped_column(String(40), default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    stage: Mapped[str] = mapped_column(String(30))
    tier: Mapped[str | None] = mapped_column(String(60), default=None)
    signals: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    ticket_id: Mapped[str | None] = mapped_column(String(40), default=None)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScoreTarget(Base):
    """A score a store, a channel or the whole business should stay at or above."""

    __tablename__ = "feedback_targets"
    __table_args__ = (
        CheckConstraint("kind IN ('nps', 'csat', 'ces')", name="kind_known"),
        CheckConstraint("scope IN ('all', 'store', 'channel')", name="scope_known"),
        Index("uq_feedback_targets_scope", "kind", "scope", "scope_value", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(10))
    scope_value: Mapped[str] = mapped_column(String(40), default="")
    target: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer, default=30)
    min_responses: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScoreAlert(Base):
    """A target missed over a window: raised once a day at most per target."""

    __tablename__ = "feedback_alerts"
    __table_args__ = (Index("uq_feedback_alerts_day", "target_id", "day", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    score: Mapped[float] = mapped_column(Float)
    responses: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ActionPlan(Base):
    """What the CX team does about a score or a theme: an owner, an action, a due date and
    where it stands. Holds no customer's data (the owner is a member of staff)."""

    __tablename__ = "feedback_action_plans"
    __table_args__ = (
        CheckConstraint(
            "status IN ('planned', 'in_progress', 'done', 'dropped')", name="status_known"
        ),
        Index("ix_feedback_action_plans_status_due", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The score target it answers (None: none), and/or a comment theme ("delivery").
    target_id: Mapped[int | None] = mapped_column(Integer, default=None)
    theme: Mapped[str] = mapped_column(String(120), default="")
    owner: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="planned")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Review(Base):
    """A product review. Published at once when screening finds nothing; otherwise flagged
    for a moderator with the reasons."""

    __tablename__ = "feedback_reviews"
    __table_args__ = (
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("status IN ('published', 'flagged', 'rejected')", name="status_known"),
        Index("ix_feedback_reviews_sku_status", "sku", "status"),
        Index("ix_feedback_reviews_status_created", "status", "created_at"),
        Index("ix_feedback_reviews_device", "device_id", "created_at"),
        Index("ix_feedback_reviews_address", "address_digest", "created_at"),
        # One review per reviewer, product and purchase (``purchase_key``), so a purchase is
        # reviewed (and rewarded) once, whatever the timing of two submissions.
        Index("uq_feedback_reviews_purchase", "customer_id", "sku", "purchase_key", unique=True),
    )

    review_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    sku: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # The purchase reviewed: "<order_id>#<line_no>" for a line delivered to the reviewer, ""
    # for a review by someone who did not receive the product.
    purchase_key: Mapped[str] = mapped_column(String(80), default="", server_default="")
    rating: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list[Any]] = mapped_column(JsonDocument, default=list)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12))
    reasons: Mapped[list[Any]] = mapped_column(JsonDocument, default=list)
    device_id: Mapped[str | None] = mapped_column(String(120), default=None)
    # SHA-256 of the sender's network address: bursts are found without keeping the address.
    address_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    moderated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    moderated_by: Mapped[str | None] = mapped_column(String(200), default=None)
    rewarded: Mapped[bool] = mapped_column(Boolean, default=False)


class Ticket(Base):
    """A complaint or question from any channel, with its priority and SLA due time."""

    __tablename__ = "feedback_tickets"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('complaint', 'question', 'return_problem', 'delivery_problem')",
            name="kind_known",
        ),
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        CheckConstraint("apology_points >= 0", name="apology_points_not_negative"),
        Index("ix_feedback_tickets_queue", "status", "priority", "sla_due_at"),
        Index("ix_feedback_tickets_customer", "customer_id"),
    )

    ticket_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="open")
    # Higher is more urgent; the queue sorts by it, then by the SLA due time.
    priority: Mapped[int] = mapped_column(Integer)
    priority_reasons: Mapped[list[Any]] = mapped_column(JsonDocument, default=list)
    tier: Mapped[str | None] = mapped_column(String(60), default=None)
    support_level: Mapped[str] = mapped_column(String(20), default="standard")
    customer_value_minor: Mapped[int] = mapped_column(Integer, default=0)
    # The currency the value is counted in: the loyalty program's when the ticket was opened.
    customer_value_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    sla_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When ``ticket_breached`` was logged for it (once per ticket; None: not breached yet).
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Who opened it: the admin user's login, ``api:<key name>``; None for a survey's ticket.
    opened_by: Mapped[str | None] = mapped_column(String(200), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolution: Mapped[str | None] = mapped_column(Text, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    apology_points: Mapped[int] = mapped_column(Integer, default=0)
    apology_transaction_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    response_id: Mapped[str | None] = mapped_column(String(40), default=None)
