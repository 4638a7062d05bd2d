"""Reads for the loyalty admin pages: points issued, redeemed and expired month by month,
breakage, the member list a page at a time (filtered by tier, balance and a set of customers),
and a member's standing on the way to the next tier. Reads only."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.tables import ACCOUNTS, LOTS, TRANSACTIONS
from rapport.loyalty.models import Coupon, TierStanding
from rapport.loyalty.program.versions import tier_policy
from rapport.loyalty.tiers.standing import member_tier
from rapport.platform import clock


@dataclass(frozen=True, slots=True)
class MonthFlows:
    """Points that moved in one calendar month (UTC): issued (earned and added by staff),
    redeemed and expired, each a positive number of points."""

    month: str  # "2026-03"
    issued: int
    redeemed: int
    expired: int


def _month_start(moment: datetime, back: int) -> datetime:
    year, month = moment.year, moment.month - back
    while month <= 0:
        month += 12
        year -= 1
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def month_labels(months: int, *, now: datetime | None = None) -> list[str]:
    moment = now or clock.now()
    return [_month_start(moment, back).strftime("%Y-%m") for back in range(months - 1, -1, -1)]


def monthly_flows(
    db: Session, *, months: int = 24, now: datetime | None = None
) -> list[MonthFlows]:
    """The last ``months`` calendar months, oldest first, this month included."""
    moment = now or clock.now()
    since = _month_start(moment, months - 1)
    if db.get_bind().dialect.name == "postgresql":
        # the UTC month whatever the session's time zone (to_char reads a timestamptz in it)
        month = func.to_char(func.timezone("UTC", TRANSACTIONS.c.created_at), "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", TRANSACTIONS.c.created_at)
    rows = db.execute(
        select(month, TRANSACTIONS.c.kind, func.sum(TRANSACTIONS.c.points))
        .where(
            TRANSACTIONS.c.created_at >= since,
            TRANSACTIONS.c.kind.in_(("earn", "adjust", "redeem", "refund", "expire")),
            # a staff correction that removed points is not "issued"
            (TRANSACTIONS.c.kind != "adjust") | (TRANSACTIONS.c.points > 0),
        )
        .group_by(month, TRANSACTIONS.c.kind)
    ).all()
    totals: dict[str, dict[str, int]] = {}
    for label, kind, points in rows:
        bucket = totals.setdefault(str(label), {"issued": 0, "redeemed": 0, "expired": 0})
        if kind in ("earn", "adjust"):
            bucket["issued"] += int(points or 0)
        elif kind in ("redeem", "refund"):  # points a return gave back were not spent
            bucket["redeemed"] += -int(points or 0)
        else:
            bucket["expired"] += -int(points or 0)
    return [
        MonthFlows(
            month=label,
            issued=totals.get(label, {}).get("issued", 0),
            redeemed=totals.get(label, {}).get("redeemed", 0),
            expired=totals.get(label, {}).get("expired", 0),
        )
        for label in month_labels(months, now=moment)
    ]


@dataclass(frozen=True, slots=True)
class LifetimeFlows:
    issued: int
    redeemed: int
    expired: int

    @property
    def breakage(self) -> float | None:
        """The share of issued points that expired unused (None before any were issued)."""
        return self.expired / self.issued if self.issued else None

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.issued if self.issued else None


def lifetime_flows(db: Session) -> LifetimeFlows:
    """Every point ever issued, redeemed and expired."""
    rows = db.execute(
        select(TRANSACTIONS.c.kind, func.sum(TRANSACTIONS.c.points))
        .where(
            TRANSACTIONS.c.kind.in_(("earn", "adjust", "redeem", "refund", "expire")),
            (TRANSACTIONS.c.kind != "adjust") | (TRANSACTIONS.c.points > 0),
        )
        .group_by(TRANSACTIONS.c.kind)
    ).all()
    found = {str(kind): int(points or 0) for kind, points in rows}
    return LifetimeFlows(
        issued=found.get("earn", 0) + found.get("adjust", 0),
        redeemed=-found.get("redeem", 0) - found.get("refund", 0),
        expired=-found.get("expire", 0),
    )


@dataclass(frozen=True, slots=True)
class MemberRow:
    customer_id: str
    balance: int
    debt: int
    tier_id: str


@dataclass(frozen=True, slots=True)
class MemberFilter:
    """Which members a list keeps: a tier, a balance range, a set of customers (a search)."""

    tier: str | None = None
    min_balance: int | None = None
    max_balance: int | None = None
    customer_ids: Collection[str] | None = None


def _member_query(db: Session, chosen: MemberFilter) -> Select[Any]:
    tier_id = func.coalesce(TierStanding.tier_id, tier_policy(db).tier(None).id)
    query = (
        select(ACCOUNTS.c.account_id, ACCOUNTS.c.balance, ACCOUNTS.c.debt, tier_id)
        .select_from(ACCOUNTS)
        .outerjoin(TierStanding, TierStanding.customer_id == ACCOUNTS.c.account_id)
        .where(ACCOUNTS.c.kind == "member")
    )
    if chosen.tier:
        query = query.where(tier_id == chosen.tier)
    if chosen.min_balance is not None:
        query = query.where(ACCOUNTS.c.balance >= chosen.min_balance)
    if chosen.max_balance is not None:
        query = query.where(ACCOUNTS.c.balance <= chosen.max_balance)
    if chosen.customer_ids is not None:
        query = query.where(ACCOUNTS.c.account_id.in_(list(chosen.customer_ids)))
    return query


def count_members(db: Session, chosen: MemberFilter) -> int:
    """How many members the filter keeps."""
    query = _member_query(db, chosen)
    return int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)


def member_page(db: Session, chosen: MemberFilter, *, offset: int, limit: int) -> list[MemberRow]:
    """One page of the members the filter keeps, highest balance first."""
    rows = db.execute(
        _member_query(db, chosen)
        .order_by(ACCOUNTS.c.balance.desc(), ACCOUNTS.c.account_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [
        MemberRow(customer_id=str(c), balance=int(b), debt=int(d), tier_id=str(t))
        for c, b, d, t in rows
    ]


def members_by_tier(db: Session) -> list[tuple[str, str, int]]:
    """(tier id, name, members with a points account) for every tier, lowest first; members
    without a standing are in the first tier."""
    policy = tier_policy(db)
    base = policy.tier(None).id
    tier_id = func.coalesce(TierStanding.tier_id, base)
    counts = dict(
        db.execute(
            select(tier_id, func.count())
            .select_from(ACCOUNTS)
            .outerjoin(TierStanding, TierStanding.customer_id == ACCOUNTS.c.account_id)
            .where(ACCOUNTS.c.kind == "member")
            .group_by(tier_id)
        ).all()
    )
    return [(t.id, t.name, int(counts.get(t.id, 0))) for t in policy.tiers]


@dataclass(frozen=True, slots=True)
class TierProgress:
    """Where a member stands on the ladder: their tier, the next one and how far to it
    (``basis`` 'spend': minor units of qualifying spend; 'points': qualifying points)."""

    tier_id: str
    tier_name: str
    since: datetime | None
    review_at: datetime | None
    basis: str
    window_months: int
    qualifying_value: int
    next_tier_name: str | None
    next_threshold: int | None

    @property
    def to_go(self) -> int:
        if self.next_threshold is None:
            return 0
        return max(0, self.next_threshold - self.qualifying_value)


def tier_progress(db: Session, *, customer_id: str) -> TierProgress:
    policy = tier_policy(db)
    standing = member_tier(db, customer_id=customer_id)
    index = policy.rank(standing.tier_id)
    following = policy.tiers[index + 1] if index + 1 < len(policy.tiers) else None
    return TierProgress(
        tier_id=standing.tier_id,
        tier_name=standing.tier_name,
        since=standing.since,
        review_at=standing.review_at,
        basis=policy.basis,
        window_months=policy.window_months,
        qualifying_value=standing.qualifying_value,
        next_tier_name=following.name if following else None,
        next_threshold=following.threshold if following else None,
    )


@dataclass(frozen=True, slots=True)
class ExpiringLot:
    points: int
    expires_at: datetime


def expiring_lots(
    db: Session, *, customer_id: str, days: int = 90, now: datetime | None = None
) -> list[ExpiringLot]:
    """The member's open points that expire within ``days``, soonest first."""
    moment = now or clock.now()
    rows = db.execute(
        select(LOTS.c.remaining, LOTS.c.expires_at)
        .where(
            and_(
                LOTS.c.customer_id == customer_id,
                LOTS.c.remaining > 0,
                LOTS.c.expires_at <= moment + timedelta(days=days),
            )
        )
        .order_by(LOTS.c.expires_at)
    ).all()
    return [ExpiringLot(points=int(r), expires_at=clock.as_utc(e)) for r, e in rows]


