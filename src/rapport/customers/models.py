"""Customer tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, UTCDateTime

CONSENT_PURPOSES = ("analytics", "personalization", "marketing_email", "marketing_push", "location")


class Customer(Base):
    """One person across channels. ``external_id`` is the retailer's own customer number."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_email", "email"),)

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
    source: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
