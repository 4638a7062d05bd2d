"""Customer tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

CONSENT_PURPOSES = ("analytics", "personalization", "marketing_email", "marketing_push", "location")
# The most characters of where a consent choice was made (consents.source, consent_changes.source).
CONSENT_SOURCE_LENGTH = 60
# Identity kinds that name exactly one person; a device can be shared by a household.
UNIQUE_IDENTITY_KINDS = ("email", "phone", "loyalty_card", "anonymous_id", "external_id")
IDENTITY_KINDS = (*UNIQUE_IDENTITY_KINDS, "device_id")
CUSTOMER_STATUSES = ("active", "merged", "erased")


class Customer(Base):
    """One person across channels. ``external_id`` is the retailer's own customer number."""

    __tablename__ = "customers"
    __table_args__ = (
        Index("ix_customers_email", "email"),
        # Segments' distance conditions: the bounding box's latitude range first.
        Index("ix_customers_home_latitude", "home_latitude"),
        Index("ix_customers_group_id", "group_id"),
        CheckConstraint("status IN ('active', 'merged', 'erased')", name="status_known"),
    )

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    first_name: Mapped[str | None] = mapped_column(String(100), default=None)
    last_name: Mapped[str | None] = mapped_column(String(100), default=None)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    home_city: Mapped[str | None] = mapped_column(String(120), default=None)
    home_latitude: Mapped[float | None] = mapped_column(Float, default=None)
    home_longitude: Mapped[float | None] = mapped_column(Float, default=None)
    # An IANA zone ("Europe/Paris"): quiet hours are the customer's own night.
    time_zone: Mapped[str | None] = mapped_column(String(50), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # When each value tracking (or a command) set was said: field name, or
    # ``attributes.<trait>``, to an ISO time. A value said earlier never replaces it (an app's
    # offline queue flushed late); a field without one takes any value (``traits.as_of``).
    # No Python default: a row written without it (an older schema's insert) names no column.
    field_times: Mapped[dict[str, str] | None] = mapped_column(JsonDocument)
    # The account or household the customer belongs to (a tracking ``group`` call).
    group_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # A visitor known only by anonymous or device ids until they identify themselves.
    is_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="active")
    merged_into: Mapped[str | None] = mapped_column(String(40), default=None)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerGroup(Base):
    """An account or household customers belong to, as the shop's tracking ``group`` calls
    name it, with its traits (bounded like a customer's custom traits)."""

    __tablename__ = "customer_groups"

    group_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Consent(Base):
    """The customer's current choice for one purpose."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('analytics', 'personalization', 'marketing_email', "
            "'marketing_push', 'location')",
            name="purpose_known",
        ),
    )

    customer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(30), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(CONSENT_SOURCE_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Identity(Base):
    """A way to recognise a customer. Unique kinds can never sit on two customers: a partial
    unique index enforces it in the database, whatever the application does."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value", "customer_id"),
        Index(
            "uq_identities_unique_kind_value",
            "kind",
            "value",
            unique=True,
            sqlite_where=text("is_unique"),
            postgresql_where=text("is_unique"),
        ),
        Index("ix_identities_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customers.customer_id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[str] = mapped_column(String(320))
    is_unique: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerMerge(Base):
    """Audit of a merge: which profile went into which, why, by whom, and what moved."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_customer_id: Mapped[str] = mapped_column(String(40), index=True)
    target_customer_id: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    moved: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentChange(Base):
    """Every consent decision ever made, oldest first: the history behind ``consents``."""

    __tablename__ = "consent_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customers.customer_id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(30))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(CONSENT_SOURCE_LENGTH))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Preference(Base):
    """Zero-party data: something the customer told us about themselves, and where."""

    __tablename__ = "preferences"

    customer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDocument)
    source: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CustomerTraits(Base):
    """The profile's read model, kept current incrementally by the profile processor."""

    __tablename__ = "customer_traits"
    # Segments' distance conditions on the last known location (bounding box first).
    __table_args__ = (Index("ix_customer_traits_last_latitude", "last_latitude"),)

    customer_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    channels: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    # Net spend (orders less returns and cancellations) in each currency, by code: amounts in
    # different currencies are never added. ``spend_minor`` is the one in ``currency``, the
    # latest order's; segments and RFM read the shop's currency's from the JSON.
    spend_by_currency: Mapped[dict[str, int]] = mapped_column(JsonDocument, default=dict)
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    category_counts: Mapped[dict[str, int]] = mapped_column(JsonDocument, default=dict)
    store_counts: Mapped[dict[str, int]] = mapped_column(JsonDocument, default=dict)
    last_latitude: Mapped[float | None] = mapped_column(Float, default=None)
    last_longitude: Mapped[float | None] = mapped_column(Float, default=None)
    last_location_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RfmBoundaries(Base):
    """Population quintile boundaries for RFM scores, refreshed by a daily job."""

    __tablename__ = "rfm_boundaries"

    metric: Mapped[str] = mapped_column(String(20), primary_key=True)
    boundaries: Mapped[list[float]] = mapped_column(JsonDocument)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PrivacyRequest(Base):
    """Who asked for an export or an erasure, when, and when it was done."""

    __tablename__ = "privacy_requests"
    __table_args__ = (CheckConstraint("kind IN ('export', 'erasure')", name="kind_known"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    requested_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
