"""Loyalty shapes on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from rapport.loyalty.service import MAX_POINTS_PER_COMMAND
from rapport.platform import clock
from rapport.platform.errors import FieldInvalid
from rapport.platform.schemas import MinorUnits, Page, StrictModel

Channel = Literal["web", "app", "store", "call_center"]
Points = Field(ge=1, le=MAX_POINTS_PER_COMMAND, description="Whole points, more than zero")
Reference = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
# The currency of a cart or simulated order's prices (POST /v1/loyalty/checkout, /simulate).
# A code orders take (a currency in use, as POST /v1/orders checks), or None.
PricesCurrency = Field(
    default=None,
    examples=["EUR"],
    description="ISO 4217 code of the prices, a currency in use as POST /v1/orders takes. "
    "Default: the program's currency. Prices in another currency earn no points (each rule "
    "that reads them says why, with 0 points) and get no coupon, points payment, member "
    "price, tier discount or free shipping, as an order placed in it would not.",
)


class EarnIn(StrictModel):
    points: int = Points
    reason: str = Field(min_length=1, max_length=500, examples=["Order O-1001"])
    order_id: str | None = Reference
    rule_id: str | None = Reference
    expires_at: AwareDatetime | None = Field(
        default=None, description="Default: the program's expiry months from now"
    )
    channel: Channel = "web"


class RedeemIn(StrictModel):
    points: int = Points
    reason: str = Field(default="Redeemed", min_length=1, max_length=500)
    order_id: str | None = Reference
    channel: Channel = "web"


class AdjustIn(StrictModel):
    points: int = Field(
        ge=-MAX_POINTS_PER_COMMAND,
        le=MAX_POINTS_PER_COMMAND,
        description="Points to add (positive) or remove (negative); not zero",
    )
    reason: str = Field(min_length=1, max_length=500, examples=["Goodwill after a late delivery"])
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustIn:
        if self.points == 0:
            raise FieldInvalid("points", "must not be zero")
        return self


class ReverseIn(StrictModel):
    """Give ``points``, or the returned value and the order's value (its earned points are
    reversed in that proportion, rounded down)."""

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
    points: int | None = Field(default=None, ge=1, le=MAX_POINTS_PER_COMMAND)
    returned_minor: MinorUnits | None = None
    order_total_minor: MinorUnits | None = None
    reason: str = Field(default="Order returned", min_length=1, max_length=500)

    @model_validator(mode="after")
    def _one_way(self) -> ReverseIn:
        by_value = self.returned_minor is not None or self.order_total_minor is not None
        if (self.points is None) == (not by_value):
            raise FieldInvalid("points", "give points, or returned_minor with order_total_minor")
        if by_value and self.returned_minor is None:
            raise FieldInvalid("returned_minor", "order_total_minor needs returned_minor")
        if by_value and not self.order_total_minor:
            raise FieldInvalid(
                "order_total_minor", "returned_minor needs a non-zero order_total_minor"
            )
        if by_value and (self.returned_minor or 0) > (self.order_total_minor or 0):
            raise FieldInvalid("returned_minor", "cannot exceed order_total_minor")
        return self


class PostedOut(StrictModel):
    transaction_id: int
    customer_id: str
    kind: str
    points: int = Field(description="Change to the available balance")
    balance: int
    debt: int
    debt_change: int
    expires_at: datetime | None
    written_off: int


class LotOut(StrictModel):
    lot_id: int
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime
    order_id: str | None


# The open lots GET /v1/loyalty/members/{id} lists, soonest to expire first.
MEMBER_LOTS = 20


class MemberOut(StrictModel):
    customer_id: str
    balance: int
    debt: int
    lots: list[LotOut] = Field(
        description=f"Open lots, soonest to expire first: at most {MEMBER_LOTS}."
    )
    more_lots: int = Field(
        default=0, description="Open lots not listed in lots (0: lots lists every one)."
    )


class MovementOut(StrictModel):
    transaction_id: int
    kind: str
    points: int
    debt_change: int
    reason: str
    order_id: str | None
    rule_id: str | None
    created_at: datetime
    by: str | None = None
    """Who made an adjustment: the admin user's login, or ``api:<key name>``."""


StatementOut = Page[MovementOut]


class CategoryWarningOut(StrictModel):
    """A rule names a category no product is in: saved, but it matches nothing yet."""

    field: str = Field(examples=["document.rules.0.exclude_categories.0"])
    detail: str


def iso_or_none(value: datetime | None) -> str | None:
    """A stored moment as the API answers it (ISO 8601 in UTC), or None."""
    return clock.as_utc(value).isoformat() if value is not None else None
