"""Points in and out of a member's account: earn, redeem and adjust (through the session),
on the portable path (SQLite, and PostgreSQL's rare cases) or PostgreSQL's statements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, true, update
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import open_account, pay_debts
from rapport.loyalty.ledger.journal import (
    BeforeCommit,
    Posted,
    check_points,
    finish,
    record_transaction,
)
from rapport.loyalty.ledger.lots import consume_lots
from rapport.loyalty.ledger.postgres import (
    CREDIT_DEBT_FREE_MEMBER,
    CREDIT_MEMBER,
    CREDITED,
    DEBIT_LOCKED,
)
from rapport.loyalty.ledger.settings import add_months, get_program
from rapport.loyalty.ledger.tables import ACCOUNTS, LOTS
from rapport.loyalty.models import ADJUSTMENTS, ISSUED, MEMBER_DEBT, REDEEMED
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
    now = clock.now()
    earned = earned_at or now
    if expires_at is not None and expires_at <= earned:
        raise InvalidInput("expires_at must be after the points are earned", field="expires_at")
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        row = connection.exec_driver_sql(
            (CREDIT_DEBT_FREE_MEMBER if pays_debt else CREDIT_MEMBER) + CREDITED,
            {
                "customer": customer_id,
                "points": points,
                "kind": kind,
                "source": source_account,
                "reason": reason,
                "order": order_id,
                "rule": rule_id,
                "now": now,
                "earned": earned,
                "expires": expires_at,
            },
        ).first()
        if row is not None:
            transaction_id, balance, debt, expiry = row
            return Posted(
                transaction_id=transaction_id,
                customer_id=customer_id,
                kind=kind,
                points=points,
                balance=balance,
                debt=debt,
                expires_at=expiry,
            )
    expiry = expires_at or add_months(earned, get_program(db).expiry_months)
    # Fast path: an existing member without debt, one guarded UPDATE that also locks the row.
    guard = ACCOUNTS.c.debt == 0 if pays_debt else true()
    fast = db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member", guard)
        .values(balance=ACCOUNTS.c.balance + points, updated_at=now)
        .returning(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
    ).first()
    paid = 0
    if fast is not None:
        balance, debt = fast
    else:
        customer_id, (balance, debt) = open_account(db, customer_id, now)
        paid = min(debt, points) if pays_debt else 0
        balance, debt = balance + points - paid, debt - paid
        db.execute(
            update(ACCOUNTS)
            .where(ACCOUNTS.c.account_id == customer_id)
            .values(balance=balance, debt=debt, updated_at=now)
        )
        if paid:
            pay_debts(db, customer_id=customer_id, points=paid)
    credited = points - paid
    transaction_id = record_transaction(
        db,
        customer_id=customer_id,
        kind=kind,
        points=credited,
        reason=reason,
        legs=[(customer_id, credited), (MEMBER_DEBT, paid), (source_account, -points)],
        order_id=order_id,
        rule_id=rule_id,
        debt_change=-paid,
        now=now,
    )
    if credited:
        db.execute(
            insert(LOTS),
            {
                "customer_id": customer_id,
                "transaction_id": transaction_id,
                "order_id": order_id,
                "amount": credited,
                "remaining": credited,
                "earned_at": earned,
                "expires_at": expiry,
            },
        )
    return Posted(
        transaction_id=transaction_id,
        customer_id=customer_id,
        kind=kind,
        points=credited,
        balance=balance,
        debt=debt,
        debt_change=-paid,
        expires_at=expiry if credited else None,
    )


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
    return finish(
        db,
        posted,
        before_commit,
        {
            "type": "points_earned",
            "channel": channel,
            "order_id": order_id,
            "rule_id": rule_id,
            "reason": reason,
        },
        commit=commit,
    )


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
    now = clock.now()
    # The guard makes check-and-take one statement: concurrent redemptions queue on the row
    # lock and each sees the balance the previous one left.
    taken = db.execute(
        update(ACCOUNTS)
        .where(
            ACCOUNTS.c.account_id == customer_id,
            ACCOUNTS.c.kind == "member",
            ACCOUNTS.c.balance >= points,
        )
        .values(balance=ACCOUNTS.c.balance - points, updated_at=now)
        .returning(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
    ).first()
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
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        # A second statement, so that it reads the lots after the row lock is held.
        transaction_id, consumed = connection.exec_driver_sql(
            DEBIT_LOCKED,
            {
                "customer": customer_id,
                "points": points,
                "kind": kind,
                "target": target_account,
                "reason": reason,
                "order": order_id,
                "now": now,
            },
        ).one()
    else:
        transaction_id = record_transaction(
            db,
            customer_id=customer_id,
            kind=kind,
            points=-points,
            reason=reason,
            legs=[(customer_id, -points), (target_account, points)],
            order_id=order_id,
            now=now,
        )
        consumed = consume_lots(
            db, customer_id=customer_id, points=points, transaction_id=transaction_id
        )
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
    return finish(
        db,
        posted,
        before_commit,
        {"type": "points_redeemed", "channel": channel, "order_id": order_id, "reason": reason},
        commit=commit,
    )


def adjust(
    db: Session,
    *,
    customer_id: str,
    points: int,
    reason: str,
    expires_at: datetime | None = None,
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """A correction by staff: add points (a new lot) or remove them (oldest lots first,
    never below zero). Corrections are new transactions; nothing is edited."""
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
            rule_id=None,
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
    return finish(
        db,
        posted,
        before_commit,
        {"type": "points_adjusted", "channel": "call_center", "reason": reason},
        commit=commit,
    )
