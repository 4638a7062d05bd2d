"""Recommendation tables: trained model versions with their offline metrics, and the
merchandisers' rules with an audit of every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

RULE_ACTIONS = ("pin", "boost", "bury", "exclude", "filter")
PLACEMENTS = ("home", "discover", "product_similar", "product_complements", "cart", "email")
RULE_ATTRIBUTES = ("category", "brand", "country_of_origin")


class ModelVersion(Base):
    """One training run: where its model file is and how it measured offline."""

    __tablename__ = "recommend_model_versions"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    file_name: Mapped[str] = mapped_column(String(200))
    customers: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    purchases: Mapped[int] = mapped_column(Integer)
    train_seconds: Mapped[float] = mapped_column(Float)
    params: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # {"rapport": {"recall@10": …}, "popularity": {…}} on a held-out recent window.
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    trained_by: Mapped[str] = mapped_column(String(120))


class MerchRule(Base):
    """A merchandising rule: pin an item at a position, boost or bury it, exclude it, or keep
    only items matching an attribute; for one placement or all, one segment or everyone, within
    an optional date window."""

    __tablename__ = "recommend_rules"
    __table_args__ = (
        CheckConstraint(
            "action IN ('pin', 'boost', 'bury', 'exclude', 'filter')", name="known_action"
        ),
        CheckConstraint("position IS NULL OR position >= 1", name="position_from_one"),
        CheckConstraint("factor IS NULL OR factor > 0", name="factor_positive"),
        Index("ix_recommend_rules_active", "active", "placement"),
        # A deleted rule's id is never given to a new one (its audit trail stays its own).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))
    placement: Mapped[str | None] = mapped_column(String(30), default=None)
    segment: Mapped[str | None] = mapped_column(String(60), default=None)
    sku: Mapped[str | None] = mapped_column(String(64), default=None)
    attribute: Mapped[str | None] = mapped_column(String(30), default=None)
    value: Mapped[str | None] = mapped_column(String(300), default=None)
    position: Mapped[int | None] = mapped_column(Integer, default=None)
    factor: Mapped[float | None] = mapped_column(Float, default=None)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MerchRuleChange(Base):
    """Who changed which rule, when, and how it looked before and after."""

    __tablename__ = "recommend_rule_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(Integer, index=True)
    change: Mapped[str] = mapped_column(String(10))  # created, updated, deleted
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, default=None)
