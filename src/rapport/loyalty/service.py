"""Loyalty verbs: the points ledger. The only functions other code calls to move or read points.

Every command (``earn``, ``redeem``, ``adjust``, ``reverse_for_return``, ``expire_lots``) owns its
transaction, writes a journal transaction whose entries sum to zero, keeps the member's lots and
running balance in step, appends its event to the log, and commits.

Concurrency: every command that changes a member's points first takes that member's account row
(a guarded ``UPDATE … WHERE balance >= n`` for redemption, ``SELECT … FOR UPDATE`` elsewhere),
so one member's commands run one at a time on PostgreSQL; on SQLite every write transaction
begins ``IMMEDIATE`` and writers are already serialised. The database refuses a negative
balance (a CHECK constraint) as a last line of defence. Batch jobs lock members in key order.

The hot path (earn and redeem) uses Core statements, not ORM objects: a handful of round trips
and little Python per command.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import log_event, log_event_parameters, log_event_sql
from rapport.loyalty.models import (
    ADJUSTMENTS,
    BREAKAGE,
    EXPIRED,
    ISSUED,
    MEMBER_DEBT,
    PROGRAM_ACCOUNTS,
    REDEEMED,
    AnnouncementDelivery,
    Coupon,
    LedgerEntry,
    LedgerTransaction,
    LotConsumption,
    LoyaltyAccount,
    LoyaltyProgram,
    MemberDebt,
    Membership,
    MembershipPayment,
    PointLot,
    Referral,
    ReferralCode,
    TierStanding,
)
from rapport.platform import clock, idempotency
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.privacy import PrivacySubject
from rapport.platform.statements import StatementPool

# One command never moves more points than this (far beyond any real basket, well inside
# 64-bit sums, and a guard against a typo of a few zeros).
MAX_POINTS_PER_COMMAND = 100_000_000

# The hot path writes through Core tables, not ORM objects.
_accounts = cast(Table, LoyaltyAccount.__table__)
_transactions = cast(Table, LedgerTransaction.__table__)
_entries = cast(Table, LedgerEntry.__table__)
_lots = cast(Table, PointLot.__table__)
_consumptions = cast(Table, LotConsumption.__table__)
_debts = cast(Table, MemberDebt.__table__)

# (balance, debt) of a member account; (id, remaining) of a lot.
AccountRow = Row[Any, Any]
LotRow = Row[Any, Any]


class InsufficientPoints(Conflict):
    """The member's available balance does not cover the points asked for."""

    slug, title = "insufficient-points", "Not enough points"


@dataclass(frozen=True, slots=True)
class Program:
    """The program's settings (defaults until an operator changes them)."""

    name: str = "Rapport Rewards"
    expiry_months: int = 12
    point_value_minor_per_100: int = 100
    currency: str = "EUR"
    allow_debt: bool = True


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


# ------------------------------------------------------------------------------ program


def get_program(db: Session) -> Program:
    row = db.get(LoyaltyProgram, 1)
    if row is None:
        return Program()
    return Program(
        name=row.name,
        expiry_months=row.expiry_months,
        point_value_minor_per_100=row.point_value_minor_per_100,
        currency=row.currency,
        allow_debt=row.allow_debt,
    )


def configure_program(
    db: Session,
    *,
    name: str | None = None,
    expiry_months: int | None = None,
    point_value_minor_per_100: int | None = None,
    currency: str | None = None,
    allow_debt: bool | None = None,
) -> Program:
    """Change the program's settings; what is not given stays as it is. Points already
    earned keep their expiry date: settings never rewrite the past."""
    if expiry_months is not None and not 1 <= expiry_months <= 120:
        raise InvalidInput("expiry_months must be between 1 and 120", field="expiry_months")
    if point_value_minor_per_100 is not None and point_value_minor_per_100 < 0:
        raise InvalidInput(
            "point_value_minor_per_100 cannot be negative", field="point_value_minor_per_100"
        )
    row = db.get(LoyaltyProgram, 1)
    if row is None:
        defaults = Program()
        row = LoyaltyProgram(
            id=1,
            name=defaults.name,
            expiry_months=defaults.expiry_months,
            point_value_minor_per_100=defaults.point_value_minor_per_100,
            currency=defaults.currency,
            allow_debt=defaults.allow_debt,
            updated_at=clock.now(),
        )
        db.add(row)
    if name is not None:
        row.name = name
    if expiry_months is not None:
        row.expiry_months = expiry_months
    if point_value_minor_per_100 is not None:
        row.point_value_minor_per_100 = point_value_minor_per_100
    if currency is not None:
        row.currency = currency
    if allow_debt is not None:
        row.allow_debt = allow_debt
    row.updated_at = clock.now()
    db.commit()
    return get_program(db)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months; the 31st becomes the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# ------------------------------------------------------------------------------ helpers


