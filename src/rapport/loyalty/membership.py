"""Paid membership: plans, joining, renewal, cancellation and lapse, the member's value
statement, and the program analytics that compare paying, free and non-members.

A membership is ``active`` from the moment the member joins (benefits at once) and renews
itself at the end of each period; the renewal job records each period's fee once (a unique
index on membership and period start makes a second run a no-op). A cancelled membership
keeps its benefits until the paid period ends, then the job marks it ``lapsed``. Fees are
revenue (:class:`MembershipPayment` rows), never points.

Commands own their transaction and commit, like the ledger's verbs; ``before_commit`` lets
the idempotency layer store its answer in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import append_event
from rapport.loyalty.models import (
    AppliedCheckout,
    LoyaltyAccount,
    Membership,
    MembershipPayment,
    MembershipPlan,
    TierStanding,
)
from rapport.loyalty.service import add_months
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound

PERIODS = ("month", "year")
PERIOD_MONTHS = {"month": 1, "year": 12}
MAX_FEE_MINOR = 100_000_000
# Catch-up limit for one membership in one job run (a worker that was down for years should
# not loop forever); the next run carries on.
MAX_RENEWALS_PER_RUN = 24

MAX_ANALYTICS_WINDOW = timedelta(days=3653)

MembershipHook = Callable[[Session, Membership], None]


def period_end(start: datetime, period: str) -> datetime:
    """The end of a period of ``period`` ('month' or 'year') starting at ``start``."""
    return add_months(start, PERIOD_MONTHS[period])


# ------------------------------------------------------------------------------ plans


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
    free_shipping: bool = True,
    member_prices: bool = True,
    early_access_hours: int = 48,
    points_multiplier: float = 1.0,
    active: bool = True,
) -> MembershipPlan:
    """Create the plan or change it. A changed fee applies from each member's next renewal;
    a retired plan (``active`` false) takes no new members and does not renew."""
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
    if plan is None:
        plan = MembershipPlan(plan_id=plan_id, created_at=clock.now())
        db.add(plan)
    elif plan.period != period and _has_memberships(db, plan_id):
        db.rollback()
        raise Conflict(
            "A plan with members cannot change its period; create a new plan", field="period"
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


# ------------------------------------------------------------------------------ lifecycle


def get_membership(db: Session, *, customer_id: str) -> Membership | None:
    """The customer's membership that is not lapsed, else their most recent one."""
    return db.scalar(
        select(Membership)
        .where(Membership.customer_id == customer_id)
        .order_by((Membership.status == "lapsed").asc(), Membership.id.desc())
        .limit(1)
    )


def _is_current(membership: Membership, at: datetime) -> bool:
    if clock.as_utc(membership.started_at) > at:
        return False
    end = clock.as_utc(membership.current_period_end)
    if membership.status == "active":
        # An auto-renewing membership past its period end keeps its benefits until the
        # renewal job has charged the next period (which it dates from the old end).
        return membership.auto_renew or at < end
    return membership.status == "cancelled" and at < end


def current_membership(
    db: Session, *, customer_id: str, at: datetime | None = None
) -> Membership | None:
    """The membership giving the customer benefits at ``at`` (default now), if any."""
    moment = at or clock.now()
    membership = db.scalar(
        select(Membership).where(
            Membership.customer_id == customer_id, Membership.status != "lapsed"
        )
    )
    if membership is None or not _is_current(membership, moment):
        return None
    return membership


def current_plan(
    db: Session, *, customer_id: str, at: datetime | None = None
) -> MembershipPlan | None:
    """The paid plan whose benefits the customer has at ``at`` (default now): an active
    membership, or a cancelled one still inside the period already paid for."""
    membership = current_membership(db, customer_id=customer_id, at=at)
    return db.get(MembershipPlan, membership.plan_id) if membership is not None else None


