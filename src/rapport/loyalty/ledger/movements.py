"""Points in and out of a member's account through the command's session: earn, redeem and
adjust, and the credit and debit under them, each on its backend's one implementation
(``ledger.postgres`` on PostgreSQL, ``ledger.portable`` on SQLite), with the portable general
path for a member's first points and for earning that pays debt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.loyalty.events import PointsAdjusted, PointsEarned, PointsRedeemed
from rapport.loyalty.ledger import portable, postgres
from rapport.loyalty.ledger.journal import (
    BeforeCommit,
    Credit,
    Debit,
    Posted,
    check_points,
    finish,
)
from rapport.loyalty.ledger.tables import ACCOUNTS, TRANSACTIONS
from rapport.loyalty.models import ADJUSTMENTS, ISSUED, REDEEMED
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound


class InsufficientPoints(Conflict):
    """The member's available balance does not cover the points asked for."""

    slug, title = "insufficient-points", "Not enough points"


def credit(
    db: Session,
    *,
    customer_id: str,
    points: int,
    kind: str,
    source_account: str,
    reason: str,
    order_id: str | None,
    rule_id: str | None,
    expires_at: datetime | None,
    earned_at: datetime | None,
    pays_debt: bool,
) -> Posted:
    """Credit a member (a ``Credit``) with their backend's implementation, or the general
    path for a first earning or debt to pay. Inside the command's transaction."""
    now = clock.now()
    earned = earned_at or now
    if expires_at is not None and expires_at <= earned:
        raise InvalidInput("expires_at must be after the points are earned", field="expires_at")
    movement = Credit(
        customer_id=customer_id,
        points=points,
        kind=kind,
        source_account=source_account,
        reason=reason,
        order_id=order_id,
        rule_id=rule_id,
        now=now,
        earned_at=earned,
        expires_at=expires_at,
        pays_debt=pays_debt,
    )
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        posted = postgres.credit(connection, movement)
    else:
        posted = portable.credit_member(db, movement)
    if posted is None:  # a first earning, or debt to pay first: the general path
        posted = portable.credit_opening_or_paying_debt(db, movement)
    return posted


def earn(
    db: Session,
    *,
    customer_id: str,
    points: int,
    reason: str,
    order_id: str | None = None,
    rule_id: str | None = None,
    expires_at: datetime | None = None,
    earned_at: datetime | None = None,
    channel: str = "web",
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """Give a member ``points`` as a new lot expiring ``expires_at`` (default: the program's
    expiry months after ``earned_at``). Debt from earlier returns is paid first. Opens the
    member's account on their first points; logs ``points_earned``."""
    check_points(points)
    posted = credit(
        db,
        customer_id=customer_id,
        points=points,
        kind="earn",
        source_account=ISSUED,
        reason=reason,
        order_id=order_id,
        rule_id=rule_id,
        expires_at=expires_at,
        earned_at=earned_at,
        pays_debt=True,
    )
    fact = PointsEarned(
        transaction_id=posted.transaction_id,
        points=posted.points,
        balance=posted.balance,
        order_id=order_id,
        rule_id=rule_id,
        reason=reason,
    )
    return finish(db, posted, fact, channel=channel, before_commit=before_commit, commit=commit)


def debit(
    db: Session,
    *,
    customer_id: str,
    points: int,
    kind: str,
    target_account: str,
    reason: str,
    order_id: str | None,
) -> Posted:
    """Take points from a member (a ``Debit``) with their backend's implementation, oldest
    lots first. Refused (the transaction rolled back) when the balance does not cover them:
    :class:`InsufficientPoints`, or ``NotFound`` for a customer without points."""
    movement = Debit(
        customer_id=customer_id,
        points=points,
        kind=kind,
        target_account=target_account,
        reason=reason,
        order_id=order_id,
        now=clock.now(),
    )
    connection = db.connection()
    on_postgresql = connection.dialect.name == "postgresql"
    if on_postgresql:
        taken = postgres.take_points(connection, movement)
    else:
        taken = portable.take_points(db, movement)
    if taken is None:
        current = db.scalar(
            select(ACCOUNTS.c.balance).where(
                ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member"
            )
        )
        db.rollback()
        if current is None:
            raise NotFound(f"Customer {customer_id!r} has no points yet", field="customer_id")
        raise InsufficientPoints(
            f"The member has {current} points available; {points} asked for",
            field="points",
            balance=current,
        )
    balance, debt = taken
    if on_postgresql:
        transaction_id, consumed = postgres.debit_lots(connection, movement)
    else:
        transaction_id, consumed = portable.debit_lots(db, movement)
    if consumed != points:
        db.rollback()
        raise RuntimeError(f"lots of {customer_id} hold less than the balance said")
    return Posted(
        transaction_id=transaction_id,
        customer_id=customer_id,
        kind=kind,
        points=-points,
        balance=balance,
        debt=debt,
    )


def redeem(
    db: Session,
    *,
    customer_id: str,
    points: int,
    reason: str,
    order_id: str | None = None,
    channel: str = "web",
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """Spend ``points`` of the member's balance, oldest lots first. Refused with
    :class:`InsufficientPoints` (nothing changes) when the balance does not cover them."""
    check_points(points)
    posted = debit(
        db,
        customer_id=customer_id,
        points=points,
        kind="redeem",
        target_account=REDEEMED,
        reason=reason,
        order_id=order_id,
    )
    fact = PointsRedeemed(
        transaction_id=posted.transaction_id,
        points=posted.points,
        balance=posted.balance,
        order_id=order_id,
        reason=reason,
    )
    return finish(db, posted, fact, channel=channel, before_commit=before_commit, commit=commit)


def adjust(
    db: Session,
    *,
    customer_id: str,
    points: int,
    reason: str,
    expires_at: datetime | None = None,
    actor: str | None = None,
    rule_id: str | None = None,
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """A correction by staff: add points (a new lot) or remove them (oldest lots first,
    never below zero). Corrections are new transactions; nothing is edited. ``actor`` is who
    made it (an admin user's login, ``api:<key name>``): kept in the transaction's
    ``details`` as ``by`` and in the event. ``rule_id`` marks what an addition was (``goodwill``
    for goodwill points, which ``loyalty.goodwill`` counts against the program's window)."""
    check_points(points, allow_negative=True)
    if not reason.strip():
        raise InvalidInput("Say why the points are adjusted", field="reason")
    if points > 0:
        posted = credit(
            db,
            customer_id=customer_id,
            points=points,
            kind="adjust",
            source_account=ADJUSTMENTS,
            reason=reason,
            order_id=None,
            rule_id=rule_id,
            expires_at=expires_at,
            earned_at=None,
            pays_debt=False,
        )
    else:
        posted = debit(
            db,
            customer_id=customer_id,
            points=-points,
            kind="adjust",
            target_account=ADJUSTMENTS,
            reason=reason,
            order_id=None,
        )
    if actor:
        db.execute(
            update(TRANSACTIONS)
            .where(TRANSACTIONS.c.id == posted.transaction_id)
            .values(details={"by": actor})
        )
    fact = PointsAdjusted(
        transaction_id=posted.transaction_id,
        points=posted.points,
        balance=posted.balance,
        reason=reason,
        by=actor,
    )
    return finish(
        db, posted, fact, channel="call_center", before_commit=before_commit, commit=commit
    )
