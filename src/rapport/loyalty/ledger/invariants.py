"""The ledger's invariants checked over the whole ledger (``invariant_violations``): run by
the tests after every step and by the benchmark after its load."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.tables import ACCOUNTS, CONSUMPTIONS, DEBTS, ENTRIES, LOTS
from rapport.loyalty.models import MEMBER_DEBT


def invariant_violations(db: Session) -> list[str]:
    """Every way the ledger disagrees with itself (an empty list when it is sound): journal
    transactions that do not sum to zero, member balances that differ from their entries or
    open lots, lots consumed beyond their amount, debts that disagree with their records."""
    found: list[str] = []
    for transaction_id, total in db.execute(
        select(ENTRIES.c.transaction_id, func.sum(ENTRIES.c.amount))
        .group_by(ENTRIES.c.transaction_id)
        .having(func.sum(ENTRIES.c.amount) != 0)
    ):
        found.append(f"transaction {transaction_id} sums to {total}")
    entry_sums = (
        select(ENTRIES.c.account_id, func.sum(ENTRIES.c.amount).label("total"))
        .group_by(ENTRIES.c.account_id)
        .subquery()
    )
    lot_sums = (
        select(LOTS.c.customer_id, func.sum(LOTS.c.remaining).label("total"))
        .group_by(LOTS.c.customer_id)
        .subquery()
    )
    debt_sums = (
        select(DEBTS.c.customer_id, func.sum(DEBTS.c.remaining).label("total"))
        .group_by(DEBTS.c.customer_id)
        .subquery()
    )
    for account_id, balance_, debt, entries_total, lots_total, debts_total in db.execute(
        select(
            ACCOUNTS.c.account_id,
            ACCOUNTS.c.balance,
            ACCOUNTS.c.debt,
            func.coalesce(entry_sums.c.total, 0),
            func.coalesce(lot_sums.c.total, 0),
            func.coalesce(debt_sums.c.total, 0),
        )
        .where(ACCOUNTS.c.kind == "member")
        .outerjoin(entry_sums, entry_sums.c.account_id == ACCOUNTS.c.account_id)
        .outerjoin(lot_sums, lot_sums.c.customer_id == ACCOUNTS.c.account_id)
        .outerjoin(debt_sums, debt_sums.c.customer_id == ACCOUNTS.c.account_id)
    ):
        if balance_ < 0:
            found.append(f"member {account_id} has a negative balance {balance_}")
        if balance_ != entries_total:
            found.append(f"member {account_id}: balance {balance_} but entries {entries_total}")
        if balance_ != lots_total:
            found.append(f"member {account_id}: balance {balance_} but open lots {lots_total}")
        if debt != debts_total:
            found.append(f"member {account_id}: debt {debt} but debt records {debts_total}")
    consumed = (
        select(CONSUMPTIONS.c.lot_id, func.sum(CONSUMPTIONS.c.points).label("total"))
        .group_by(CONSUMPTIONS.c.lot_id)
        .subquery()
    )
    for lot_id, amount, remaining, used in db.execute(
        select(LOTS.c.id, LOTS.c.amount, LOTS.c.remaining, func.coalesce(consumed.c.total, 0))
        .outerjoin(consumed, consumed.c.lot_id == LOTS.c.id)
        .where(LOTS.c.amount - LOTS.c.remaining != func.coalesce(consumed.c.total, 0))
    ):
        found.append(f"lot {lot_id}: amount {amount}, remaining {remaining}, consumed {used}")
    debt_total = db.scalar(
        select(func.coalesce(func.sum(ENTRIES.c.amount), 0)).where(
            ENTRIES.c.account_id == MEMBER_DEBT
        )
    )
    owed = db.scalar(
        select(func.coalesce(func.sum(ACCOUNTS.c.debt), 0)).where(ACCOUNTS.c.kind == "member")
    )
    if int(debt_total or 0) != -int(owed or 0):
        found.append(f"member debt account holds {debt_total} but members owe {owed}")
    return found
