"""The program's liability: the points it owes its members, what they are worth, and the
totals of the program's own accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.ledger.tables import ACCOUNTS, ENTRIES, LOTS
from rapport.loyalty.models import PROGRAM_ACCOUNTS
from rapport.platform import clock


@dataclass(frozen=True, slots=True)
class Liability:
    """Points the program owes its members, and what they are worth."""

    members: int
    outstanding_points: int
    outstanding_debt: int
    value_minor: int
    currency: str
    point_value_minor_per_100: int
    by_account: dict[str, int]
    expiring_within_30_days: int


def liability(db: Session) -> Liability:
    program = get_program(db)
    members, outstanding, owed = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(ACCOUNTS.c.balance), 0),
            func.coalesce(func.sum(ACCOUNTS.c.debt), 0),
        ).where(ACCOUNTS.c.kind == "member")
    ).one()
    by_account = dict.fromkeys(PROGRAM_ACCOUNTS, 0)
    for account, total in db.execute(
        select(ENTRIES.c.account_id, func.sum(ENTRIES.c.amount))
        .where(ENTRIES.c.account_id.in_(PROGRAM_ACCOUNTS))
        .group_by(ENTRIES.c.account_id)
    ):
        by_account[account] = int(total)
    soon = clock.now() + timedelta(days=30)
    expiring = db.scalar(
        select(func.coalesce(func.sum(LOTS.c.remaining), 0)).where(
            LOTS.c.remaining > 0, LOTS.c.expires_at <= soon
        )
    )
    return Liability(
        members=int(members),
        outstanding_points=int(outstanding),
        outstanding_debt=int(owed),
        value_minor=program.worth_minor(int(outstanding)),
        currency=program.currency,
        point_value_minor_per_100=program.point_value_minor_per_100,
        by_account=by_account,
        expiring_within_30_days=int(expiring or 0),
    )
