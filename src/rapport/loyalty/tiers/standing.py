"""A member's standing on the tier ladder, read by the program's pages and by other domains
(through ``loyalty.service``): their tier and its benefits, how many members each tier holds,
every member's tier at once, and the history of changes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.models import TierChangeRecord, TierStanding
from rapport.loyalty.program.versions import tier_policy
from rapport.loyalty.tiers.policy import Benefits


@dataclass(frozen=True)
class MemberTier:
    tier_id: str
    tier_name: str
    since: datetime | None
    review_at: datetime | None
    qualifying_value: int
    benefits: Benefits


def member_tier(db: Session, *, customer_id: str) -> MemberTier:
    """The member's tier and its benefits (the base tier for customers without a standing)."""
    policy = tier_policy(db)
    standing = db.get(TierStanding, customer_id)
    tier = policy.tier(standing.tier_id if standing else None)
    return MemberTier(
        tier_id=tier.id,
        tier_name=tier.name,
        since=standing.since if standing else None,
        review_at=standing.review_at if standing else None,
        qualifying_value=standing.qualifying_value if standing else 0,
        benefits=tier.benefits,
    )


def tier_distribution(db: Session) -> list[tuple[str, str, int]]:
    """(tier id, name, members) for every tier of the ladder, lowest first."""
    policy = tier_policy(db)
    counts = dict(
        db.execute(select(TierStanding.tier_id, func.count()).group_by(TierStanding.tier_id)).all()
    )
    return [(tier.id, tier.name, int(counts.get(tier.id, 0))) for tier in policy.tiers]


def tiers_by_customer(db: Session) -> dict[str, str]:
    """Every member with a tier standing and their tier id, in one read (customers without
    a standing are in the base tier). Read-only: recommendations learn per-tier popularity."""
    return {
        str(customer_id): str(tier_id)
        for customer_id, tier_id in db.execute(
            select(TierStanding.customer_id, TierStanding.tier_id)
        )
    }


def tier_names(db: Session, *, customer_ids: Iterable[str]) -> dict[str, str]:
    """The tier name of each of ``customer_ids`` (the base tier's for those without a
    standing), in one query per 1,000 ids: what ``member_tier(..).tier_name`` gives, in bulk."""
    policy = tier_policy(db)
    wanted = sorted(set(customer_ids))
    base = policy.tier(None).name
    found = dict.fromkeys(wanted, base)
    for start in range(0, len(wanted), 1000):
        for customer_id, tier_id in db.execute(
            select(TierStanding.customer_id, TierStanding.tier_id).where(
                TierStanding.customer_id.in_(wanted[start : start + 1000])
            )
        ):
            found[str(customer_id)] = policy.tier(tier_id).name
    return found


def tier_history(db: Session, *, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(TierChangeRecord)
        .where(TierChangeRecord.customer_id == customer_id)
        .order_by(TierChangeRecord.id.desc())
        .limit(limit)
    )
    return [
        {
            "from_tier": row.from_tier,
            "to_tier": row.to_tier,
            "change": row.change,
            "qualifying_value": row.qualifying_value,
            "changed_at": row.changed_at.isoformat(),
            "reason": row.reason,
        }
        for row in rows
    ]


def standings_by_value(db: Session) -> list[tuple[int, int]]:
    """(qualifying value at their last review, members with it) over every member with a
    standing: what the program page's simulator counts to say how many members a draft ladder
    would move (one row per distinct value, not per member)."""
    return [
        (int(value or 0), int(count))
        for value, count in db.execute(
            select(TierStanding.qualifying_value, func.count()).group_by(
                TierStanding.qualifying_value
            )
        )
    ]