def _record_payment(
    db: Session, membership: Membership, plan: MembershipPlan, start: datetime, end: datetime
) -> MembershipPayment:
    payment = MembershipPayment(
        membership_id=membership.id,
        customer_id=membership.customer_id,
        plan_id=plan.plan_id,
        amount_minor=plan.fee_minor,
        currency=plan.currency,
        period_start=start,
        period_end=end,
        paid_at=clock.now(),
    )
    db.add(payment)
    return payment


def join(
    db: Session,
    *,
    customer_id: str,
    plan_id: str,
    auto_renew: bool = True,
    channel: str = "web",
    before_commit: MembershipHook | None = None,
) -> Membership:
    """Start a paid membership now: benefits from this moment, the first period's fee
    recorded as revenue. A customer has at most one membership that is not lapsed."""
    customer = customers.get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    if customer.status != "active":
        raise InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    customer_id = customer.customer_id  # a merged profile joins as the survivor
    plan = db.get(MembershipPlan, plan_id)
    if plan is None:
        raise NotFound(f"No plan {plan_id!r}", field="plan_id")
    if not plan.active:
        raise InvalidInput(f"Plan {plan_id!r} takes no new members", field="plan_id")
    existing = db.scalar(
        select(Membership).where(
            Membership.customer_id == customer_id, Membership.status != "lapsed"
        )
    )
    if existing is not None:
        raise Conflict(
            f"Customer {customer_id!r} already has a {existing.status} membership "
            f"of plan {existing.plan_id!r}",
            field="customer_id",
        )
    now = clock.now()
    end = period_end(now, plan.period)
    membership = Membership(
        customer_id=customer_id,
        plan_id=plan.plan_id,
        status="active",
        started_at=now,
        current_period_start=now,
        current_period_end=end,
        auto_renew=auto_renew,
    )
    try:
        db.add(membership)
        db.flush()
    except IntegrityError:
        db.rollback()  # the partial unique index: a concurrent join won
        raise Conflict(
            f"Customer {customer_id!r} already has a membership", field="customer_id"
        ) from None
    _record_payment(db, membership, plan, now, end)
    append_event(
        db,
        type="membership_joined",
        channel=channel,
        customer_id=customer_id,
        properties={
            "plan_id": plan.plan_id,
            "fee_minor": plan.fee_minor,
            "currency": plan.currency,
            "period_end": end.isoformat(),
        },
    )
    if before_commit is not None:
        db.flush()
        before_commit(db, membership)
    db.commit()
    return membership


def cancel(
    db: Session,
    *,
    customer_id: str,
    channel: str = "web",
    before_commit: MembershipHook | None = None,
) -> Membership:
    """Stop renewal. Benefits stay until the paid period ends; the renewal job then marks
    the membership lapsed. Cancelling a cancelled membership changes nothing."""
    membership = db.scalar(
        select(Membership)
        .where(Membership.customer_id == customer_id, Membership.status != "lapsed")
        .with_for_update()
    )
    if membership is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no membership to cancel", field="customer_id")
    if membership.status == "active":
        now = clock.now()
        membership.status = "cancelled"
        membership.auto_renew = False
        membership.cancelled_at = now
        append_event(
            db,
            type="membership_cancelled",
            channel=channel,
            customer_id=membership.customer_id,
            properties={
                "plan_id": membership.plan_id,
                "benefits_until": clock.as_utc(membership.current_period_end).isoformat(),
            },
        )
    if before_commit is not None:
        db.flush()
        before_commit(db, membership)
    db.commit()
    return membership


def _lapse(db: Session, membership: Membership, *, at: datetime, reason: str) -> None:
    membership.status = "lapsed"
    membership.auto_renew = False
    membership.ended_at = at
    append_event(
        db,
        type="membership_lapsed",
        channel="web",
        customer_id=membership.customer_id,
        properties={"plan_id": membership.plan_id, "reason": reason},
    )


