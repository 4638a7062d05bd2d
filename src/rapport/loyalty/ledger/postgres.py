"""Credit and debit of a member's points on PostgreSQL: the SQL (data-modifying CTEs) and its
parameters, written once and sent two ways. Through the command's session (``credit``,
``take_points``, ``debit_lots``: ``ledger.movements`` on PostgreSQL) and, with its event and
stored answer added, as one statement through the statement pool (``ledger.one_statement``).

The statements write the same rows as ``ledger.portable``, in a fraction of the round trips
and Python; a member's first points and earning that pays debt take the portable path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from rapport.customers import service as customers
from rapport.loyalty.ledger.journal import AccountRow, Credit, Debit, Posted
from rapport.loyalty.ledger.settings import Program

# Through the session a credit is one statement, a debit two; through the statement pool each
# is one statement with its event and answer. The portable code stays the reference (SQLite,
# and the rare paths: a first earning, paying debt); the tests run every command on both.
#
# Credit an existing member (one statement: the UPDATE takes the row lock and re-checks its
# condition on the newest row version; nothing else here reads rows another command changes).
# Expiry defaults to the program's months in UTC calendar months, like ``add_months``.
_CREDIT = """
WITH account AS (
    UPDATE loyalty_accounts SET balance = balance + %(points)s, updated_at = %(now)s
    WHERE account_id = %(customer)s AND kind = 'member' {guard}
    RETURNING balance, debt
), expiry AS (
    SELECT coalesce(
        %(expires)s::timestamptz,
        ((%(earned)s::timestamptz AT TIME ZONE 'UTC') + make_interval(months => coalesce(
            (SELECT expiry_months FROM loyalty_program WHERE id = 1), {default_months}
        ))) AT TIME ZONE 'UTC'
    ) AS at
), journal AS (
    INSERT INTO loyalty_transactions
        (customer_id, kind, points, reason, order_id, rule_id, debt_change, details, created_at)
    SELECT %(customer)s, %(kind)s, %(points)s, %(reason)s, %(order)s, %(rule)s, 0, '{{}}',
        %(now)s
    FROM account
    RETURNING id
), entries AS (
    INSERT INTO loyalty_entries (transaction_id, account_id, amount)
    SELECT journal.id, leg.account_id, leg.amount
    FROM journal, (VALUES (%(customer)s, %(points)s::bigint), (%(source)s, -%(points)s::bigint))
        AS leg (account_id, amount)
), lot AS (
    INSERT INTO loyalty_lots
        (customer_id, transaction_id, order_id, amount, remaining, earned_at, expires_at)
    SELECT %(customer)s, journal.id, %(order)s, %(points)s, %(points)s, %(earned)s, expiry.at
    FROM journal, expiry
)
"""
CREDIT_DEBT_FREE_MEMBER = _CREDIT.format(
    guard="AND debt = 0", default_months=Program().expiry_months
)
# The one-statement path takes the customer's id as sent, unresolved: its statements also
# require an active profile, so a merged-away profile's id (whose account the merge emptied,
# or is about to) is never credited or debited there; the session path resolves it to the
# profile it went into. Erasure closes the account, so an erased id declines there anyway.
_ACTIVE_CUSTOMER = customers.active_customer_sql("customer")
CREDIT_DEBT_FREE_ACTIVE_MEMBER = _CREDIT.format(
    guard="AND debt = 0 AND " + _ACTIVE_CUSTOMER, default_months=Program().expiry_months
)
CREDIT_MEMBER = _CREDIT.format(guard="", default_months=Program().expiry_months)
# The credit's answer through the session: the journal transaction, the balances after it, the
# lot's expiry.
_CREDITED = (
    "SELECT journal.id, account.balance, account.debt, expiry.at FROM journal, account, expiry"
)

# Take a debit's points from the member's balance if it covers them: one guarded UPDATE, so
# check-and-take is one statement and concurrent debits queue on the row lock, each seeing the
# balance the previous one left. Answers the member's (balance, debt) after it, or no row.
_TAKE = """
    UPDATE loyalty_accounts SET balance = balance - %(points)s, updated_at = %(now)s
    WHERE account_id = %(customer)s AND kind = 'member' AND balance >= %(points)s{guard}
    RETURNING balance, debt
