"""Plain records the demo generator yields. They carry no database identity: each domain's
service turns them into its own rows (catalog loads stores and products, customers loads
customers, and later domains load orders, reviews and answers through their own services)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

CHANNELS = ("web", "app", "store", "call_center")
FULFILMENTS = ("ship", "pickup_in_store", "in_store")


@dataclass(frozen=True)
class StoreRecord:
    store_id: str  # e.g. "st-lon-01"; "web" is the online warehouse (no coordinates)
    name: str
    city: str
    address: str
    country: str  # ISO 3166-1 alpha-2
    latitude: float | None
    longitude: float | None
    timezone: str
    opening_hours: dict[str, str]  # {"mon": "09:00-20:00", ...}


@dataclass(frozen=True)
class ProductRecord:
    sku: str
    name: str
    category_path: str  # "Wine/Red"
    brand: str
    price_minor: int  # integer cents
    cost_minor: int
    currency: str
    country_of_origin: str
    season: str | None  # "summer", "winter", "christmas" or None
    attributes: dict[str, str | int | float | bool]
    repeat_purchase: bool  # consumables come back; furniture does not


@dataclass(frozen=True)
class CustomerRecord:
    external_id: str  # "C0000001"
    email: str
    first_name: str
    last_name: str
    locale: str  # "en", "fr", "de", ...
    home_city: str
    home_latitude: float
    home_longitude: float
    signed_up_at: datetime
    consents: dict[str, bool]  # purpose -> granted
    preferred_store_id: str


@dataclass(frozen=True)
class OrderLineRecord:
    sku: str
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class ReturnRecord:
    sku: str
    quantity: int
    reason: str  # "too_small", "damaged", "not_as_described", "changed_mind", ...
    returned_at: datetime
    channel: str  # where it was returned: "store" or "web"


@dataclass(frozen=True)
class OrderRecord:
    order_id: str  # "O00000001-001": customer number + sequence, stable for a seed
    customer_external_id: str
    channel: str  # one of CHANNELS
    fulfilment: str  # one of FULFILMENTS
    store_id: str  # store where bought, picked up, or "web"
    placed_at: datetime
    currency: str
    lines: list[OrderLineRecord]
    promised_delivery: date | None  # shipped orders only
    delivered_at: datetime | None  # None when never delivered (failed)
    carrier: str | None
    returns: list[ReturnRecord] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)

    @property
    def delivered_late(self) -> bool:
        if self.promised_delivery is None:
            return False
        if self.delivered_at is None:
            return True
        return self.delivered_at.date() > self.promised_delivery


@dataclass(frozen=True)
class ProductViewRecord:
    customer_external_id: str
    sku: str
    channel: str  # "web" or "app"
    device: str  # "desktop", "mobile", "tablet"
    viewed_at: datetime


@dataclass(frozen=True)
class StoreVisitRecord:
    customer_external_id: str
    store_id: str
    visited_at: datetime


@dataclass(frozen=True)
class ReviewRecord:
    customer_external_id: str
    order_id: str
    sku: str
    rating: int  # 1..5
    title: str
    text: str
    written_at: datetime


@dataclass(frozen=True)
class SurveyAnswerRecord:
    customer_external_id: str
    kind: str  # "nps" (0-10), "csat" (1-5), "ces" (1-7)
    trigger: str  # "after_delivery", "after_store_visit", "after_purchase"
    order_id: str | None
    store_id: str | None
    score: int
    comment: str | None
    answered_at: datetime


@dataclass(frozen=True)
class CustomerHistory:
    """Everything one customer did, generated together so memory stays bounded."""

    customer: CustomerRecord
    orders: list[OrderRecord]
    product_views: list[ProductViewRecord]
    store_visits: list[StoreVisitRecord]
    reviews: list[ReviewRecord]
    survey_answers: list[SurveyAnswerRecord]
