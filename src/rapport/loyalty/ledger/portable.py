"""Credit and debit through SQLAlchemy Core, on any database: SQLite's implementation, and
the general path every backend takes for the rare cases (a member's first points, which open
their account; earning that pays debt first).

Every function here runs inside the command's transaction and writes the same rows as
``ledger.postgres``; the tests run every command on both.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, true, update
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import open_account, pay_debts
from rapport.loyalty.ledger.journal import AccountRow, Credit, Debit, Posted, record_transaction
from rapport.loyalty.ledger.lots import consume_lots
from rapport.loyalty.ledger.settings import add_months, get_program
from rapport.loyalty.ledger.tables import ACCOUNTS, LOTS
from rapport.loyalty.models import MEMBER_DEBT


def credit_member(db: Session, credit: Credit) -> Posted | None:
    """Credit a member who has an account (and, when ``pays_debt``, no debt): one guarded
    UPDATE that also locks the row, then the journal and the lot. ``None`` (nothing written)
    for anyone else: :func:`credit_opening_or_paying_debt` serves them."""
    guard = ACCOUNTS.c.debt == 0 if credit.pays_debt else true()
    account = db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == credit.customer_id, ACCOUNTS.c.kind == "member", guard)
        .values(balance=ACCOUNTS.c.balance + credit.points, updated_at=credit.now)
        .returning(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
    ).first()
    if account is None:
        return None
    balance, debt = account
    return _journal_and_lot(
        db, credit, customer_id=credit.customer_id, paid=0, balance=balance, debt=debt
    )


def credit_opening_or_paying_debt(db: Session, credit: Credit) -> Posted:
    """Credit anyone :func:`credit_member` (or its PostgreSQL twin) left: open the account on
    the customer's first points (under the survivor's id for a merged profile), lock it, pay
    the member's debt first when ``pays_debt``, then the journal and the lot of the rest."""
    customer_id, (balance, debt) = open_account(db, credit.customer_id, credit.now)
    paid = min(debt, credit.points) if credit.pays_debt else 0
    balance, debt = balance + credit.points - paid, debt - paid
    db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == customer_id)
        .values(balance=balance, debt=debt, updated_at=credit.now)
    )
    if paid:
        pay_debts(db, customer_id=customer_id, points=paid)
    return _journal_and_lot(
        db, credit, customer_id=customer_id, paid=paid, balance=balance, debt=debt
    )


def _journal_and_lot(
    db: Session, credit: Credit, *, customer_id: str, paid: int, balance: int, debt: int
) -> Posted:
    expiry: datetime = credit.expires_at or add_months(
        credit.earned_at, get_program(db).expiry_months
    )
    credited = credit.points - paid
    transaction_id = record_transaction(
        db,
        customer_id=customer_id,
        kind=credit.kind,
        points=credited,
        reason=credit.reason,
        legs=[
            (customer_id, credited),
            (MEMBER_DEBT, paid),
            (credit.source_account, -credit.points),
        ],
        order_id=credit.order_id,
        rule_id=credit.rule_id,
        debt_change=-paid,
        now=credit.now,
    )
    if credited:
        db.execute(
            insert(LOTS),
            {
                "customer_id": customer_id,
                "transaction_id": transaction_id,
                "order_id": credit.order_id,
                "amount": credited,
                "remaining": credited,
                "earned_at": credit.earned_at,
                "expires_at": expiry,
            },
        )
    return Posted(
        transaction_id=transaction_id,
        customer_id=customer_id,
        kind=credit.kind,
        points=credited,
        balance=balance,
        debt=debt,
        debt_change=-paid,
        expires_at=expiry if credited else None,
    )


def take_points(db: Session, debit: Debit) -> AccountRow | None:
    """Take the points from the member's balance if it covers them, in one guarded UPDATE
    that also takes the row lock: the member's (balance, debt) after it, or ``None`` (nothing
    changed). Concurrent debits queue on the row lock and each sees the balance the previous
    one left."""
    return db.execute(
        update(ACCOUNTS)
        .where(
            ACCOUNTS.c.account_id == debit.customer_id,
            ACCOUNTS.c.kind == "member",
            ACCOUNTS.c.balance >= debit.points,
        )
        .values(balance=ACCOUNTS.c.balance - debit.points, updated_at=debit.now)
        .returning(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
    ).first()


def debit_lots(db: Session, debit: Debit) -> tuple[int, int]:
    """After :func:`take_points`: the journal, and the member's lots consumed oldest first.
    Answers the transaction id and the points the lots gave."""
    transaction_id = record_transaction(
        db,
        customer_id=debit.customer_id,
        kind=debit.kind,
        points=-debit.points,
        reason=debit.reason,
        legs=[(debit.customer_id, -debit.points), (debit.target_account, debit.points)],
        order_id=debit.order_id,
        now=debit.now,
    )
    consumed = consume_lots(
        db, customer_id=debit.customer_id, points=debit.points, transaction_id=transaction_id
    )
    return transaction_id, consumed