"""
TAKE_POINTS = _TAKE.format(guard="")
TAKE_ACTIVE_MEMBER_POINTS = _TAKE.format(guard=" AND " + _ACTIVE_CUSTOMER)

# The lots side of a redemption, after ``account`` (the member's row, its points already
# taken): consume the open lots oldest first (a running sum says how much each gives), write
# the journal and the consumptions.
DEBIT_LOTS = """
oldest AS (
    -- Every open lot holds at least one point: no more lots than points are needed.
    SELECT id, remaining, earned_at
    FROM loyalty_lots
    WHERE customer_id = %(customer)s AND remaining > 0
    ORDER BY earned_at, id
    LIMIT %(points)s
), open_lots AS (
    SELECT id, remaining, sum(remaining) OVER (ORDER BY earned_at, id) AS running
    FROM oldest
), take AS (
    SELECT id, least(remaining, %(points)s - (running - remaining)) AS points
    FROM open_lots
    WHERE running - remaining < %(points)s
), journal AS (
    INSERT INTO loyalty_transactions
        (customer_id, kind, points, reason, order_id, rule_id, debt_change, details, created_at)
    SELECT %(customer)s, %(kind)s, -%(points)s, %(reason)s, %(order)s, NULL, 0, '{}', %(now)s
    FROM account
    RETURNING id
), entries AS (
    INSERT INTO loyalty_entries (transaction_id, account_id, amount)
    SELECT journal.id, leg.account_id, leg.amount
    FROM journal, (VALUES (%(customer)s, -%(points)s::bigint), (%(target)s, %(points)s::bigint))
        AS leg (account_id, amount)
), used AS (
    UPDATE loyalty_lots SET remaining = loyalty_lots.remaining - take.points
    FROM take, journal WHERE loyalty_lots.id = take.id
    RETURNING take.points
), consumed AS (
    INSERT INTO loyalty_lot_consumptions (lot_id, transaction_id, points)
    SELECT take.id, journal.id, take.points FROM take, journal
)"""
# Through the session, after TAKE_POINTS has taken the points (and the row lock): a second
# statement, so that it reads the lots after the lock is held (at READ COMMITTED one statement
# would read them from a snapshot taken before it waited for the lock). Answers the
# transaction id and the points the lots gave.
_DEBIT_LOCKED = (
    "WITH account AS (SELECT balance, debt FROM loyalty_accounts"
    " WHERE account_id = %(customer)s AND kind = 'member'),"
    + DEBIT_LOTS
    + " SELECT journal.id, (SELECT coalesce(sum(points), 0) FROM used) FROM journal"
)


# Keyword arguments, not a Credit or Debit: the one-statement path builds these for every
# earn and redeem, and a frozen dataclass costs it several times the dict.
def credit_parameters(
    *,
    customer_id: str,
    points: int,
    kind: str,
    source_account: str,
    reason: str,
    order_id: str | None,
    rule_id: str | None,
    now: datetime,
    earned_at: datetime,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """The parameters of CREDIT_MEMBER and CREDIT_DEBT_FREE_MEMBER (see ``Credit``)."""
    return {
        "customer": customer_id,
        "points": points,
        "kind": kind,
        "source": source_account,
        "reason": reason,
        "order": order_id,
        "rule": rule_id,
        "now": now,
        "earned": earned_at,
        "expires": expires_at,
    }


def debit_parameters(
    *,
    customer_id: str,
    points: int,
    kind: str,
    target_account: str,
    reason: str,
    order_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The parameters of TAKE_POINTS and DEBIT_LOTS (see ``Debit``)."""
    return {
        "customer": customer_id,
        "points": points,
        "kind": kind,
        "target": target_account,
        "reason": reason,
        "order": order_id,
        "now": now,
    }


def _of_credit(credit: Credit) -> dict[str, Any]:
    return credit_parameters(
        customer_id=credit.customer_id,
        points=credit.points,
        kind=credit.kind,
        source_account=credit.source_account,
        reason=credit.reason,
        order_id=credit.order_id,
        rule_id=credit.rule_id,
        now=credit.now,
        earned_at=credit.earned_at,
        expires_at=credit.expires_at,
    )


def _of_debit(debit: Debit) -> dict[str, Any]:
    return debit_parameters(
        customer_id=debit.customer_id,
        points=debit.points,
        kind=debit.kind,
        target_account=debit.target_account,
        reason=debit.reason,
        order_id=debit.order_id,
        now=debit.now,
    )


def credit(connection: Connection, credit: Credit) -> Posted | None:
    """Credit a member who has an account (and, when ``pays_debt``, no debt) in one
    statement, inside the session's transaction. ``None`` (nothing written) for anyone else:
    ``portable.credit_opening_or_paying_debt`` serves them."""
    row = connection.exec_driver_sql(
        (CREDIT_DEBT_FREE_MEMBER if credit.pays_debt else CREDIT_MEMBER) + _CREDITED,
        _of_credit(credit),
    ).first()
    if row is None:
        return None
    transaction_id, balance, debt, expiry = row
    return Posted(
        transaction_id=transaction_id,
        customer_id=credit.customer_id,
        kind=credit.kind,
        points=credit.points,
        balance=balance,
        debt=debt,
        expires_at=expiry,
    )


def take_points(connection: Connection, debit: Debit) -> AccountRow | None:
    """TAKE_POINTS inside the session's transaction: the member's (balance, debt) after it,
    or ``None`` (nothing changed) when the balance does not cover the debit."""
    return connection.exec_driver_sql(TAKE_POINTS, _of_debit(debit)).first()


def debit_lots(connection: Connection, debit: Debit) -> tuple[int, int]:
    """After :func:`take_points`, in the same transaction: the journal, and the member's
    lots consumed oldest first. Answers the transaction id and the points the lots gave."""
    transaction_id, consumed = connection.exec_driver_sql(_DEBIT_LOCKED, _of_debit(debit)).one()
    return int(transaction_id), int(consumed)
