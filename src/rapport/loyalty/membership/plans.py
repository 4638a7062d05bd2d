"""Membership plans: what a paid plan costs, for how long, and what it gives (free shipping,
member prices, early access, a points multiplier); creating, changing and retiring them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.settings import add_months
from rapport.loyalty.models import Membership, MembershipPlan
from rapport.platform import clock, formatting
from rapport.platform.errors import Conflict, InvalidInput

PERIODS = ("month", "year")


PERIOD_MONTHS = {"month": 1, "year": 12}


MAX_FEE_MINOR = 100_000_000


def period_end(start: datetime, period: str) -> datetime:
    """The end of a period of ``period`` ('month' or 'year') starting at ``start``."""
    return add_months(start, PERIOD_MONTHS[period])


def _check_plan(
    *,
    plan_id: str,
    name: str,
    fee_minor: int,
    currency: str,
    period: str,
    early_access_hours: int,
    points_multiplier: float,
) -> None:
    if not plan_id or len(plan_id) > 60 or not all(c.isalnum() or c in "-_." for c in plan_id):
        raise InvalidInput("plan_id must be 1-60 letters, digits, '-', '_' or '.'", field="plan_id")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("name must be 1-100 characters", field="name")
    if isinstance(fee_minor, bool) or not isinstance(fee_minor, int):
        raise InvalidInput("fee_minor must be a whole number of minor units", field="fee_minor")
    if not 0 <= fee_minor <= MAX_FEE_MINOR:
        raise InvalidInput(f"fee_minor must be between 0 and {MAX_FEE_MINOR}", field="fee_minor")
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise InvalidInput("currency must be a three-letter ISO 4217 code", field="currency")
    if period not in PERIODS:
        raise InvalidInput("period must be 'month' or 'year'", field="period")
    if not 0 <= early_access_hours <= 24 * 90:
        raise InvalidInput(
            "early_access_hours must be between 0 and 2160", field="early_access_hours"
        )
    if not 1.0 <= points_multiplier <= 10.0:
        raise InvalidInput("points_multiplier must be between 1 and 10", field="points_multiplier")


def save_plan(
    db: Session,
    *,
    plan_id: str,
    name: str,
    fee_minor: int,
    currency: str,
    period: str,
    free_shipping: bool = False,
    member_prices: bool = False,
    early_access_hours: int = 0,
    points_multiplier: float = 1.0,
    active: bool = True,
) -> MembershipPlan:
    """Create the plan or change it; a benefit not given is off (no free shipping, no member
    prices, no early access, points x1). A changed fee applies from each member's next renewal;
    a retired plan (``active`` false) takes no new members and does not renew. A new or
    changed currency must be one in use (``formatting.currencies``); a plan with members
    keeps its period and its currency (409 naming the field)."""
    _check_plan(
        plan_id=plan_id,
        name=name,
        fee_minor=fee_minor,
        currency=currency,
        period=period,
        early_access_hours=early_access_hours,
        points_multiplier=points_multiplier,
    )
    plan = db.get(MembershipPlan, plan_id)
    if (plan is None or plan.currency != currency) and currency not in formatting.currencies():
        # a plan's own currency, kept, is not refused even if it has been withdrawn since
        raise InvalidInput(
            f"currency: {currency!r} is not the ISO 4217 code of a currency in use, such as "
            "EUR, GBP or USD",
            field="currency",
        )
    if plan is None:
        plan = MembershipPlan(plan_id=plan_id, created_at=clock.now())
        db.add(plan)
    elif (plan.period, plan.currency) != (period, currency) and _has_memberships(db, plan_id):
        # its members joined at this period and pay in this currency: a change would bill them
        # on other terms, and add fees in two currencies
        db.rollback()
        if plan.period != period:
            raise Conflict(
                "A plan with members cannot change its period; create a new plan", field="period"
            )
        raise Conflict(
            f"A plan with members cannot change its currency (its members pay in "
            f"{plan.currency}); keep {plan.currency}, or create a new plan in {currency}",
            field="currency",
        )
    plan.name = name.strip()
    plan.fee_minor = fee_minor
    plan.currency = currency
    plan.period = period
    plan.free_shipping = free_shipping
    plan.member_prices = member_prices
    plan.early_access_hours = early_access_hours
    plan.points_multiplier = points_multiplier
    plan.active = active
    db.commit()
    return plan


def _has_memberships(db: Session, plan_id: str) -> bool:
    return (
        db.scalar(select(Membership.id).where(Membership.plan_id == plan_id).limit(1)) is not None
    )


def get_plan(db: Session, *, plan_id: str) -> MembershipPlan | None:
    return db.get(MembershipPlan, plan_id)


def list_plans(db: Session, *, active_only: bool = False) -> list[MembershipPlan]:
    query = select(MembershipPlan).order_by(MembershipPlan.fee_minor, MembershipPlan.plan_id)
    if active_only:
        query = query.where(MembershipPlan.active.is_(True))
    return list(db.scalars(query))