COUPON_STATES = ("open", "used", "expired")


@dataclass(frozen=True, slots=True)
class CouponFilter:
    """Which coupons a list keeps: a state (open, used, expired), a campaign (its rule, as a
    prefix), a code and a customer (the coupons issued to them)."""

    state: str | None = None
    rule: str | None = None
    code: str | None = None
    customer_id: str | None = None


def _coupon_query(chosen: CouponFilter, now: datetime) -> Select[Any]:
    query = select(Coupon)
    if chosen.state == "open":
        query = query.where(Coupon.used_at.is_(None), Coupon.expires_at > now)
    elif chosen.state == "used":
        query = query.where(Coupon.used_at.is_not(None))
    elif chosen.state == "expired":
        query = query.where(Coupon.used_at.is_(None), Coupon.expires_at <= now)
    if chosen.rule:
        query = query.where(Coupon.rule.startswith(chosen.rule, autoescape=True))
    if chosen.code:
        query = query.where(Coupon.code == chosen.code)
    if chosen.customer_id:
        query = query.where(Coupon.customer_id == chosen.customer_id)
    return query


def count_coupons(db: Session, chosen: CouponFilter, *, now: datetime | None = None) -> int:
    query = _coupon_query(chosen, now or clock.now())
    return int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)


def coupon_page(
    db: Session, chosen: CouponFilter, *, offset: int, limit: int, now: datetime | None = None
) -> list[Coupon]:
    """One page of the coupons the filter keeps, newest first."""
    query = (
        _coupon_query(chosen, now or clock.now())
        .order_by(Coupon.issued_at.desc(), Coupon.code)
        .offset(offset)
        .limit(limit)
    )
    return list(db.scalars(query))


def coupon_campaigns(db: Session) -> list[tuple[str, int, int]]:
    """(rule, coupons issued, used) for every campaign and reward that issued coupons."""
    rows = db.execute(
        select(Coupon.rule, func.count(), func.count(Coupon.used_at))
        .group_by(Coupon.rule)
        .order_by(Coupon.rule)
    ).all()
    return [(str(rule), int(issued), int(used)) for rule, issued, used in rows]
