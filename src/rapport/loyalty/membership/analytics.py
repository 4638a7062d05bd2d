"""Program analytics: paying members vs free members vs non-members over a window (customers,
spend and orders per customer, retention against the window before)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.membership.lifecycle import paying_members
from rapport.loyalty.models import LoyaltyAccount, TierStanding
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

MAX_ANALYTICS_WINDOW = timedelta(days=3653)


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
