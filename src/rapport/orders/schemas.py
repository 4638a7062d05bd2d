"""Order shapes on the wire."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from rapport.platform.clock import as_utc
from rapport.platform.schemas import CurrencyCode, MinorUnits, ReadModel, StrictModel

Channel = Literal["web", "app", "store", "call_center"]
Fulfilment = Literal["ship", "pickup_in_store", "in_store"]
DeliveryStatus = Literal["packed", "shipped", "out_for_delivery", "delivered", "delayed", "failed"]
ReturnReason = Literal[
    "too_small",
    "too_large",
    "damaged",
    "not_as_described",
    "changed_mind",
    "late_delivery",
    "wrong_item",
    "other",
]


class LineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits
    discount_minor: MinorUnits = 0


class PaymentIn(StrictModel):
    method: str = Field(min_length=1, max_length=30, examples=["card", "gift_card", "cash"])
    amount_minor: MinorUnits


class LoyaltyIn(StrictModel):
    """Loyalty at checkout: the order must carry exactly the effects ``POST /v1/loyalty/checkout``
    answers for these coupons and points (discount, shipping, a ``points`` payment)."""

    coupons: list[str] = Field(default_factory=list, max_length=10)
    points_to_use: int = Field(default=0, ge=0, le=100_000_000)
    shipping_before_minor: MinorUnits = Field(
        default=0, description="The shipping price before loyalty effects (free shipping)."
    )


class OrderIn(StrictModel):
    """An order from any channel. Send the totals you computed: the server recomputes them and
    refuses a mismatch, so a pricing bug never becomes a wrong charge silently."""

    order_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$"
    )
    customer_id: str | None = Field(
        default=None, max_length=100, description="cus_… or your customer number"
    )
    channel: Channel
    fulfilment: Fulfilment
    store_id: str | None = Field(default=None, max_length=40)
    currency: CurrencyCode
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    discount_minor: MinorUnits = 0
    shipping_minor: MinorUnits = 0
    payments: list[PaymentIn] = Field(default_factory=list, max_length=10)
    subtotal_minor: MinorUnits
    total_minor: MinorUnits
    placed_at: AwareDatetime | None = None
    promised_delivery: date | None = None
    carrier: str | None = Field(default=None, max_length=40)
    loyalty: LoyaltyIn | None = Field(
        default=None, description="Member prices, tier discount, coupons and points, applied."
    )


class LineOut(ReadModel):
    line_no: int
    sku: str
    category: str | None
    quantity: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    returned_quantity: int


def _in_utc(value: datetime) -> datetime:
    return as_utc(value).astimezone(UTC)


UTCInstant = Annotated[datetime, AfterValidator(_in_utc)]
"""A moment answered in UTC (``...Z``) whatever offset it was sent with: one record, one
string, in the answer to the command that made it and in every read after."""


class StatusChangeOut(ReadModel):
    status: str
    at: UTCInstant = Field(description="When it happened (the sender's time, else when received)")
    note: str | None = Field(description="What the sender said with it (a carrier's note)")


class OrderOut(ReadModel):
    order_id: str
    customer_id: str | None
    channel: str
    fulfilment: str
    store_id: str | None
    status: str
    currency: str
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    total_minor: int
    placed_at: UTCInstant
    promised_delivery: date | None
    delivered_at: UTCInstant | None
    carrier: str | None
    pickup_code: str | None
    lines: list[LineOut] = Field(default_factory=list)
    pickup_qr_url: str | None = None
    collect_by: date | None = Field(
        default=None,
        description="A pick-up order's collection deadline: the last day it is kept at its "
        "store, at the offset it was placed with (RAPPORT_PICKUP_HOLD_DAYS after the day it was "
        "placed, fixed then: a later change of the setting does not move it); not collected by "
        "then, it is cancelled and its units go back on sale. Null for other orders",
    )
    status_history: list[StatusChangeOut] = Field(
        default_factory=list,
        description="Every status the order took, oldest first (orders loaded from history "
        "have none)",
    )


class StatusIn(StrictModel):
    status: DeliveryStatus
    at: AwareDatetime | None = None
    note: str | None = Field(default=None, max_length=500)


class CancelIn(StrictModel):
    reason: str | None = Field(
        default=None,
        max_length=500,
        description="Why, as the shop records it (kept with the status change and logged)",
    )


class PickupIn(StrictModel):
    pickup_code: str = Field(min_length=4, max_length=16)
    store_id: str = Field(min_length=1, max_length=40)


class ReturnLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    reason: ReturnReason
    restock: bool = Field(
        default=False, description="The units go back on sale (their location's stock rises)."
    )


class ReturnIn(StrictModel):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    channel: Literal["store", "web", "app", "call_center"]
    returned_at: AwareDatetime | None = None
    store_id: str | None = Field(
        default=None,
        max_length=40,
        description="Where restocked units go (default: the order's store, or web).",
    )


class ReturnOut(StrictModel):
    return_id: str
    order_id: str
    refund_minor: int = Field(description="The value of what came back: money and points")
    money_refund_minor: int = Field(
        description="What to pay back by the order's money payments (card, cash, ...)"
    )
    points_refund_minor: int = Field(
        description="The part the order paid with points: given back to the member as points"
    )
    lines: list[dict[str, int | str | None]]


class ChargedDifferenceOut(StrictModel):
    order_id: str
    line_no: int
    sku: str
    channel: str
    store_id: str | None
    placed_at: datetime
    quantity: int
    currency: str = Field(description="The order's, which is the price's")
    charged_unit_minor: int
    channel_unit_minor: int
    difference_minor: int = Field(description="(charged - channel price) x quantity")
    basis: Literal["channel rule", "catalogue price (current)"]
    reason: str | None


class ChargedTotalsOut(StrictModel):
    currency: str
    overcharged_minor: int
    undercharged_minor: int


class ChargedPriceReportOut(StrictModel):
    since: datetime
    until: datetime
    lines_checked: int = Field(description="Lines whose order is in the product's price currency")
    lines_in_other_currency: int = Field(
        description="Lines paid in another currency than the product's price: amounts are "
        "never converted, so these are counted and not compared"
    )
    currency: str | None = Field(
        description="The currency of most lines compared: the one overcharged_minor and "
        "undercharged_minor are in"
    )
    overcharged_minor: int
    undercharged_minor: int
    totals: list[ChargedTotalsOut] = Field(description="Both totals for every currency compared")
    truncated: bool = Field(description="More differences than the limit: the largest are listed")
    differences: list[ChargedDifferenceOut]


class RiskLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits


class ReturnRiskIn(StrictModel):
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description=(
            "cus_… or your customer number (unknown or erased: 404); leave it out for a "
            "guest's basket, scored as a new customer's"
        ),
    )
    channel: Channel = "web"
    currency: CurrencyCode = "EUR"
    lines: list[RiskLineIn] = Field(min_length=1, max_length=500)
    return_cost_minor: MinorUnits | None = Field(
        default=None, description="What one return costs you; defaults to the configured cost"
    )


class IncentiveOut(StrictModel):
    offer: str
    description: str
    expected_saving_minor: int


class ReturnRiskOut(StrictModel):
    probability: float
    baseline_probability: float | None
    reasons: list[str]
    model: str
    incentive: IncentiveOut | None


class CustomerValueOut(ReadModel):
    """A customer's lifetime value as last fitted (BG/NBD and Gamma-Gamma)."""

    customer_id: str
    value_tier: Literal["top1", "top5", "top20", "rest"]
    predicted_value_minor: int = Field(description="Predicted spend in the next 365 days")
    p_alive: float = Field(ge=0, le=1, description="Probability the customer is still active")
    p_purchase_90d: float = Field(ge=0, le=1, description="At least one purchase in 90 days")
    expected_purchases_90d: float
    expected_spend_minor: int = Field(description="Expected spend per future purchase day")
    frequency: int = Field(description="Repeat purchase days when fitted")
    recency_days: float
    age_days: float
    monetary_minor: int = Field(description="Mean value of the repeat purchase days")
    fitted_at: datetime


class ValueFitOut(ReadModel):
    """The customer-value models in use: BG/NBD (days) and Gamma-Gamma (minor units)."""

    fitted_at: datetime
    customers: int
    repeat_customers: int
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    p: float | None
    q: float | None
    gamma: float | None
    spend_log_likelihood: float | None
    seconds: float