def _check_points(points: int, *, allow_negative: bool = False) -> None:
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


def _record_transaction(
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
        insert(_transactions).returning(_transactions.c.id),
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
        db.execute(insert(_entries), rows)
    return transaction_id


_take_from_lot = (
    update(_lots)
    .where(_lots.c.id == bindparam("lot"))
    .values(remaining=_lots.c.remaining - bindparam("take"))
)


def _consume_lots(
    db: Session,
    *,
    customer_id: str,
    points: int,
    transaction_id: int,
    lots: Sequence[LotRow] | None = None,
) -> int:
    """Take up to ``points`` from the member's open lots, first in first out (or from
    ``lots`` in the order given), recording each consumption. Returns the points taken.
    The caller holds the member's account row."""
    if lots is None:
        lots = db.execute(
            select(_lots.c.id, _lots.c.remaining)
            .where(_lots.c.customer_id == customer_id, _lots.c.remaining > 0)
            .order_by(_lots.c.earned_at, _lots.c.id)
            .limit(points)  # every open lot holds at least one point
        ).all()
    takes = []
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        take = min(left, remaining)
        takes.append({"lot": lot_id, "take": take})
        left -= take
    if takes:
        db.execute(_take_from_lot, takes)
        db.execute(
            insert(_consumptions),
            [
                {"lot_id": t["lot"], "transaction_id": transaction_id, "points": t["take"]}
                for t in takes
            ],
        )
    return points - left


def _lock_account(db: Session, customer_id: str) -> AccountRow | None:
    return db.execute(
        select(_accounts.c.balance, _accounts.c.debt)
        .where(_accounts.c.account_id == customer_id, _accounts.c.kind == "member")
        .with_for_update()
    ).first()


def _open_account(db: Session, customer_id: str, now: datetime) -> tuple[str, AccountRow]:
    """The member's account row, locked, created on the customer's first points. Returns
    the customer id the account is kept under (merged profiles resolve to the survivor)."""
    locked = _lock_account(db, customer_id)
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
    locked = _lock_account(db, customer_id)
    if locked is not None:
        return customer_id, locked
    try:
        with db.begin_nested():
            db.execute(
                insert(_accounts),
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
    locked = _lock_account(db, customer_id)
    assert locked is not None
    return customer_id, locked


def _pay_debts(db: Session, *, customer_id: str, points: int) -> None:
    """Later earning pays the member's debts, oldest first."""
    rows = db.execute(
        select(_debts.c.id, _debts.c.remaining)
        .where(_debts.c.customer_id == customer_id, _debts.c.remaining > 0)
        .order_by(_debts.c.id)
    ).all()
    left = points
    for debt_id, remaining in rows:
        if left == 0:
            break
        pay = min(left, remaining)
        db.execute(
            update(_debts).where(_debts.c.id == debt_id).values(remaining=_debts.c.remaining - pay)
        )
        left -= pay
    assert left == 0, "the account's debt and its debt records disagree"


def _finish(
    db: Session,
    posted: Posted,
    before_commit: BeforeCommit | None,
    event: dict[str, Any],
    *,
    commit: bool = True,
) -> Posted:
    # ``commit=False`` lets a caller (the earning processor, an order placed with points)
    # join the movement to its own transaction. A refusal still rolls back that whole
    # transaction, which is what such a caller wants: nothing of it happens.
    log_event(
        db,
        type=event.pop("type"),
        channel=event.pop("channel"),
        customer_id=posted.customer_id,
        properties={
            "transaction_id": posted.transaction_id,
            "points": posted.points,
            "balance": posted.balance,
            **event,
        },
    )
    if before_commit is not None:
        db.flush()
        before_commit(db, posted)
    if commit:
        db.commit()
    else:
        db.flush()
    return posted


# ------------------------------------------------------------------------------ commands

# PostgreSQL does a whole earn or redemption in one or two statements (data-modifying CTEs):
# the same rows as the portable code below writes, in a fraction of the round trips and
# Python. The portable code stays the reference (SQLite, and the rare paths: a first earning,
# paying debt); the tests run every command on both.
#
# Credit an existing member (one statement: the UPDATE takes the row lock and re-checks its
# condition on the newest row version; nothing else here reads rows another command changes).
# Expiry defaults to the program's months in UTC calendar months, like ``add_months``.
_PG_CREDIT = """
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
_PG_CREDIT_DEBT_FREE_MEMBER = _PG_CREDIT.format(
    guard="AND debt = 0", default_months=Program().expiry_months
)
_PG_CREDIT_MEMBER = _PG_CREDIT.format(guard="", default_months=Program().expiry_months)
_PG_CREDITED = (
    "SELECT journal.id, account.balance, account.debt, expiry.at FROM journal, account, expiry"
)

# The lots side of a redemption, after ``account`` (the member's row, its points already
# taken): consume the open lots oldest first (a running sum says how much each gives), write
# the journal and the consumptions.
_PG_DEBIT_LOTS = """
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
_PG_DEBIT_LOCKED = (
    "WITH account AS (SELECT balance, debt FROM loyalty_accounts"
    " WHERE account_id = %(customer)s AND kind = 'member'),"
    + _PG_DEBIT_LOTS
    + " SELECT journal.id, (SELECT coalesce(sum(points), 0) FROM used) FROM journal"
)


def _credit(
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
            (_PG_CREDIT_DEBT_FREE_MEMBER if pays_debt else _PG_CREDIT_MEMBER) + _PG_CREDITED,
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
    guard = _accounts.c.debt == 0 if pays_debt else true()
    fast = db.execute(
        update(_accounts)
        .where(_accounts.c.account_id == customer_id, _accounts.c.kind == "member", guard)
        .values(balance=_accounts.c.balance + points, updated_at=now)
        .returning(_accounts.c.balance, _accounts.c.debt)
    ).first()
    paid = 0
    if fast is not None:
        balance, debt = fast
    else:
        customer_id, (balance, debt) = _open_account(db, customer_id, now)
        paid = min(debt, points) if pays_debt else 0
        balance, debt = balance + points - paid, debt - paid
        db.execute(
            update(_accounts)
            .where(_accounts.c.account_id == customer_id)
            .values(balance=balance, debt=debt, updated_at=now)
        )
        if paid:
            _pay_debts(db, customer_id=customer_id, points=paid)
    credited = points - paid
    transaction_id = _record_transaction(
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
            insert(_lots),
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
    _check_points(points)
    posted = _credit(
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
    return _finish(
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


def _debit(
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
        update(_accounts)
        .where(
            _accounts.c.account_id == customer_id,
            _accounts.c.kind == "member",
            _accounts.c.balance >= points,
        )
        .values(balance=_accounts.c.balance - points, updated_at=now)
        .returning(_accounts.c.balance, _accounts.c.debt)
    ).first()
    if taken is None:
        current = db.scalar(
            select(_accounts.c.balance).where(
                _accounts.c.account_id == customer_id, _accounts.c.kind == "member"
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
            _PG_DEBIT_LOCKED,
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
        transaction_id = _record_transaction(
            db,
            customer_id=customer_id,
            kind=kind,
            points=-points,
            reason=reason,
            legs=[(customer_id, -points), (target_account, points)],
            order_id=order_id,
            now=now,
        )
        consumed = _consume_lots(
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
    _check_points(points)
    posted = _debit(
        db,
        customer_id=customer_id,
        points=points,
        kind="redeem",
        target_account=REDEEMED,
        reason=reason,
        order_id=order_id,
    )
    return _finish(
        db,
        posted,
        before_commit,
        {"type": "points_redeemed", "channel": channel, "order_id": order_id, "reason": reason},
        commit=commit,
    )


# ------------------------------------------------------------------ commands in one statement

# Earn and redeem for the usual member (an account, no debt), each as ONE statement with its
# event and the stored answer for its Idempotency-Key, sent from the event loop through
# ``platform.statements`` (PostgreSQL): one round trip where the session path takes seven.
# Each runs at REPEATABLE READ in its own transaction, so a redemption's lots are read from the
# same snapshot as the balance it guards, and a concurrent change to the member refuses it
# (it runs again). The answer is built in SQL as ``_posted`` renders a Posted.


def _posted_json(*, transaction: str, expires: str) -> str:
    return (
        f"jsonb_build_object('transaction_id', {transaction}, 'customer_id', %(customer)s::text,"
        " 'kind', %(kind)s::text, 'points', %(change)s::bigint, 'balance', account.balance,"
        f" 'debt', account.debt, 'debt_change', 0, 'expires_at', {expires}, 'written_off', 0)"
    )


def _event_json(*, transaction: str, rule: bool) -> str:
    return (
        f"jsonb_build_object('transaction_id', {transaction}, 'points', %(change)s::bigint,"
        " 'balance', account.balance, 'order_id', %(order)s::text,"
        + (" 'rule_id', %(rule)s::text," if rule else "")
        + " 'reason', %(reason)s::text)"
    )


# Python's isoformat of a UTC datetime, which the session path's answers carry.
_ISO_UTC = "to_char(expiry.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"

_PG_EARN_NOW = (
    _PG_CREDIT_DEBT_FREE_MEMBER
    + ", event AS ("
    + log_event_sql(
        source="journal, account", properties=_event_json(transaction="journal.id", rule=True)
    )
    + "), answer AS ("
    + idempotency.store_answer_sql(
        source="journal, account, expiry",
        body=_posted_json(transaction="journal.id", expires=_ISO_UTC),
    )
    + ") SELECT response_body::text FROM answer"
)

_PG_REDEEM_NOW = (
    """WITH account AS (
    UPDATE loyalty_accounts SET balance = balance - %(points)s, updated_at = %(now)s
    WHERE account_id = %(customer)s AND kind = 'member' AND balance >= %(points)s
    RETURNING balance, debt
),"""
    + _PG_DEBIT_LOTS
    # The lots hold the balance (the ledger's invariant). Were it ever broken, the failing
    # cast refuses the whole statement rather than commit a redemption the lots do not cover
    # (over a column, so that the planner cannot fold it into an error at once).
    + """, checked AS (
    SELECT CASE WHEN (SELECT coalesce(sum(points), 0) FROM used) = %(points)s THEN journal.id
        ELSE ('the lots hold less than the balance (transaction ' || journal.id || ')')::bigint
    END AS id
    FROM journal
), event AS ("""
    + log_event_sql(
        source="checked, account", properties=_event_json(transaction="checked.id", rule=False)
    )
    + "), answer AS ("
    + idempotency.store_answer_sql(
        source="checked, account", body=_posted_json(transaction="checked.id", expires="NULL")
    )
    + ") SELECT response_body::text FROM answer"
)


async def earn_now(
    statements: StatementPool,
    *,
    customer_id: str,
    points: int,
    reason: str,
    order_id: str | None,
    rule_id: str | None,
    expires_at: datetime | None,
    channel: str,
    answer: dict[str, Any],
) -> str | None:
    """:func:`earn` for a member with an account and no debt, as one statement, storing
    the answer under its key (``answer``: ``idempotency.store_answer_parameters``). Answers
    that JSON, or ``None`` when the session path must run: a first earning, debt to pay, the
    key already stored, the member busy."""
    _check_points(points)
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be after the points are earned", field="expires_at")
    row = await statements.first_row(
        _PG_EARN_NOW,
        {
            "customer": customer_id,
            "points": points,
            "change": points,
            "kind": "earn",
            "source": ISSUED,
            "reason": reason,
            "order": order_id,
            "rule": rule_id,
            "now": now,
            "earned": now,
            "expires": expires_at,
            **log_event_parameters(type="points_earned", channel=channel, customer_id=customer_id),
            **answer,
        },
    )
    return None if row is None else cast(str, row[0])


async def redeem_now(
    statements: StatementPool,
    *,
    customer_id: str,
    points: int,
    reason: str,
    order_id: str | None,
    channel: str,
    answer: dict[str, Any],
) -> str | None:
    """:func:`redeem` when the balance covers it, as one statement, storing the answer
    under its key. Answers that JSON, or ``None`` when the session path must run (to refuse
    with the balance, or because the key is stored or the member busy)."""
    _check_points(points)
    row = await statements.first_row(
        _PG_REDEEM_NOW,
        {
            "customer": customer_id,
            "points": points,
            "change": -points,
            "kind": "redeem",
            "target": REDEEMED,
            "reason": reason,
            "order": order_id,
            "now": clock.now(),
            **log_event_parameters(
                type="points_redeemed", channel=channel, customer_id=customer_id
            ),
            **answer,
        },
    )
    return None if row is None else cast(str, row[0])


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
    _check_points(points, allow_negative=True)
    if not reason.strip():
        raise InvalidInput("Say why the points are adjusted", field="reason")
    if points > 0:
        posted = _credit(
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
        posted = _debit(
            db,
            customer_id=customer_id,
            points=-points,
            kind="adjust",
            target_account=ADJUSTMENTS,
            reason=reason,
            order_id=None,
        )
    return _finish(
        db,
        posted,
        before_commit,
        {"type": "points_adjusted", "channel": "call_center", "reason": reason},
        commit=commit,
    )


@dataclass(frozen=True, slots=True)
class OrderPoints:
    """What an order has earned and what returns have already taken back."""

    earned: int = 0
    reversed: int = 0

    @property
    def reversible(self) -> int:
        return self.earned - self.reversed


def order_points(db: Session, *, customer_id: str, order_id: str) -> OrderPoints:
    """Points the order issued to the member, and how many returns took back (including
    any written off because the program allows no debt)."""
    earned = reversed_ = 0
    for kind, points, debt_change, details in db.execute(
        select(
            _transactions.c.kind,
            _transactions.c.points,
            _transactions.c.debt_change,
            _transactions.c.details,
        ).where(
            _transactions.c.customer_id == customer_id,
            _transactions.c.order_id == order_id,
            _transactions.c.kind.in_(("earn", "reverse")),
        )
    ):
        if kind == "earn":
            earned += points - debt_change  # issued: what was credited plus the debt it paid
        else:
            reversed_ += -points + debt_change + int((details or {}).get("written_off", 0))
    return OrderPoints(earned=earned, reversed=reversed_)


def reverse_for_return(
    db: Session,
    *,
    customer_id: str,
    order_id: str,
    points: int | None = None,
    share: Fraction | None = None,
    reason: str = "Order returned",
    before_commit: BeforeCommit | None = None,
    commit: bool = True,
) -> Posted:
    """Take back the points an order earned, for the part returned: ``points`` outright or
    ``share`` (returned value / order value) of what the order earned, rounded down in the
    member's favour, never more than the order still has to reverse. Points still open on
    the order's own lots go first, then the member's other lots oldest first; what the
    member already spent becomes debt (or, when the program allows no debt, is written
    off). The balance never goes negative."""
    if (points is None) == (share is None):
        raise InvalidInput("Give either points or share", field="points")
    if share is not None and not 0 < share <= 1:
        raise InvalidInput("share must be more than 0 and at most 1", field="share")
    if points is not None:
        _check_points(points)
    now = clock.now()
    locked = _lock_account(db, customer_id)
    if locked is None:
        db.rollback()
        raise NotFound(f"Customer {customer_id!r} has no points yet", field="customer_id")
    balance, debt = locked
    so_far = order_points(db, customer_id=customer_id, order_id=order_id)
    if so_far.earned == 0:
        db.rollback()
        raise InvalidInput(f"Order {order_id!r} earned no points for this member", field="order_id")
    if points is not None:
        wanted = points
    else:
        assert share is not None
        wanted = int(so_far.earned * share)  # rounded down, in the member's favour
    to_reverse = min(wanted, so_far.reversible)
    if to_reverse <= 0:
        db.rollback()
        raise Conflict(f"The points of order {order_id!r} were already reversed", field="order_id")
    order_lots = db.execute(
        select(_lots.c.id, _lots.c.remaining)
        .where(
            _lots.c.customer_id == customer_id,
            _lots.c.order_id == order_id,
            _lots.c.remaining > 0,
        )
        .order_by(_lots.c.earned_at, _lots.c.id)
    ).all()
    other_lots = db.execute(
        select(_lots.c.id, _lots.c.remaining)
        .where(
            _lots.c.customer_id == customer_id,
            (_lots.c.order_id != order_id) | _lots.c.order_id.is_(None),
            _lots.c.remaining > 0,
        )
        .order_by(_lots.c.earned_at, _lots.c.id)
    ).all()
    from_balance = min(to_reverse, balance)
    shortfall = to_reverse - from_balance
    program = get_program(db)
    new_debt = shortfall if program.allow_debt else 0
    written_off = shortfall - new_debt
    transaction_id = _record_transaction(
        db,
        customer_id=customer_id,
        kind="reverse",
        points=-from_balance,
        reason=reason,
        legs=[
            (customer_id, -from_balance),
            (MEMBER_DEBT, -new_debt),
            (ISSUED, from_balance + new_debt),
        ],
        order_id=order_id,
        debt_change=new_debt,
        details={"requested": wanted, "written_off": written_off} if written_off else {},
        now=now,
    )
    taken = _consume_lots(
        db,
        customer_id=customer_id,
        points=from_balance,
        transaction_id=transaction_id,
        lots=[*order_lots, *other_lots],
    )
    assert taken == from_balance, "lots hold less than the balance"
    balance, debt = balance - from_balance, debt + new_debt
    db.execute(
        update(_accounts)
        .where(_accounts.c.account_id == customer_id)
        .values(balance=balance, debt=debt, updated_at=now)
    )
    if new_debt:
        db.execute(
            insert(_debts),
            {
                "customer_id": customer_id,
                "transaction_id": transaction_id,
                "order_id": order_id,
                "amount": new_debt,
                "remaining": new_debt,
                "created_at": now,
            },
        )
    posted = Posted(
        transaction_id=transaction_id,
        customer_id=customer_id,
        kind="reverse",
        points=-from_balance,
        balance=balance,
        debt=debt,
        debt_change=new_debt,
        written_off=written_off,
    )
    return _finish(
        db,
        posted,
        before_commit,
        {
            "type": "points_reversed",
            "channel": "web",
            "order_id": order_id,
            "debt_change": new_debt,
            "written_off": written_off,
        },
        commit=commit,
    )


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    members: int = 0
    lots: int = 0
    points: int = 0


def expire_lots(db: Session, *, now: datetime | None = None, batch: int = 200) -> ExpiryRun:
    """Expire every lot whose date has passed: one ``expire`` transaction per member (their
    due lots consumed first-in first-out), committed a batch of members at a time, members
    locked in key order. Safe to run again or in two workers at once."""
    moment = now or clock.now()
    members = lots_done = points_done = 0
    after = ""
    while True:
        due_members = list(
            db.scalars(
                select(_lots.c.customer_id)
                .where(
                    _lots.c.remaining > 0,
                    _lots.c.expires_at <= moment,
                    _lots.c.customer_id > after,
                )
                .group_by(_lots.c.customer_id)
                .order_by(_lots.c.customer_id)
                .limit(batch)
            )
        )
        if not due_members:
            db.commit()
            return ExpiryRun(members=members, lots=lots_done, points=points_done)
        for customer_id in due_members:
            locked = _lock_account(db, customer_id)
            if locked is None:
                continue
            due = db.execute(
                select(_lots.c.id, _lots.c.remaining)
                .where(
                    _lots.c.customer_id == customer_id,
                    _lots.c.remaining > 0,
                    _lots.c.expires_at <= moment,
                )
                .order_by(_lots.c.earned_at, _lots.c.id)
            ).all()
            total = sum(remaining for _, remaining in due)
            if not total:
                continue
            balance = locked.balance - total
            transaction_id = _record_transaction(
                db,
                customer_id=customer_id,
                kind="expire",
                points=-total,
                reason=f"{len(due)} lot(s) expired",
                legs=[(customer_id, -total), (EXPIRED, total)],
                now=clock.now(),
            )
            _consume_lots(
                db,
                customer_id=customer_id,
                points=total,
                transaction_id=transaction_id,
                lots=due,
            )
            db.execute(
                update(_accounts)
                .where(_accounts.c.account_id == customer_id)
                .values(balance=balance, updated_at=clock.now())
            )
            log_event(
                db,
                type="points_expired",
                channel="web",
                customer_id=customer_id,
                properties={"transaction_id": transaction_id, "points": -total},
            )
            members += 1
            lots_done += len(due)
            points_done += total
        db.commit()
        after = due_members[-1]


# ------------------------------------------------------------------------------ reads


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


def balance(db: Session, *, customer_id: str) -> int:
    """The member's available points (0 for a customer who never had any)."""
    return int(
        db.scalar(
            select(_accounts.c.balance).where(
                _accounts.c.account_id == customer_id, _accounts.c.kind == "member"
            )
        )
        or 0
    )


def get_member(db: Session, *, customer_id: str) -> Member | None:
    """The member's balance, debt and open lots (oldest first), or ``None`` without points."""
    account = db.execute(
        select(_accounts.c.balance, _accounts.c.debt).where(
            _accounts.c.account_id == customer_id, _accounts.c.kind == "member"
        )
    ).first()
    if account is None:
        return None
    lots = [
        OpenLot(
            lot_id=row.id,
            amount=row.amount,
            remaining=row.remaining,
            earned_at=clock.as_utc(row.earned_at),
            expires_at=clock.as_utc(row.expires_at),
            order_id=row.order_id,
        )
        for row in db.execute(
            select(_lots)
            .where(_lots.c.customer_id == customer_id, _lots.c.remaining > 0)
            .order_by(_lots.c.earned_at, _lots.c.id)
        )
    ]
    return Member(customer_id=customer_id, balance=account.balance, debt=account.debt, lots=lots)


def statement(
    db: Session, *, customer_id: str, limit: int = 50, before: int | None = None
) -> list[Movement]:
    """The member's movements, newest first: ``limit`` of them with ids below ``before``."""
    query = (
        select(_transactions)
        .where(_transactions.c.customer_id == customer_id)
        .order_by(_transactions.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(_transactions.c.id < before)
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
        )
        for row in db.execute(query)
    ]


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
            func.coalesce(func.sum(_accounts.c.balance), 0),
            func.coalesce(func.sum(_accounts.c.debt), 0),
        ).where(_accounts.c.kind == "member")
    ).one()
    by_account = dict.fromkeys(PROGRAM_ACCOUNTS, 0)
    for account, total in db.execute(
        select(_entries.c.account_id, func.sum(_entries.c.amount))
        .where(_entries.c.account_id.in_(PROGRAM_ACCOUNTS))
        .group_by(_entries.c.account_id)
    ):
        by_account[account] = int(total)
    soon = clock.now() + timedelta(days=30)
    expiring = db.scalar(
        select(func.coalesce(func.sum(_lots.c.remaining), 0)).where(
            _lots.c.remaining > 0, _lots.c.expires_at <= soon
        )
    )
    return Liability(
        members=int(members),
        outstanding_points=int(outstanding),
        outstanding_debt=int(owed),
        value_minor=int(outstanding) * program.point_value_minor_per_100 // 100,
        currency=program.currency,
        point_value_minor_per_100=program.point_value_minor_per_100,
        by_account=by_account,
        expiring_within_30_days=int(expiring or 0),
    )


def invariant_violations(db: Session) -> list[str]:
    """Every way the ledger disagrees with itself (an empty list when it is sound): journal
    transactions that do not sum to zero, member balances that differ from their entries or
    open lots, lots consumed beyond their amount, debts that disagree with their records."""
    found: list[str] = []
    for transaction_id, total in db.execute(
        select(_entries.c.transaction_id, func.sum(_entries.c.amount))
        .group_by(_entries.c.transaction_id)
        .having(func.sum(_entries.c.amount) != 0)
    ):
        found.append(f"transaction {transaction_id} sums to {total}")
    entry_sums = (
        select(_entries.c.account_id, func.sum(_entries.c.amount).label("total"))
        .group_by(_entries.c.account_id)
        .subquery()
    )
    lot_sums = (
        select(_lots.c.customer_id, func.sum(_lots.c.remaining).label("total"))
        .group_by(_lots.c.customer_id)
        .subquery()
    )
    debt_sums = (
        select(_debts.c.customer_id, func.sum(_debts.c.remaining).label("total"))
        .group_by(_debts.c.customer_id)
        .subquery()
    )
    for account_id, balance_, debt, entries_total, lots_total, debts_total in db.execute(
        select(
            _accounts.c.account_id,
            _accounts.c.balance,
            _accounts.c.debt,
            func.coalesce(entry_sums.c.total, 0),
            func.coalesce(lot_sums.c.total, 0),
            func.coalesce(debt_sums.c.total, 0),
        )
        .where(_accounts.c.kind == "member")
        .outerjoin(entry_sums, entry_sums.c.account_id == _accounts.c.account_id)
        .outerjoin(lot_sums, lot_sums.c.customer_id == _accounts.c.account_id)
        .outerjoin(debt_sums, debt_sums.c.customer_id == _accounts.c.account_id)
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
        select(_consumptions.c.lot_id, func.sum(_consumptions.c.points).label("total"))
        .group_by(_consumptions.c.lot_id)
        .subquery()
    )
    for lot_id, amount, remaining, used in db.execute(
        select(_lots.c.id, _lots.c.amount, _lots.c.remaining, func.coalesce(consumed.c.total, 0))
        .outerjoin(consumed, consumed.c.lot_id == _lots.c.id)
        .where(_lots.c.amount - _lots.c.remaining != func.coalesce(consumed.c.total, 0))
    ):
        found.append(f"lot {lot_id}: amount {amount}, remaining {remaining}, consumed {used}")
    debt_total = db.scalar(
        select(func.coalesce(func.sum(_entries.c.amount), 0)).where(
            _entries.c.account_id == MEMBER_DEBT
        )
    )
    owed = db.scalar(
        select(func.coalesce(func.sum(_accounts.c.debt), 0)).where(_accounts.c.kind == "member")
    )
    if int(debt_total or 0) != -int(owed or 0):
        found.append(f"member debt account holds {debt_total} but members owe {owed}")
    return found


# ------------------------------------------------------------------------------ benefits


@dataclass(frozen=True, slots=True)
class MemberBenefits:
    """What a customer's tier and paid plan give them now: read by other domains (support
    queues by ``support_priority``, campaigns by ``early_access_hours``, shipping)."""

    tier_id: str
    paying_plan: str | None
    points_multiplier: float
    member_discount_percent: float
    free_shipping_over_minor: int | None  # 0: always free; None: never
    member_prices: bool
    support_priority: str
    early_access_hours: int


def member_benefits(db: Session, *, customer_id: str) -> MemberBenefits:
    """The better of the tier's and the paid plan's benefits for ``customer_id``."""
    # Imported here: tiers and plans build on this ledger module.
    from rapport.loyalty import membership, program

    tier = program.member_tier(db, customer_id=customer_id)
    plan = membership.current_plan(db, customer_id=customer_id)
    benefits = tier.benefits
    free_shipping = (
        0 if plan is not None and plan.free_shipping else benefits.free_shipping_over_minor
    )
    return MemberBenefits(
        tier_id=tier.tier_id,
        paying_plan=plan.plan_id if plan is not None else None,
        points_multiplier=benefits.points_multiplier,
        member_discount_percent=benefits.member_discount_percent,
        free_shipping_over_minor=free_shipping,
        member_prices=bool(plan is not None and plan.member_prices),
        support_priority=benefits.support_priority,
        early_access_hours=max(
            benefits.early_access_hours, plan.early_access_hours if plan is not None else 0
        ),
    )


# ------------------------------------------------------------------------------ privacy
# The loyalty domain's part of export and erasure (rapport.flows.privacy).

PRIVACY_TABLES = (
    "loyalty_accounts",
    "loyalty_transactions",
    "loyalty_lots",
    "loyalty_debts",
    "loyalty_awards",
    "loyalty_qualifying",
    "loyalty_tier_standings",
    "loyalty_tier_changes",
    "loyalty_memberships",
    "loyalty_membership_payments",
    "loyalty_checkouts",
    "loyalty_coupons",
    "loyalty_referral_codes",
    "loyalty_referrals",
    "loyalty_announcement_deliveries",
)


def _close_account(db: Session, *, customer_id: str, now: datetime) -> None:
    """Close a member account: one 'close' transaction forfeits the balance to breakage
    (``M -b``, ``breakage +b``; the open lots are consumed by it) and writes the debt off
    (``member_debt +d``, ``breakage -d``); the account becomes 'closed', so no command finds
    it again. The journal stays: every transaction still sums to zero and the program's
    issued, redeemed and expired totals are unchanged."""
    account = db.execute(
        select(_accounts.c.balance, _accounts.c.debt)
        .where(_accounts.c.account_id == customer_id, _accounts.c.kind == "member")
        .with_for_update()
    ).first()
    if account is None:
        return
    points, debt = int(account.balance), int(account.debt)
    if points or debt:
        transaction_id = _record_transaction(
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
            _consume_lots(db, customer_id=customer_id, points=points, transaction_id=transaction_id)
        db.execute(
            update(_debts)
            .where(_debts.c.customer_id == customer_id, _debts.c.remaining > 0)
            .values(remaining=0)
        )
    db.execute(
        update(_accounts)
        .where(_accounts.c.account_id == customer_id)
        .values(kind="closed", balance=0, debt=0, updated_at=now)
    )


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Close the member's account (see ``_close_account``), end their paid membership now
    (its payments stay: revenue), drop their tier standing and referral code, expire their
    unused coupons and withdraw announcements still queued for them. Ledger, awards, tier
    history, referrals and checkouts stay under the random customer id."""
    ids = list(subject.customer_ids)
    now = clock.now()
    for customer_id in ids:
        _close_account(db, customer_id=customer_id, now=now)
    db.execute(
        update(Membership)
        .where(Membership.customer_id.in_(ids), Membership.status != "lapsed")
        .values(status="lapsed", auto_renew=False, ended_at=now)
    )
    db.execute(delete(TierStanding).where(TierStanding.customer_id.in_(ids)))
    db.execute(delete(ReferralCode).where(ReferralCode.customer_id.in_(ids)))
    db.execute(
        update(Coupon)
        .where(Coupon.customer_id.in_(ids), Coupon.used_at.is_(None), Coupon.expires_at > now)
        .values(expires_at=now)
    )
    db.execute(
        delete(AnnouncementDelivery).where(
            AnnouncementDelivery.customer_id.in_(ids), AnnouncementDelivery.status == "queued"
        )
    )


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The member's account, every ledger movement, tier and its history, paid memberships
    and their payments, coupons, referral code and referrals."""
    from rapport.loyalty import program

    ids = list(subject.customer_ids)

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    tier = program.member_tier(db, customer_id=subject.customer_id)
    return {
        "loyalty": {
            "accounts": [
                {
                    "kind": a.kind,
                    "balance": a.balance,
                    "debt": a.debt,
                    "opened_at": iso(a.created_at),
                }
                for a in db.execute(select(_accounts).where(_accounts.c.account_id.in_(ids)))
            ],
            "transactions": [
                {
                    "kind": t.kind,
                    "points": t.points,
                    "debt_change": t.debt_change,
                    "reason": t.reason,
                    "order_id": t.order_id,
                    "at": iso(t.created_at),
                }
                for t in db.execute(
                    select(_transactions)
                    .where(_transactions.c.customer_id.in_(ids))
                    .order_by(_transactions.c.id)
                )
            ],
            "tier": tier.tier_id,
            "tier_history": program.tier_history(db, customer_id=subject.customer_id),
            "memberships": [
                {
                    "plan_id": m.plan_id,
                    "status": m.status,
                    "started_at": iso(m.started_at),
                    "current_period_end": iso(m.current_period_end),
                    "ended_at": iso(m.ended_at),
                }
                for m in db.scalars(select(Membership).where(Membership.customer_id.in_(ids)))
            ],
            "membership_payments": [
                {
                    "plan_id": p.plan_id,
                    "amount_minor": p.amount_minor,
                    "currency": p.currency,
                    "paid_at": iso(p.paid_at),
                }
                for p in db.scalars(
                    select(MembershipPayment).where(MembershipPayment.customer_id.in_(ids))
                )
            ],
            "coupons": [
                {
                    "code": c.code,
                    "rule": c.rule,
                    "issued_at": iso(c.issued_at),
                    "expires_at": iso(c.expires_at),
                    "used_at": iso(c.used_at),
                }
                for c in db.scalars(select(Coupon).where(Coupon.customer_id.in_(ids)))
            ],
            "referral_codes": [
                r.code
                for r in db.scalars(select(ReferralCode).where(ReferralCode.customer_id.in_(ids)))
            ],
            "referrals": [
                {
                    "role": "referrer" if r.referrer_id in ids else "friend",
                    "referred_at": iso(r.referred_at),
                    "completed_at": iso(r.completed_at),
                }
                for r in db.scalars(
                    select(Referral).where(
                        Referral.referrer_id.in_(ids) | Referral.friend_id.in_(ids)
                    )
                )
            ],
        }
    }
