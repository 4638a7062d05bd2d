"""Campaign tables: segments and their members, campaigns and their templates, deliveries with
their status history, webhook endpoints and their attempts, webhook subscriptions to Rapport's
own events, the in-app inbox, suppressions and the sending policy (frequency caps, quiet
hours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

CAMPAIGN_KINDS = ("one_off", "scheduled", "triggered", "transactional")
# marketing: the channel's marketing consent; service: about something the customer did (the
# contact gate's "service"); staff: to the retailer's own people, not to customers.
CAMPAIGN_PURPOSES = ("marketing", "service", "staff")
CHANNELS = ("email", "webhook", "inbox")
# failed: a launch found it could not go out after the request that launched it (a scheduled
# campaign whose segment went, say); failure_reason says why and what to do.
CAMPAIGN_STATUSES = (
    "draft",
    "scheduled",
    "sending",
    "sent",
    "active",
    "paused",
    "cancelled",
    "failed",
)
DELIVERY_STATUSES = (
    "queued",
    "deferred",
    "sending",
    "sent",
    "failed",
    "bounced",
    "suppressed",
    "held_out",
    "dead",
)
GROUPS = ("treated", "control")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Segment(Base):
    """A named audience: conditions over what Rapport knows, stored as validated JSON."""

    __tablename__ = "campaign_segments"
    # A deleted segment's id is never given to a new one (a campaign names its segment by id).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SegmentMember(Base):
    """A customer in a segment as of its last evaluation (kept current by the processor and
    the scheduled refresh)."""

    __tablename__ = "campaign_segment_members"
    __table_args__ = (Index("ix_campaign_segment_members_customer", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Campaign(Base):
    """One message to an audience: sent once (one_off, scheduled), on every matching event
    (triggered) or per occasion from another domain's fact (transactional, ``key`` names it:
    the late-delivery notice, the survey invitation ...)."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CAMPAIGN_KINDS), name="kind_known"),
        CheckConstraint(_one_of("purpose", CAMPAIGN_PURPOSES), name="purpose_known"),
        CheckConstraint(_one_of("channel", CHANNELS), name="channel_known"),
        CheckConstraint(_one_of("status", CAMPAIGN_STATUSES), name="status_known"),
        CheckConstraint("control_percent >= 0 AND control_percent <= 90", name="control_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # System campaigns (the migrated producers) are found by key; the retailer's have none.
    key: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16), default="marketing")
    channel: Mapped[str] = mapped_column(String(10), default="email")
    webhook_endpoint_id: Mapped[int | None] = mapped_column(Integer, default=None)
    segment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Triggered campaigns: {"event_type": "venue_event", "radius_km": 80, "within_minutes": 120}
    trigger: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # Local invitations: customers near this store whose purchases match these categories.
    store_id: Mapped[str | None] = mapped_column(String(64), default=None)
    radius_km: Mapped[float | None] = mapped_column(Float, default=None)
    categories: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    control_percent: Mapped[float] = mapped_column(Float, default=0.0)
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)
    audience_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Why a launch failed and what to do (status failed); cleared when it is launched again.
    failure_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class CampaignTemplate(Base):
    """The message of a campaign on one channel in one locale (Jinja2, sandboxed)."""

    __tablename__ = "campaign_templates"
    __table_args__ = (
        UniqueConstraint("campaign_id", "channel", "locale", name="uq_campaign_templates"),
        CheckConstraint(_one_of("channel", CHANNELS), name="channel_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(10), default="en")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Delivery(Base):
    """One message to one recipient for one campaign and occasion: at most one, ever (the
    unique key), whatever runs twice. ``occasion`` is '' for a campaign sent once and names
    the fact otherwise (an order, an invitation, a venue event). Control-group members get a
    row too (status ``held_out``) so results compare like with like."""

    __tablename__ = "campaign_deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "recipient_key", "occasion", name="uq_campaign_deliveries"),
        Index("ix_campaign_deliveries_due", "status", "next_attempt_at"),
        Index("ix_campaign_deliveries_customer", "customer_id", "channel", "sent_at"),
        CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint(_one_of("grp", GROUPS), name="group_known"),
        CheckConstraint(_one_of("channel", CHANNELS), name="channel_known"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    campaign_id: Mapped[int] = mapped_column(Integer)
    # The customer (None for staff messages); recipient_key is the customer id or
    # "staff:<address>", so that uniqueness holds for both.
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    recipient_key: Mapped[str] = mapped_column(String(340))
    occasion: Mapped[str] = mapped_column(String(120), default="")
    grp: Mapped[str] = mapped_column(String(8), default="treated")
    channel: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    reason: Mapped[str] = mapped_column(String(300), default="")
    # Values for the template that belong to the occasion (order id, survey link ...).
    context: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(120), default=None)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryStatus(Base):
    """Every status a delivery went through, with the reason (the history page)."""

    __tablename__ = "campaign_delivery_history"
    __table_args__ = (Index("ix_campaign_delivery_history_delivery", "delivery_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEndpoint(Base):
    """A receiver of webhook deliveries (a push or SMS gateway, any system)."""

    __tablename__ = "campaign_webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    # The marketing consent a customer must have granted for this endpoint's messages.
    consent_purpose: Mapped[str] = mapped_column(String(40), default="marketing_push")
    max_attempts: Mapped[int] = mapped_column(Integer, default=6)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The system campaign of a webhook subscription is keyed with this prefix and its id: its
# deliveries carry the event itself as their webhook body (``subscriptions/``).
SUBSCRIPTION_CAMPAIGN_PREFIX = "webhooks.subscription."


class WebhookSubscription(Base):
    """Rapport's own events an endpoint wants (``event_types``), each matching logged event
    delivered to it through the subscription's system campaign (``campaign_id``)."""

    __tablename__ = "campaign_webhook_subscriptions"
    # A deleted subscription's id is never given to a new one (its system campaign is named
    # after it).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(Integer, unique=True)
    campaign_id: Mapped[int] = mapped_column(Integer, unique=True)
    event_types: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One HTTP try of a webhook delivery: what came back and how long it took."""

    __tablename__ = "campaign_webhook_attempts"
    __table_args__ = (
        Index("ix_campaign_webhook_attempts_endpoint", "endpoint_id", "at"),
        Index("ix_campaign_webhook_attempts_delivery", "delivery_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    endpoint_id: Mapped[int] = mapped_column(Integer)
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(String(500), default="")
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class InboxMessage(Base):
    """A message in the customer's in-app inbox (read through the API)."""

    __tablename__ = "campaign_inbox"
    __table_args__ = (Index("ix_campaign_inbox_customer", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    customer_id: Mapped[str] = mapped_column(String(40))
    delivery_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Suppression(Base):
    """A customer's channel that must not be used: a hard bounce, a complaint."""

    __tablename__ = "campaign_suppressions"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendingPolicy(Base):
    """Per channel: the frequency cap (at most ``cap_messages`` marketing messages per customer
    in ``cap_hours``) and quiet hours in the customer's time zone (deferred, not dropped)."""

    __tablename__ = "campaign_sending_policy"

    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    cap_messages: Mapped[int] = mapped_column(Integer, default=3)
    cap_hours: Mapped[int] = mapped_column(Integer, default=168)
    quiet_start: Mapped[int] = mapped_column(Integer, default=21)  # hour, local
    quiet_end: Mapped[int] = mapped_column(Integer, default=8)
    default_time_zone: Mapped[str] = mapped_column(String(50), default="UTC")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