def lapse(db: Session, *, customer_id: str, reason: str = "ended by staff") -> Membership:
    """End the customer's membership now (benefits stop at once), e.g. a refused payment."""
    membership = db.scalar(
        select(Membership)
        .where(Membership.customer_id == customer_id, Membership.status != "lapsed")
        .with_for_update()
    )
    if membership is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
    _lapse(db, membership, at=clock.now(), reason=reason)
    db.commit()
    return membership


@dataclass(frozen=True, slots=True)
class RenewalRun:
    renewed_periods: int = 0
    lapsed: int = 0


def renew_due(db: Session, *, now: datetime | None = None, batch: int = 200) -> RenewalRun:
    """Renew every auto-renewing membership whose period has ended (one payment per period,
    dated from the old period's end, catching up missed periods) and lapse the cancelled
    and non-renewing ones. Committed a batch at a time; safe to run twice or in two workers
    at once: each period's payment is unique, and a period moves on only from the end it
    was read at."""
    moment = now or clock.now()
    renewed = lapsed = 0
    after = 0
    while True:
        due = list(
            db.scalars(
                select(Membership)
                .where(
                    Membership.status != "lapsed",
                    Membership.current_period_end <= moment,
                    Membership.id > after,
                )
                .order_by(Membership.id)
                .limit(batch)
            )
        )
        if not due:
            db.commit()
            return RenewalRun(renewed_periods=renewed, lapsed=lapsed)
        for membership in due:
            plan = db.get(MembershipPlan, membership.plan_id)
            if membership.status != "active" or not membership.auto_renew or plan is None:
                reason = "cancelled" if membership.status == "cancelled" else "not renewed"
                lapsed += _lapse_at_period_end(db, membership, reason=reason)
            elif not plan.active:
                lapsed += _lapse_at_period_end(db, membership, reason="plan retired")
            else:
                renewed += _renew(db, membership, plan, moment)
        db.commit()
        after = due[-1].id


