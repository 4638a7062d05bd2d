"""Lots: points earned together, used first in, first out. Taking points from a member's
open lots and recording each use (``loyalty_lot_consumptions``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.journal import LotRow
from rapport.loyalty.ledger.tables import CONSUMPTIONS, LOTS

_take_from_lot = (
    update(LOTS)
    .where(LOTS.c.id == bindparam("lot"))
    .values(remaining=LOTS.c.remaining - bindparam("take"))
)


def consume_lots(
    db: Session,
    *,
    customer_id: str,
    points: int,
    transaction_id: int,
    lots: Sequence[LotRow] | None = None,
) -> int:
    """Take up to ``points`` from the member's open lots, first in first out (or from
    ``lots`` in the order given), recording each consumption. Returns the points taken.
    The caller holds the member's account row."""
    if lots is None:
        lots = db.execute(
            select(LOTS.c.id, LOTS.c.remaining)
            .where(LOTS.c.customer_id == customer_id, LOTS.c.remaining > 0)
            .order_by(LOTS.c.earned_at, LOTS.c.id)
            .limit(points)  # every open lot holds at least one point
        ).all()
    takes = []
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        take = min(left, remaining)
        takes.append({"lot": lot_id, "take": take})
        left -= take
    if takes:
        db.execute(_take_from_lot, takes)
        db.execute(
            insert(CONSUMPTIONS),
            [
                {"lot_id": t["lot"], "transaction_id": transaction_id, "points": t["take"]}
                for t in takes
            ],
        )
    return points - left
