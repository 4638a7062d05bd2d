"""Apology points given for a broken promise on an order: what the program's apology rules
(on ``delivery_late`` and ``delivery_failed``) awarded, so the message that apologises can say
how many points were added."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.models import Award
from rapport.loyalty.program.versions import rule_set


def apology_rule_ids(db: Session) -> frozenset[str]:
    """The ids of the apology rules in force (a changed rule keeps its id)."""
    _, rules = rule_set(db)
    return frozenset(rule.id for rule in rules.rules if rule.kind == "apology")


def apology_points(db: Session, *, customer_id: str, order_id: str) -> int:
    """Points the apology rules gave ``customer_id`` for ``order_id`` (0 when none, or not
    yet: the earning processor awards them when it reaches the late or failed delivery)."""
    rule_ids = apology_rule_ids(db)
    if not rule_ids:
        return 0
    total = db.scalar(
        select(func.coalesce(func.sum(Award.points), 0)).where(
            Award.customer_id == customer_id,
            Award.order_id == order_id,
            Award.rule_id.in_(rule_ids),
        )
    )
    return int(total or 0)
