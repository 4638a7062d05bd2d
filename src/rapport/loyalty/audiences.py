"""Loyalty as audiences: SELECTs of customer ids by tier, paid membership and points balance,
for other domains to nest as subqueries (campaigns' segments)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.models import LoyaltyAccount, Membership, TierStanding
from rapport.loyalty.program.versions import tier_policy


def tier_audience(db: Session, *, tier_ids: Sequence[str]) -> customers.CustomerIds:
    """Customers in one of ``tier_ids`` now. The ladder's first (base) tier holds everyone
    without a standing, as ``member_tier`` says; unknown tier ids hold no one."""
    wanted = list(dict.fromkeys(tier_ids))
    if not wanted:
        return customers.as_customer_ids(select(TierStanding.customer_id).where(false()))
    base = tier_policy(db).tiers[0].id
    with_standing = customers.as_customer_ids(
        select(TierStanding.customer_id).where(TierStanding.tier_id.in_(wanted))
    )
    if base not in wanted:
        return with_standing
    everyone_with_one = customers.as_customer_ids(select(TierStanding.customer_id))
    without_standing = customers.active_audience(excluding=everyone_with_one)
    return customers.any_of([with_standing, without_standing])


def membership_audience(
    *, now: datetime, plan_ids: Sequence[str] | None = None
) -> customers.CustomerIds:
    """Paying members at ``now`` (of one of ``plan_ids`` when given): an active membership, or
    a cancelled one still inside the period paid for, as ``current_plan`` decides."""
    current = and_(
        Membership.status != "lapsed",
        Membership.started_at <= now,
        or_(
            and_(
                Membership.status == "active",
                or_(Membership.auto_renew.is_(True), Membership.current_period_end > now),
            ),
            and_(Membership.status == "cancelled", Membership.current_period_end > now),
        ),
    )
    query = select(Membership.customer_id).where(current)
    if plan_ids is not None:
        query = query.where(Membership.plan_id.in_(list(plan_ids)))
    return customers.as_customer_ids(query)


def points_audience(
    *, at_least: int | None = None, at_most: int | None = None
) -> customers.CustomerIds:
    """Members whose available points balance lies in the given inclusive range."""
    query = select(LoyaltyAccount.customer_id).where(
        LoyaltyAccount.kind == "member", LoyaltyAccount.customer_id.is_not(None)
    )
    if at_least is not None:
        query = query.where(LoyaltyAccount.balance >= at_least)
    if at_most is not None:
        query = query.where(LoyaltyAccount.balance <= at_most)
    return customers.as_customer_ids(query)
