"""The journal: one transaction per movement, its entries (legs) summing to zero, what a
credit or debit is given (``Credit``, ``Debit``) and what a command posted (``Posted``). Also
the checks every command makes of the points it is given, and how a command finishes (its
typed event appended, then commit or flush)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert
from sqlalchemy.orm import Session

from rapport.events.service import log_event
from rapport.loyalty.ledger.tables import ENTRIES, TRANSACTIONS
from rapport.platform.domain_events import DomainEvent
from rapport.platform.errors import InvalidInput

# One command never moves more points than this (far beyond any real basket, well inside
# 64-bit sums, and a guard against a typo of a few zeros).
MAX_POINTS_PER_COMMAND = 100_000_000
# The most points a staff member gives by hand in one action: goodwill points from the
# customer page, a ticket's apology points (admin form and API alike).
MANUAL_POINTS_MAX = 10_000
# (balance, debt) of a member account; (id, remaining) of a lot.
AccountRow = Row[Any, Any]
LotRow = Row[Any, Any]


@dataclass(frozen=True, slots=True)
class Posted:
    """What a command did to the member: the journal transaction and the balances after it."""

    transaction_id: int
    customer_id: str
    kind: str
    points: int  # change to the available balance (negative for redeem, expire …)
    balance: int
    debt: int
    debt_change: int = 0  # debt recorded (+) or paid off (-) by this transaction
    expires_at: datetime | None = None
    written_off: int = 0  # a return's shortfall not recorded as debt (debt not allowed)


BeforeCommit = Callable[[Session, Posted], None]


@dataclass(frozen=True, slots=True)
class Credit:
    """Points into a member's account from one of the program's accounts, as a new lot: what
    every backend's credit (``ledger.portable``, ``ledger.postgres``) is given."""

    customer_id: str
    points: int
    kind: str  # earn, adjust
    source_account: str
    reason: str
    order_id: str | None
    rule_id: str | None
    now: datetime
    earned_at: datetime
    expires_at: datetime | None  # None: the program's expiry months after ``earned_at``
    pays_debt: bool  # the member's debt is paid first (earning does; an adjustment does not)


@dataclass(frozen=True, slots=True)
class Debit:
    """Points out of a member's account to one of the program's accounts, oldest lots first:
    what every backend's debit is given."""

    customer_id: str
    points: int  # how many are taken (positive)
    kind: str  # redeem, adjust
    target_account: str
    reason: str
    order_id: str | None
    now: datetime


def check_points(points: int, *, allow_negative: bool = False) -> None:
    if isinstance(points, bool) or not isinstance(points, int):
        raise InvalidInput("points must be a whole number", field="points")
    if points == 0 or (points < 0 and not allow_negative):
        raise InvalidInput(
            "points must be a positive whole number"
            if not allow_negative
            else "points must not be zero",
            field="points",
        )
    if abs(points) > MAX_POINTS_PER_COMMAND:
        raise InvalidInput(f"At most {MAX_POINTS_PER_COMMAND:,} points per command", field="points")


def record_transaction(
    db: Session,
    *,
    customer_id: str,
    kind: str,
    points: int,
    reason: str,
    legs: Sequence[tuple[str, int]],
    order_id: str | None = None,
    rule_id: str | None = None,
    debt_change: int = 0,
    details: dict[str, Any] | None = None,
    now: datetime,
) -> int:
    """Write one journal transaction and its entries (zero legs are left out)."""
    assert sum(amount for _, amount in legs) == 0, "a journal transaction must balance"
    transaction_id: int = db.execute(
        insert(TRANSACTIONS).returning(TRANSACTIONS.c.id),
        {
            "customer_id": customer_id,
            "kind": kind,
            "points": points,
            "reason": reason,
            "order_id": order_id,
            "rule_id": rule_id,
            "debt_change": debt_change,
            "details": details or {},
            "created_at": now,
        },
    ).scalar_one()
    rows = [
        {"transaction_id": transaction_id, "account_id": account, "amount": amount}
        for account, amount in legs
        if amount
    ]
    if rows:  # a return that only writes off spent points moves nothing
        db.execute(insert(ENTRIES), rows)
    return transaction_id


def finish(
    db: Session,
    posted: Posted,
    fact: DomainEvent,
    *,
    channel: str,
    before_commit: BeforeCommit | None,
    commit: bool = True,
) -> Posted:
    """End a command: append its event (``fact``, the member's), run ``before_commit`` (the
    caller's writes in the same transaction), then commit, or only flush."""
    # ``commit=False`` lets a caller (the earning processor, an order placed with points)
    # join the movement to its own transaction. A refusal still rolls back that whole
    # transaction, which is what such a caller wants: nothing of it happens.
    log_event(db, fact, channel=channel, customer_id=posted.customer_id)
    if before_commit is not None:
        db.flush()
        before_commit(db, posted)
    if commit:
        db.commit()
    else:
        db.flush()
    return posted
