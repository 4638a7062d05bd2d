"""A paying member's value statement: the fees paid for periods in a window against what the
plan saved them on orders placed in it (member prices, free shipping), in the plan's currency;
money in another currency is shown apart, never subtracted across currencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.membership.lifecycle import get_membership
from rapport.loyalty.models import AppliedCheckout, MembershipPayment, MembershipPlan
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class CurrencyValue:
    """Fees paid and plan savings in one currency other than the statement's: shown apart,
    never added to or subtracted from another currency's."""

    currency: str
    fee_paid_minor: int
    savings_minor: int


@dataclass(frozen=True, slots=True)
class ValueStatement:
    """What a paying member paid and saved over a period, in the plan's currency: fees paid
    and savings on orders placed in that currency. Fees and savings in any other currency
    (an order placed in EUR against a JPY plan) are in ``other_currencies``, each apart."""

    customer_id: str
    plan_id: str | None
    period_start: datetime
    period_end: datetime
    fee_paid_minor: int
    savings_minor: int  # plan savings: member prices, free shipping, in ``currency``
    orders_with_savings: int
    currency: str | None
    other_currencies: tuple[CurrencyValue, ...] = ()

    @property
    def net_minor(self) -> int:
        """Savings less the fee, both in ``currency``: positive when the plan paid for
        itself."""
        return self.savings_minor - self.fee_paid_minor


def value_statement(
    db: Session,
    *,
    customer_id: str,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
) -> ValueStatement:
    """Fees paid for periods starting within [start, end) against what the plan saved on
    orders placed within it, in the plan's currency (each order's currency is the orders
    domain's); other currencies are counted apart; an order cancelled since saved nothing.
    Without dates: the membership's current period."""
    membership = get_membership(db, customer_id=customer_id)
    if period_start is None or period_end is None:
        if membership is None:
            raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
        period_start = period_start or clock.as_utc(membership.current_period_start)
        period_end = period_end or clock.as_utc(membership.current_period_end)
    if period_end <= period_start:
        raise InvalidInput("period_end must be after period_start", field="period_end")
    fees: dict[str, int] = {
        currency: int(paid)
        for currency, paid in db.execute(
            select(MembershipPayment.currency, func.sum(MembershipPayment.amount_minor))
            .where(
                MembershipPayment.customer_id == customer_id,
                MembershipPayment.period_start >= period_start,
                MembershipPayment.period_start < period_end,
            )
            .group_by(MembershipPayment.currency)
        )
    }
    savings: dict[str, int] = {}
    orders_with_savings: dict[str, int] = {}
    for order_id, saved in db.execute(
        select(AppliedCheckout.order_id, AppliedCheckout.plan_savings_minor).where(
            AppliedCheckout.customer_id == customer_id,
            AppliedCheckout.placed_at >= period_start,
            AppliedCheckout.placed_at < period_end,
            AppliedCheckout.plan_savings_minor > 0,
        )
    ):
        order = orders.get_order(db, order_id=order_id)
        if order is None:  # the order is gone (erased): its currency is unknown
            continue
        if order.status == "cancelled":  # called off before it was handed over: no saving
            continue
        savings[order.currency] = savings.get(order.currency, 0) + int(saved)
        orders_with_savings[order.currency] = orders_with_savings.get(order.currency, 0) + 1
    plan = db.get(MembershipPlan, membership.plan_id) if membership is not None else None
    currency = plan.currency if plan is not None else max(fees, default=None)
    others = sorted((set(fees) | set(savings)) - {currency})
    return ValueStatement(
        customer_id=customer_id,
        plan_id=membership.plan_id if membership is not None else None,
        period_start=period_start,
        period_end=period_end,
        fee_paid_minor=fees.get(currency, 0) if currency else 0,
        savings_minor=savings.get(currency, 0) if currency else 0,
        orders_with_savings=orders_with_savings.get(currency, 0) if currency else 0,
        currency=currency,
        other_currencies=tuple(
            CurrencyValue(
                currency=other,
                fee_paid_minor=fees.get(other, 0),
                savings_minor=savings.get(other, 0),
            )
            for other in others
        ),
    )
