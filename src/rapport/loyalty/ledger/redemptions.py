"""Points redeemed per customer in a window, read in bulk (a campaign's results compare
redemptions in its treated and control groups)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.tables import TRANSACTIONS

# Ids per query: far below every database's bind-parameter limit.
_CHUNK = 500


def points_redeemed_in_window(
    db: Session, *, customer_ids: Sequence[str], since: datetime, until: datetime
) -> dict[str, int]:
    """Points each of ``customer_ids`` redeemed in [since, until) (a positive number);
    customers who redeemed none are absent."""
    redeemed: dict[str, int] = {}
    wanted = sorted(set(customer_ids))
    columns = TRANSACTIONS.c
    for start in range(0, len(wanted), _CHUNK):
        rows = db.execute(
            select(columns.customer_id, func.coalesce(func.sum(-columns.points), 0))
            .where(
                columns.customer_id.in_(wanted[start : start + _CHUNK]),
                columns.kind == "redeem",
                columns.created_at >= since,
                columns.created_at < until,
            )
            .group_by(columns.customer_id)
        )
        for customer_id, points in rows:
            if points:
                redeemed[str(customer_id)] = int(points)
    return redeemed