def _lapse_at_period_end(db: Session, membership: Membership, *, reason: str) -> int:
    end = clock.as_utc(membership.current_period_end)
    claimed = db.execute(
        update(Membership)
        .where(
            Membership.id == membership.id,
            Membership.status != "lapsed",
            Membership.current_period_end == membership.current_period_end,
        )
        .values(status="lapsed", auto_renew=False, ended_at=end)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return 0  # another worker got there first
    db.refresh(membership)
    append_event(
        db,
        type="membership_lapsed",
        channel="web",
        customer_id=membership.customer_id,
        occurred_at=end,
        properties={"plan_id": membership.plan_id, "reason": reason},
    )
    return 1


def _renew(db: Session, membership: Membership, plan: MembershipPlan, moment: datetime) -> int:
    periods = 0
    while periods < MAX_RENEWALS_PER_RUN:
        start = clock.as_utc(membership.current_period_end)
        if start > moment:
            break
        end = period_end(start, plan.period)
        moved = db.execute(
            update(Membership)
            .where(
                Membership.id == membership.id,
                Membership.status == "active",
                Membership.current_period_end == membership.current_period_end,
            )
            .values(current_period_start=start, current_period_end=end)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            break  # cancelled meanwhile, or another worker renewed it
        try:
            with db.begin_nested():
                _record_payment(db, membership, plan, start, end)
        except IntegrityError:
            pass  # this period was already paid: the unique index keeps one payment
        db.refresh(membership)
        append_event(
            db,
            type="membership_renewed",
            channel="web",
            customer_id=membership.customer_id,
            properties={
                "plan_id": plan.plan_id,
                "fee_minor": plan.fee_minor,
                "currency": plan.currency,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
            },
        )
        periods += 1
    return periods


def payments(db: Session, *, customer_id: str) -> list[MembershipPayment]:
    return list(
        db.scalars(
            select(MembershipPayment)
            .where(MembershipPayment.customer_id == customer_id)
            .order_by(MembershipPayment.period_start, MembershipPayment.id)
        )
    )


# ------------------------------------------------------------------------------ value


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


# ------------------------------------------------------------------------------ analytics

Segment = Literal["paying", "free", "non_member"]
SEGMENTS: tuple[Segment, ...] = ("paying", "free", "non_member")


@dataclass(frozen=True, slots=True)
class SegmentStats:
    segment: Segment
    customers: int
    buyers: int  # customers with at least one order in the window
    orders: int
    spend_minor: int
    spend_per_customer_minor: int
    orders_per_customer: float
    # Of the segment's customers who bought in the window before, the share who bought again.
    previous_buyers: int
    retained: int

    @property
    def retention(self) -> float | None:
        return self.retained / self.previous_buyers if self.previous_buyers else None


@dataclass(frozen=True, slots=True)
class ProgramAnalytics:
    since: datetime
    until: datetime
    segments: list[SegmentStats]


def paying_members(db: Session, *, at: datetime | None = None) -> set[str]:
    """Customers with a paid plan's benefits at ``at``."""
    moment = at or clock.now()
    return {
        membership.customer_id
        for membership in db.scalars(select(Membership).where(Membership.status != "lapsed"))
        if _is_current(membership, moment)
    }


def free_members(db: Session, *, exclude: Iterable[str] = ()) -> set[str]:
    """Customers in the program without a plan: a points account or a tier standing."""
    with_points = db.scalars(
        select(LoyaltyAccount.customer_id).where(
            LoyaltyAccount.kind == "member", LoyaltyAccount.customer_id.is_not(None)
        )
    )
    with_tier = db.scalars(select(TierStanding.customer_id))
    found = {c for c in with_points if c is not None} | set(with_tier)
    return found - set(exclude)


def program_analytics(
    db: Session, *, since: datetime | None = None, until: datetime | None = None
) -> ProgramAnalytics:
    """Paying members vs free members vs non-members over [since, until) (default: the last
    90 days): customers, spend and orders per customer, and retention against the window of
    the same length before. Members are counted as they stand at ``until``. Orders come
    from the orders domain's read function."""
    until = until or clock.now()
    since = since or until - timedelta(days=90)
    if until <= since:
        raise InvalidInput("until must be after since", field="until")
    if until - since > MAX_ANALYTICS_WINDOW or since.year < 1971:
        raise InvalidInput("The window is at most ten years, from 1971 on", field="since")
    paying = paying_members(db, at=until)
    free = free_members(db, exclude=paying)
    known = customers.count_customers(db)
    window = orders.order_totals_by_customer(db, since=since, until=until)
    before = orders.order_totals_by_customer(db, since=since - (until - since), until=since)

    def segment_of(customer_id: str) -> Segment:
        if customer_id in paying:
            return "paying"
        return "free" if customer_id in free else "non_member"

    counts: dict[Segment, int] = {
        "paying": len(paying),
        "free": len(free),
        "non_member": max(known - len(paying) - len(free), 0),
    }
    buyers = dict.fromkeys(SEGMENTS, 0)
    order_count = dict.fromkeys(SEGMENTS, 0)
    spend = dict.fromkeys(SEGMENTS, 0)
    for customer_id, totals in window.items():
        segment = segment_of(customer_id)
        buyers[segment] += 1
        order_count[segment] += totals.orders
        spend[segment] += totals.spend_minor
    previous = dict.fromkeys(SEGMENTS, 0)
    retained = dict.fromkeys(SEGMENTS, 0)
    for customer_id in before:
        segment = segment_of(customer_id)
        previous[segment] += 1
        retained[segment] += customer_id in window
    return ProgramAnalytics(
        since=since,
        until=until,
        segments=[
            SegmentStats(
                segment=segment,
                customers=counts[segment],
                buyers=buyers[segment],
                orders=order_count[segment],
                spend_minor=spend[segment],
                spend_per_customer_minor=spend[segment] // counts[segment]
                if counts[segment]
                else 0,
                orders_per_customer=round(order_count[segment] / counts[segment], 3)
                if counts[segment]
                else 0.0,
                previous_buyers=previous[segment],
                retained=retained[segment],
            )
            for segment in SEGMENTS
        ],
    )
