"""Catalogue shapes on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from rapport.platform.schemas import CurrencyCode, MinorUnits, ReadModel, StrictModel

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
# Where a product without a category is filed: a shop without a taxonomy need not invent one
# (recommendations then lean on co-purchase and neighbours rather than categories).
UNCATEGORISED = "Uncategorised"


class ProductIn(StrictModel):
    name: str = Field(min_length=1, max_length=300)
    category_path: str = Field(
        default=UNCATEGORISED,
        min_length=1,
        max_length=300,
        examples=["Wine/Red/Chianti"],
        description=f"'/'-separated. Left out: {UNCATEGORISED!r} (as for every product put "
        "without one: a PUT replaces the whole product).",
    )
    brand: str | None = Field(default=None, max_length=120)
    price_minor: MinorUnits
    cost_minor: MinorUnits
    currency: CurrencyCode
    country_of_origin: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    season: str | None = Field(default=None, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)


class ProductUpsert(ProductIn):
    sku: str = Field(pattern=SKU_PATTERN)


class ProductBulkIn(StrictModel):
    products: list[ProductUpsert] = Field(min_length=1, max_length=1000)


class ProductOut(ReadModel):
    sku: str
    name: str
    category_path: str
    brand: str | None
    price_minor: int
    cost_minor: int
    currency: str
    country_of_origin: str | None
    season: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class StoreIn(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    address: str = Field(min_length=1, max_length=300)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str = Field(default="UTC", max_length=60)
    opening_hours: dict[str, Any] = Field(default_factory=dict)


class StoreUpsert(StoreIn):
    store_id: str = Field(pattern=SKU_PATTERN)


class StoreBulkIn(StrictModel):
    stores: list[StoreUpsert] = Field(min_length=1, max_length=1000)


class StoreOut(ReadModel):
    store_id: str
    name: str
    city: str
    address: str
    country: str
    latitude: float | None
    longitude: float | None
    timezone: str
    opening_hours: dict[str, Any]


class BulkResult(StrictModel):
    upserted: int


class StockLevelIn(StrictModel):
    sku: str = Field(pattern=SKU_PATTERN)
    store_id: str = Field(
        pattern=SKU_PATTERN, description="A store, or 'web' for the online warehouse"
    )
    on_hand: int = Field(ge=0, le=10_000_000)


class StockBulkIn(StrictModel):
    levels: list[StockLevelIn] = Field(min_length=1, max_length=5000)


class AvailabilityOut(StrictModel):
    store_id: str
    name: str
    city: str
    available: int
    distance_km: float | None


class ChannelPriceIn(StrictModel):
    sku: str = Field(pattern=SKU_PATTERN)
    channel: str = Field(pattern=r"^(web|app|store|call_center)$")
    store_id: str | None = Field(default=None, pattern=SKU_PATTERN)
    price_minor: MinorUnits
    reason: str = Field(min_length=1, max_length=200, examples=["clearance in Lyon"])


class ChannelPriceOut(ChannelPriceIn):
    """A price rule as recorded: it begins when it was recorded (``valid_from``) and stays
    in force until a newer rule for the same place ends it (``valid_to``)."""

    rule_id: int
    valid_from: datetime | None = Field(
        description="When the rule began; null for a rule an earlier version recorded, which "
        "has no start and is read as always"
    )
    valid_to: datetime | None = Field(description="When the rule ended; null while in force")


class PriceDifferenceOut(StrictModel):
    sku: str
    name: str
    catalogue_price_minor: int
    channel: str
    store_id: str | None
    price_minor: int
    reason: str
