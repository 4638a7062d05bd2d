"""Catalogue tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime


class Product(Base):
    """A sellable item. Money is integer minor units (cents) with a currency code."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint("cost_minor >= 0", name="cost_not_negative"),
        Index("ix_products_category_path", "category_path"),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    category_path: Mapped[str] = mapped_column(String(300))
    brand: Mapped[str | None] = mapped_column(String(120), default=None)
    price_minor: Mapped[int] = mapped_column(Integer)
    cost_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    country_of_origin: Mapped[str | None] = mapped_column(String(2), default=None)
    season: Mapped[str | None] = mapped_column(String(20), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Store(Base):
    """A physical store (or the web warehouse, which has no coordinates)."""

    __tablename__ = "stores"
    __table_args__ = (
        CheckConstraint("latitude IS NULL OR (latitude BETWEEN -90 AND 90)", name="latitude_range"),
        CheckConstraint(
            "longitude IS NULL OR (longitude BETWEEN -180 AND 180)", name="longitude_range"
        ),
    )

    store_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    address: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))
    latitude: Mapped[float | None] = mapped_column(Float, default=None)
    longitude: Mapped[float | None] = mapped_column(Float, default=None)
    timezone: Mapped[str] = mapped_column(String(60))
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StockLevel(Base):
    """Units of a product at one location (a store, or ``web`` for the online warehouse).
    ``reserved`` units are promised to pick-up orders (reserving is guarded by what is
    available); a count below them is recorded as it is, the level then short of them."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        # A count below the reservations is recorded as it is (a reserved unit broke): the
        # level is short of them, never negative.
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        Index("ix_stock_levels_store_id", "store_id"),
    )

    sku: Mapped[str] = mapped_column(String(64), ForeignKey("products.sku"), primary_key=True)
    store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("stores.store_id"), primary_key=True
    )
    on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelPrice(Base):
    """A deliberate exception to the one price: this product costs this much on this channel
    (or in this store), for this reason, in this window."""

    __tablename__ = "channel_prices"
    __table_args__ = (CheckConstraint("price_minor >= 0", name="price_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), ForeignKey("products.sku"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    store_id: Mapped[str | None] = mapped_column(String(40), default=None)
    price_minor: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
