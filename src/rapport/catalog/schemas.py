"""Catalogue shapes on the wire."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rapport.platform.errors import FieldInvalid
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


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CLOSED = "closed"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
_SPAN = re.compile(rf"({_TIME})-({_TIME}|24:00)")
HOURS_EXAMPLE = "'09:00-20:00', '09:00-12:30, 14:00-19:00' or 'closed'"


def hours_problem(value: Any) -> str | None:
    """What is wrong with one day's opening hours, or None: spans 'HH:MM-HH:MM' (opening
    before closing, 00:00 to 24:00), several in the day's order separated by commas, or
    'closed'."""
    if not isinstance(value, str):
        return f"Opening hours are text such as {HOURS_EXAMPLE}"
    if value == CLOSED:
        return None
    last_close = ""
    for part in value.split(","):
        span = _SPAN.fullmatch(part.strip())
        if span is None:
            return f"{part.strip()!r} is not a time span: write {HOURS_EXAMPLE}"
        opens, closes = span.groups()
        if opens >= closes:
            return f"{part.strip()!r} closes before it opens"
        if opens < last_close:
            return f"{part.strip()!r} starts before the span before it ends"
        last_close = closes
    return None


class StoreIn(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=120)
    address: str = Field(min_length=1, max_length=300)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    latitude: float | None = Field(
        default=None, ge=-90, le=90, description="With longitude, or neither"
    )
    longitude: float | None = Field(
        default=None, ge=-180, le=180, description="With latitude, or neither"
    )
    timezone: str = Field(
        default="UTC", max_length=60, description="An IANA time zone", examples=["Europe/Paris"]
    )
    opening_hours: dict[str, Any] = Field(
        default_factory=dict,
        description="Per weekday (mon … sun, each at most once; a day left out is not known): "
        f"{HOURS_EXAMPLE}",
        examples=[{"mon": "09:00-20:00", "sun": "closed"}],
    )

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"Unknown time zone {value!r}: give an IANA name such as Europe/Paris"
            ) from error
        return value

    @field_validator("opening_hours")
    @classmethod
    def _hours_per_weekday(cls, hours: dict[str, Any]) -> dict[str, Any]:
        for day, value in hours.items():
            if day not in WEEKDAYS:
                raise FieldInvalid(day, f"Not a weekday: the days are {', '.join(WEEKDAYS)}")
            problem = hours_problem(value)
            if problem:
                raise FieldInvalid(day, problem)
        return hours

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> StoreIn:
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise FieldInvalid(
                missing, "A store's position needs latitude and longitude: send both, or neither"
            )
        return self


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
    """A product's stock at one location. A location that keeps no stock level for it is not
    tracked there (``tracked`` false): its sales are not limited, as the till sells it, and
    its units are null, not 0."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "store_id": "st-lyo",
                    "name": "Lyon",
                    "city": "Lyon",
                    "tracked": True,
                    "on_hand": 7,
                    "reserved": 2,
                    "available": 5,
                    "distance_km": 2.1,
                    "short_by": 0,
                },
                {
                    "store_id": "web",
                    "name": "Web",
                    "city": "Online",
                    "tracked": False,
                    "on_hand": None,
                    "reserved": None,
                    "available": None,
                    "distance_km": None,
                    "short_by": None,
                },
            ]
        }
    )

    store_id: str
    name: str
    city: str
    tracked: bool = Field(
        description="Whether the location keeps a stock level for the product; false: its "
        "sales there are not limited and the units are null"
    )
    on_hand: int | None
    reserved: int | None = Field(description="Units reserved for pick-up orders")
    available: int | None = Field(
        description="On hand less reserved, never below 0; null when not tracked"
    )
    distance_km: float | None
    short_by: int | None = Field(
        default=None,
        description="Reserved units the count on hand cannot cover (a count below the "
        "reservations was recorded: a reserved unit broke or went missing), 0 when every "
        "reservation is covered; null when not tracked",
    )


class ChannelPriceIn(StrictModel):
    sku: str = Field(pattern=SKU_PATTERN)
    channel: str = Field(pattern=r"^(web|app|store|call_center)$")
    store_id: str | None = Field(default=None, pattern=SKU_PATTERN)
    price_minor: MinorUnits
    reason: str = Field(min_length=1, max_length=200, examples=["clearance in Lyon"])


class ChannelPriceOut(BaseModel):
    """A price rule as recorded: it begins when it was recorded (``valid_from``) and stays
    in force until a newer rule for the same place, or ``DELETE
    /v1/prices/channel/{rule_id}``, ends it (``valid_to``)."""

    sku: str
    channel: str = Field(description="web, app, store or call_center (members: loyalty's price)")
    store_id: str | None
    price_minor: int
    reason: str
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
    rule_id: int = Field(description="The rule's id: DELETE /v1/prices/channel/{rule_id} ends it")
