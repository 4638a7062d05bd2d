"""What a customer's tier and paid plan give them now (``member_benefits``), read by other
domains through ``loyalty.service``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import MembershipPlan
from rapport.loyalty.tiers.standing import member_tier


@dataclass(frozen=True, slots=True)
class MemberBenefits:
    """What a customer's tier and paid plan give them now: read by other domains (support
    queues by ``support_priority``, campaigns by ``early_access_hours``, shipping)."""

    tier_id: str
    paying_plan: str | None
    points_multiplier: float
    member_discount_percent: float
    free_shipping_over_minor: int | None  # 0: always free; None: never
    member_prices: bool
    support_priority: str
    early_access_hours: int


def better_multiplier(tier_multiplier: float, plan: MembershipPlan | None) -> float:
    """The points multiplier a member earns at: the better of their tier's and their paid
    plan's (the one :func:`rapport.loyalty.membership.lifecycle.current_plan` finds)."""
    return max(tier_multiplier, plan.points_multiplier if plan is not None else 1.0)


def points_multiplier(
    db: Session, *, customer_id: str, tier_multiplier: float, at: datetime | None = None
) -> float:
    """:func:`better_multiplier` with the plan the customer has at ``at`` (default now):
    what earning, its simulation and the checkout preview multiply a purchase's points by."""
    return multiplier_and_source(
        db, customer_id=customer_id, tier_multiplier=tier_multiplier, at=at
    )[0]


def multiplier_and_source(
    db: Session, *, customer_id: str, tier_multiplier: float, at: datetime | None = None
) -> tuple[float, str | None]:
    """:func:`points_multiplier` and, where the paid plan's multiplier won over the tier's,
    the plan's name ("Gold Club"); None where the tier's is the one (or they are equal)."""
    plan = memberships.current_plan(db, customer_id=customer_id, at=at)
    return multiplier_with_plan(tier_multiplier, plan)


def multiplier_with_plan(
    tier_multiplier: float, plan: MembershipPlan | None
) -> tuple[float, str | None]:
    """:func:`multiplier_and_source` for a given plan (or none): what the rule simulator
    uses for a plan chosen on its form, so it multiplies as earning does."""
    better = better_multiplier(tier_multiplier, plan)
    won = plan is not None and plan.points_multiplier > tier_multiplier
    return better, (plan.name if won and plan is not None else None)


def member_benefits(db: Session, *, customer_id: str) -> MemberBenefits:
    """The better of the tier's and the paid plan's benefits for ``customer_id``."""
    tier = member_tier(db, customer_id=customer_id)
    plan = memberships.current_plan(db, customer_id=customer_id)
    benefits = tier.benefits
    free_shipping = (
        0 if plan is not None and plan.free_shipping else benefits.free_shipping_over_minor
    )
    return MemberBenefits(
        tier_id=tier.tier_id,
        paying_plan=plan.plan_id if plan is not None else None,
        points_multiplier=better_multiplier(benefits.points_multiplier, plan),
        member_discount_percent=benefits.member_discount_percent,
        free_shipping_over_minor=free_shipping,
        member_prices=bool(plan is not None and plan.member_prices),
        support_priority=benefits.support_priority,
        early_access_hours=max(
            benefits.early_access_hours, plan.early_access_hours if plan is not None else 0
        ),
    )
