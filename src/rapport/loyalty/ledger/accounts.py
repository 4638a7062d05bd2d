"""Member accounts: taking a member's row lock, opening the account on their first points,
paying their debts from later earning, and closing the account at erasure."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.ledger.journal import AccountRow, record_transaction
from rapport.loyalty.ledger.lots import consume_lots
from rapport.loyalty.ledger.tables import ACCOUNTS, DEBTS
from rapport.loyalty.models import BREAKAGE, MEMBER_DEBT
from rapport.platform.errors import InvalidInput, NotFound, Problem


def hold_member(db: Session, customer_id: str, *, field: str = "customer_id") -> str:
    """The live member a money command by ``customer_id`` writes to (a merged profile's
    survivor), their profile held ``FOR KEY SHARE`` until the command's transaction ends
    (``customers.resolve_customer_ref(lock=True)``): a merge of that profile commits wholly
    before the command (which then runs on the survivor) or after it (and moves what the
    command wrote). An unknown customer is 404, an erased one 404 "was erased", both naming
    ``field``; the transaction is rolled back with the refusal."""
    try:
        return customers.resolve_customer_ref(db, ref=customer_id, field=field, lock=True)
    except Problem:
        db.rollback()
        raise


def lock_account(db: Session, customer_id: str) -> AccountRow | None:
    return db.execute(
        select(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
        .where(ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member")
        .with_for_update()
    ).first()


def open_account(db: Session, customer_id: str, now: datetime) -> tuple[str, AccountRow]:
    """The member's account row, locked, created on the customer's first points. Returns
    the customer id the account is kept under (merged profiles resolve to the survivor)."""
    locked = lock_account(db, customer_id)
    if locked is not None:
        return customer_id, locked
    customer = customers.get_customer(db, customer_id=customer_id)
    if customer is None:
        db.rollback()
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    if customer.status != "active":
        db.rollback()
        raise InvalidInput(f"Customer {customer_id!r} was erased", field="customer_id")
    customer_id = customer.customer_id
    locked = lock_account(db, customer_id)
    if locked is not None:
        return customer_id, locked
    try:
        with db.begin_nested():
            db.execute(
                insert(ACCOUNTS),
                {
                    "account_id": customer_id,
                    "kind": "member",
                    "customer_id": customer_id,
                    "balance": 0,
                    "debt": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
    except IntegrityError:
        pass  # another command opened it first; take it as it now is
    locked = lock_account(db, customer_id)
    assert locked is not None
    return customer_id, locked


def pay_debts(db: Session, *, customer_id: str, points: int) -> None:
    """Later earning pays the member's debts, oldest first."""
    rows = db.execute(
        select(DEBTS.c.id, DEBTS.c.remaining)
        .where(DEBTS.c.customer_id == customer_id, DEBTS.c.remaining > 0)
        .order_by(DEBTS.c.id)
    ).all()
    left = points
    for debt_id, remaining in rows:
        if left == 0:
            break
        pay = min(left, remaining)
        db.execute(
            update(DEBTS).where(DEBTS.c.id == debt_id).values(remaining=DEBTS.c.remaining - pay)
        )
        left -= pay
    assert left == 0, "the account's debt and its debt records disagree"


def move_debt(db: Session, *, source_id: str, target_id: str, now: datetime) -> int:
    """A merge: the merged-away member's debt (its open debt records, oldest first as they
    were) becomes the survivor's, whose later earning pays it as their own; the survivor's
    account is opened for it when they have none. The ``member_debt`` account is unchanged
    (the same points are owed, by one member instead of another). Answers the debt moved."""
    source = lock_account(db, source_id)
    if source is None or int(source.debt) == 0:
        return 0
    debt = int(source.debt)
    target_id, _ = open_account(db, target_id, now)
    db.execute(
        update(DEBTS)
        .where(DEBTS.c.customer_id == source_id, DEBTS.c.remaining > 0)
        .values(customer_id=target_id)
    )
    db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == source_id, ACCOUNTS.c.kind == "member")
        .values(debt=0, updated_at=now)
    )
    db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == target_id, ACCOUNTS.c.kind == "member")
        .values(debt=ACCOUNTS.c.debt + debt, updated_at=now)
    )
    return debt


def close_account(db: Session, *, customer_id: str, now: datetime) -> None:
    """Close a member account: one 'close' transaction forfeits the balance to breakage
    (``M -b``, ``breakage +b``; the open lots are consumed by it) and writes the debt off
    (``member_debt +d``, ``breakage -d``); the account becomes 'closed', so no command finds
    it again. The journal stays: every transaction still sums to zero and the program's
    issued, redeemed and expired totals are unchanged."""
    account = db.execute(
        select(ACCOUNTS.c.balance, ACCOUNTS.c.debt)
        .where(ACCOUNTS.c.account_id == customer_id, ACCOUNTS.c.kind == "member")
        .with_for_update()
    ).first()
    if account is None:
        return
    points, debt = int(account.balance), int(account.debt)
    if points or debt:
        transaction_id = record_transaction(
            db,
            customer_id=customer_id,
            kind="close",
            points=-points,
            reason="Account closed: the member's personal data was erased",
            legs=[(customer_id, -points), (BREAKAGE, points - debt), (MEMBER_DEBT, debt)],
            debt_change=-debt,
            details={"forfeited_points": points, "debt_written_off": debt},
            now=now,
        )
        if points:
            consume_lots(db, customer_id=customer_id, points=points, transaction_id=transaction_id)
        db.execute(
            update(DEBTS)
            .where(DEBTS.c.customer_id == customer_id, DEBTS.c.remaining > 0)
            .values(remaining=0)
        )
    db.execute(
        update(ACCOUNTS)
        .where(ACCOUNTS.c.account_id == customer_id)
        .values(kind="closed", balance=0, debt=0, updated_at=now)
    )
