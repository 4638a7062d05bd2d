"""Reads of one member's points: balance, open lots, and their statement of movements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.tables import ACCOUNTS, LOTS, TRANSACTIONS
from rapport.platform import clock


@dataclass(frozen=True, slots=True)
class OpenLot:
    lot_id: int
    amount: int
    remaining: int
    earned_at: datetime
    expires_at: datetime
    order_id: str | None


@dataclass(frozen=True, slots=True)
class Member:
    customer_id: str
    balance: int
    debt: int
    lots: list[OpenLot] = field(default_factory=list)
    # Open lots beyond those in ``lots`` (read with ``lots_limit``; 0 when every one is).
    more_lots: int = 0

    @property
    def next_expiry(self) -> OpenLot | None:
        return min(self.lots, key=lambda lot: lot.expires_at, default=None)


@dataclass(frozen=True, slots=True)
class Movement:
    transaction_id: int
    kind: str
    points: int
    debt_change: int
    reason: str
    order_id: str | None
    rule_id: str | None
    created_at: datetime
    by: str | None = None  # who made an adjustment (``details.by``)


def balance(db: Session, *, customer_id: str) -> int:
    """The member's available points (0 for a customer who never had any)."""
    return int(
        db.scalar(
            select(ACCOUNTS.c.balance).where(
                ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member"
            )
        )
        or 0
    )


def balances(db: Session, *, customer_ids: Iterable[str]) -> dict[str, int]:
    """The available points of each of ``customer_ids`` (0 for those who never had any), in
    one query per 1,000 ids: for callers that need many members' balances at once."""
    wanted = sorted(set(customer_ids))
    found = dict.fromkeys(wanted, 0)
    for start in range(0, len(wanted), 1000):
        for account_id, points in db.execute(
            select(ACCOUNTS.c.account_id, ACCOUNTS.c.balance).where(
                ACCOUNTS.c.account_id.in_(wanted[start : start + 1000]),
                ACCOUNTS.c.kind == "member",
            )
        ):
            found[str(account_id)] = int(points or 0)
    return found


def get_member(db: Session, *, customer_id: str, lots_limit: int | None = None) -> Member | None:
    """The member's balance, debt and open lots (oldest first), or ``None`` without points.

    With ``lots_limit``, only that many lots, soonest to expire first (a member who earned
    on hundreds of orders has hundreds), and ``more_lots`` counts the others."""
    account = db.execute(
        select(ACCOUNTS.c.balance, ACCOUNTS.c.debt).where(
            ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member"
        )
    ).first()
    if account is None:
        return None
    open_lots = select(LOTS).where(LOTS.c.customer_id == customer_id, LOTS.c.remaining > 0)
    if lots_limit is None:
        query = open_lots.order_by(LOTS.c.earned_at, LOTS.c.id)
    else:
        query = open_lots.order_by(LOTS.c.expires_at, LOTS.c.earned_at, LOTS.c.id).limit(lots_limit)
    lots = [
        OpenLot(
            lot_id=row.id,
            amount=row.amount,
            remaining=row.remaining,
            earned_at=clock.as_utc(row.earned_at),
            expires_at=clock.as_utc(row.expires_at),
            order_id=row.order_id,
        )
        for row in db.execute(query)
    ]
    more = 0
    if lots_limit is not None and len(lots) == lots_limit:
        total = db.scalar(select(func.count()).select_from(open_lots.subquery())) or 0
        more = total - len(lots)
    return Member(
        customer_id=customer_id,
        balance=account.balance,
        debt=account.debt,
        lots=lots,
        more_lots=more,
    )


def statement(
    db: Session, *, customer_id: str, limit: int = 50, before: int | None = None
) -> list[Movement]:
    """The member's movements, newest first: ``limit`` of them with ids below ``before``."""
    query = (
        select(TRANSACTIONS)
        .where(TRANSACTIONS.c.customer_id == customer_id)
        .order_by(TRANSACTIONS.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(TRANSACTIONS.c.id < before)
    return [
        Movement(
            transaction_id=row.id,
            kind=row.kind,
            points=row.points,
            debt_change=row.debt_change,
            reason=row.reason,
            order_id=row.order_id,
            rule_id=row.rule_id,
            created_at=clock.as_utc(row.created_at),
            by=(row.details or {}).get("by"),
        )
        for row in db.execute(query)
    ]
