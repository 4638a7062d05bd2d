"""A member's tier and benefits over HTTP: ``GET /v1/loyalty/members/{customer_id}/tier`` (the
tier, its benefits, the next review and the history) and ``…/benefits`` (the better of the
tier's and the paid plan's benefits).

Included by ``loyalty.api`` under its ``/v1/loyalty`` prefix.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter

from rapport.customers import service as customers
from rapport.loyalty.benefits import member_benefits as benefits_of
from rapport.loyalty.tiers.standing import member_tier as tier_of
from rapport.loyalty.tiers.standing import tier_history
from rapport.platform.auth import ReadKey
from rapport.platform.db import DbSession
from rapport.platform.schemas import StrictModel

router = APIRouter(tags=["loyalty program"])


class BenefitsOut(StrictModel):
    points_multiplier: float
    member_discount_percent: float
    free_shipping_over_minor: int | None
    support_priority: str
    early_access_hours: int


class TierOut(StrictModel):
    customer_id: str
    tier_id: str
    tier_name: str
    since: datetime | None
    review_at: datetime | None
    qualifying_value: int
    benefits: BenefitsOut
    history: list[dict[str, Any]]


@router.get("/members/{customer_id}/tier", response_model=TierOut)
def member_tier(customer_id: customers.CustomerRefPath, db: DbSession, _key: ReadKey) -> TierOut:
    """The member's tier, its benefits, the next review date and the tier history."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    tier = tier_of(db, customer_id=customer_id)
    return TierOut(
        customer_id=customer_id,
        tier_id=tier.tier_id,
        tier_name=tier.tier_name,
        since=tier.since,
        review_at=tier.review_at,
        qualifying_value=tier.qualifying_value,
        benefits=BenefitsOut(**tier.benefits.model_dump()),
        history=tier_history(db, customer_id=customer_id),
    )


class MemberBenefitsOut(StrictModel):
    tier_id: str
    paying_plan: str | None
    points_multiplier: float
    member_discount_percent: float
    free_shipping_over_minor: int | None
    member_prices: bool
    support_priority: str
    early_access_hours: int


@router.get("/members/{customer_id}/benefits", response_model=MemberBenefitsOut)
def member_benefits(
    customer_id: customers.CustomerRefPath, db: DbSession, _key: ReadKey
) -> MemberBenefitsOut:
    """What the customer's tier and paid plan give them now (the better of the two): for the
    shop's shipping, support's queue and early-access sales."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    return MemberBenefitsOut(**asdict(benefits_of(db, customer_id=customer_id)))
