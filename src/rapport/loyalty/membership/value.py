"""A paying member's value statement: the fees paid for periods in a window against what the
plan saved them on orders placed in it (member prices, free shipping)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.membership.lifecycle import get_membership
from rapport.loyalty.models import AppliedCheckout, MembershipPayment
from rapport.platform import clock
from rapport.platform.errors import InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class ValueStatement:
    """What a paying member paid and saved over a period."""

    customer_id: str
    plan_id: str | None
    period_start: datetime
    period_end: datetime
    fee_paid_minor: int
    savings_minor: int  # plan savings: member prices, free shipping
    orders_with_savings: int
    currency: str | None

    @property
    def net_minor(self) -> int:
        """Savings less the fee: positive when the plan paid for itself."""
        return self.savings_minor - self.fee_paid_minor


def value_statement(
    db: Session,
    *,
    customer_id: str,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> ValueStatement:
    """Fees paid for periods starting within [start, end) against what the plan saved on
    orders placed within it. Without dates: the membership's current period."""
    membership = get_membership(db, customer_id=customer_id)
    if period_start is None or period_end is None:
        if membership is None:
            raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
        period_start = period_start or clock.as_utc(membership.current_period_start)
        period_end = period_end or clock.as_utc(membership.current_period_end)
    if period_end <= period_start:
        raise InvalidInput("period_end must be after period_start", field="period_end")
    fee, currency = db.execute(
        select(
            func.coalesce(func.sum(MembershipPayment.amount_minor), 0),
            func.max(MembershipPayment.currency),
        ).where(
            MembershipPayment.customer_id == customer_id,
            MembershipPayment.period_start >= period_start,
            MembershipPayment.period_start < period_end,
        )
    ).one()
    saved, orders_count = db.execute(
        select(
            func.coalesce(func.sum(AppliedCheckout.plan_savings_minor), 0),
            func.count().filter(AppliedCheckout.plan_savings_minor > 0),
        ).where(
            AppliedCheckout.customer_id == customer_id,
            AppliedCheckout.placed_at >= period_start,
            AppliedCheckout.placed_at < period_end,
        )
    ).one()
    return ValueStatement(
        customer_id=customer_id,
        plan_id=membership.plan_id if membership is not None else None,
        period_start=period_start,
        period_end=period_end,
        fee_paid_minor=int(fee),
        savings_minor=int(saved),
        orders_with_savings=int(orders_count),
        currency=currency,
    )
