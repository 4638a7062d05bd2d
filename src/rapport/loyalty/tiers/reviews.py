"""Tier reviews: a member's qualifying value over the policy's window, re-placing one member
on the ladder (upgrades as orders come in), and the daily review of members whose review date
has come (renewals and downgrades). A move to another tier appends ``tier_changed`` in the
same transaction as its tier history row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.events.service import log_event
from rapport.loyalty.events import TierChanged
from rapport.loyalty.models import QualifyingActivity, TierChangeRecord, TierStanding
from rapport.loyalty.program.versions import tier_policy
from rapport.loyalty.tiers.policy import TierPolicy, review, window_start
from rapport.loyalty.tiers.policy import TierStanding as Standing
from rapport.platform import clock


def qualifying_value(db: Session, *, customer_id: str, policy: TierPolicy, at: datetime) -> int:
    column = (
        QualifyingActivity.spend_minor if policy.basis == "spend" else QualifyingActivity.points
    )
    total = db.scalar(
        select(func.coalesce(func.sum(column), 0)).where(
            QualifyingActivity.customer_id == customer_id,
            QualifyingActivity.occurred_at > window_start(at, policy),
            QualifyingActivity.occurred_at <= at,
        )
    )
    return max(int(total or 0), 0)


def review_tier(db: Session, *, customer_id: str, at: datetime) -> str | None:
    """Re-place the member on the ladder at ``at``; records and returns any change."""
    policy = tier_policy(db, at=at)
    standing = db.get(TierStanding, customer_id)
    current = (
        None if standing is None else Standing(standing.tier_id, standing.since, standing.review_at)
    )
    value = qualifying_value(db, customer_id=customer_id, policy=policy, at=at)
    result = review(policy, current, value, at)
    now = clock.now()
    if standing is None:
        standing = TierStanding(customer_id=customer_id)
        db.add(standing)
    standing.tier_id = result.standing.tier_id
    standing.since = result.standing.since
    standing.review_at = result.standing.review_at
    standing.qualifying_value = value
    standing.updated_at = now
    if result.change is not None:
        db.add(
            TierChangeRecord(
                customer_id=customer_id,
                from_tier=current.tier_id if current else None,
                to_tier=result.standing.tier_id,
                change=result.change,
                qualifying_value=value,
                changed_at=at,
            )
        )
        # Customers without a standing are in the base tier: placing one there is no move.
        held = policy.tier(current.tier_id if current else None).id
        if result.change in ("upgrade", "downgrade") and held != result.standing.tier_id:
            log_event(
                db,
                TierChanged(
                    from_tier=held,
                    to_tier=result.standing.tier_id,
                    change=result.change,
                    qualifying_value=value,
                    review_at=clock.as_utc(result.standing.review_at).isoformat(),
                ),
                channel="web",
                customer_id=customer_id,
                occurred_at=at,
            )
    db.flush()
    return result.change


def review_due_tiers(db: Session, *, now: datetime | None = None, page: int = 500) -> int:
    """Review every member whose review date has come: renewals and downgrades (after the
    grace period) happen here; upgrades already happened as orders came in. Commits a page
    at a time; returns how many members changed tier."""
    at = now or clock.now()
    changed = 0
    after: tuple[datetime, str] | None = None
    while True:
        query = select(TierStanding.review_at, TierStanding.customer_id).where(
            TierStanding.review_at <= at
        )
        if after is not None:
            query = query.where(
                (TierStanding.review_at > after[0])
                | ((TierStanding.review_at == after[0]) & (TierStanding.customer_id > after[1]))
            )
        due = db.execute(
            query.order_by(TierStanding.review_at, TierStanding.customer_id).limit(page)
        ).all()
        for _, customer_id in due:
            if review_tier(db, customer_id=customer_id, at=at) is not None:
                changed += 1
        db.commit()
        if len(due) < page:
            return changed
        after = (due[-1][0], due[-1][1])
