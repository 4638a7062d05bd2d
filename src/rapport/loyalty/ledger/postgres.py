"""Credit and debit of a member's points as PostgreSQL statements (data-modifying CTEs)."""

from __future__ import annotations

from rapport.loyalty.ledger.settings import Program

# PostgreSQL does a whole earn or redemption in one or two statements (data-modifying CTEs):
# the same rows as the portable code below writes, in a fraction of the round trips and
# Python. The portable code stays the reference (SQLite, and the rare paths: a first earning,
# paying debt); the tests run every command on both.
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
CREDIT_MEMBER = _CREDIT.format(guard="", default_months=Program().expiry_months)
CREDITED = (
    "SELECT journal.id, account.balance, account.debt, expiry.at FROM journal, account, expiry"
)

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
# After the guarded UPDATE has taken the points (and the row lock), a second statement, so
# that it reads the lots after the lock is held. Answers the transaction id and the points
# the lots gave.
DEBIT_LOCKED = (
    "WITH account AS (SELECT balance, debt FROM loyalty_accounts"
    " WHERE account_id = %(customer)s AND kind = 'member'),"
    + DEBIT_LOTS
    + " SELECT journal.id, (SELECT coalesce(sum(points), 0) FROM used) FROM journal"
)
