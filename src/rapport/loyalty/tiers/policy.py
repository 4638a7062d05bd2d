"""Tiers: which tier a member's qualifying spend or points earn, and when it changes.

A member qualifies by spend (minor units) or qualifying points over a rolling window. An upgrade
takes effect at once and starts a new review date one window later. A downgrade waits for the
review date and a grace period after it, so a member never loses a benefit mid-year because a
return or a quiet month dipped them under a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from rapport.platform.errors import invalid_document
from rapport.platform.schemas import StrictModel

TierId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,59}$", examples=["gold"])]


class Benefits(StrictModel):
    """What a tier gives. Other domains read these through ``loyalty.service``."""

    points_multiplier: Annotated[float, Field(ge=1, le=10)] = 1.0
    member_discount_percent: Annotated[float, Field(ge=0, le=50)] = 0.0
    free_shipping_over_minor: int | None = Field(
        default=None, ge=0, description="Free shipping from this basket total; 0 = always."
    )
    support_priority: Literal["standard", "priority", "dedicated"] = "standard"
    early_access_hours: int = Field(default=0, ge=0, le=24 * 14)


class TierDefinition(StrictModel):
    id: TierId
    name: str = Field(min_length=1, max_length=100)
    threshold: int = Field(ge=0, description="Qualifying spend (minor units) or points.")
    benefits: Benefits = Field(default_factory=Benefits)


class TierPolicy(StrictModel):
    """The tier ladder, lowest first; the first tier's threshold must be 0 (everyone's)."""

    basis: Literal["spend", "points"] = "spend"
    window_months: int = Field(default=12, ge=1, le=36)
    grace_days: int = Field(default=30, ge=0, le=365)
    tiers: list[TierDefinition] = Field(min_length=1, max_length=10)

    @field_validator("tiers")
    @classmethod
    def _ladder(cls, tiers: list[TierDefinition]) -> list[TierDefinition]:
        if tiers[0].threshold != 0:
            raise ValueError("the first tier is everyone's: its threshold must be 0")
        for lower, higher in pairwise(tiers):
            if higher.threshold <= lower.threshold:
                raise ValueError(f"thresholds must rise: {higher.id} is not above {lower.id}")
        if len({tier.id for tier in tiers}) != len(tiers):
            raise ValueError("tier ids must be unique")
        return tiers

    def tier(self, tier_id: str | None) -> TierDefinition:
        """The tier named, or the base tier for members without one."""
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        return self.tiers[0]

    def rank(self, tier_id: str | None) -> int:
        return self.tiers.index(self.tier(tier_id))

    def qualifying_tier(self, value: int) -> TierDefinition:
        """The highest tier whose threshold ``value`` reaches."""
        return [tier for tier in self.tiers if tier.threshold <= value][-1]


_POLICY = TypeAdapter(TierPolicy)


def parse_tier_policy(document: object, *, prefix: tuple[str | int, ...] = ()) -> TierPolicy:
    """A tier policy from JSON, or a 422 problem naming each bad field."""
    try:
        return _POLICY.validate_python(document)
    except ValidationError as failure:
        raise invalid_document(failure, prefix=prefix) from None


@dataclass(frozen=True, slots=True)
class TierStanding:
    tier_id: str
    since: datetime
    review_at: datetime


@dataclass(frozen=True, slots=True)
class TierChange:
    """The member's standing after a review, and what changed (``None``: nothing)."""

    standing: TierStanding
    change: Literal["upgrade", "downgrade", "renewed"] | None
    qualifying_value: int


def window_start(now: datetime, policy: TierPolicy) -> datetime:
    """Start of the rolling qualification window ending ``now`` (months of 30.44 days)."""
    return now - timedelta(days=round(policy.window_months * 30.44))


def review(
    policy: TierPolicy, current: TierStanding | None, qualifying_value: int, now: datetime
) -> TierChange:
    """Where a member stands given their qualifying value over the window ending ``now``.

    Upgrades apply at once. At or after the review date (plus the grace period) the member
    keeps the tier the window earns: the same one renewed for another window, or a lower one.
    """
    earned = policy.qualifying_tier(qualifying_value)
    next_review = now + timedelta(days=round(policy.window_months * 30.44))
    if current is None:
        return TierChange(TierStanding(earned.id, now, next_review), "upgrade", qualifying_value)
    held, reached = policy.rank(current.tier_id), policy.rank(earned.id)
    if reached > held:
        return TierChange(TierStanding(earned.id, now, next_review), "upgrade", qualifying_value)
    if now < current.review_at:
        return TierChange(current, None, qualifying_value)
    if reached == held:
        renewed = TierStanding(current.tier_id, current.since, next_review)
        return TierChange(renewed, "renewed", qualifying_value)
    if now < current.review_at + timedelta(days=policy.grace_days):
        return TierChange(current, None, qualifying_value)  # in the grace period
    return TierChange(TierStanding(earned.id, now, next_review), "downgrade", qualifying_value)


DEFAULT_TIERS: dict[str, object] = {
    "basis": "spend",
    "window_months": 12,
    "grace_days": 30,
    "tiers": [
        {
            "id": "member",
            "name": "Member",
            "threshold": 0,
            "benefits": {"free_shipping_over_minor": 9000},
        },
        {
            "id": "silver",
            "name": "Silver",
            "threshold": 50000,
            "benefits": {
                "points_multiplier": 1.25,
                "member_discount_percent": 5,
                "free_shipping_over_minor": 4500,
                "support_priority": "priority",
                "early_access_hours": 24,
            },
        },
        {
            "id": "gold",
            "name": "Gold",
            "threshold": 150000,
            "benefits": {
                "points_multiplier": 1.5,
                "member_discount_percent": 10,
                "free_shipping_over_minor": 0,
                "support_priority": "dedicated",
                "early_access_hours": 48,
            },
        },
    ],
}
