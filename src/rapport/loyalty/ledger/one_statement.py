"""Earn and redeem as ONE PostgreSQL statement each, sent through the statement pool
(``platform.statements``): the hot path of ``POST …/earn`` and ``POST …/redeem``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import String

from rapport.events.service import log_event_parameters, log_event_sql
from rapport.loyalty.events import PointsEarned, PointsRedeemed
from rapport.loyalty.ledger.journal import check_points
from rapport.loyalty.ledger.postgres import (
    CREDIT_DEBT_FREE_ACTIVE_MEMBER,
    DEBIT_LOTS,
    TAKE_ACTIVE_MEMBER_POINTS,
    credit_parameters,
    debit_parameters,
)
from rapport.loyalty.models import ISSUED, REDEEMED, LedgerTransaction
from rapport.platform import clock, idempotency
from rapport.platform.errors import InvalidInput
from rapport.platform.statements import StatementPool

# Earn and redeem for the usual member (an account, no debt), each as ONE statement with its
# event and the stored answer for its Idempotency-Key, sent from the event loop through
# ``platform.statements`` (PostgreSQL): one round trip where the session path takes seven.
# Each runs at REPEATABLE READ in its own transaction, so a redemption's lots are read from the
# same snapshot as the balance it guards, and a concurrent change to the member refuses it
# (it runs again). The event and the answer are built in SQL, field by field of their classes.


# The longest Rapport id the ledger holds (its customer columns). A longer reference is a
# shop's own number (references run to 100 characters): it names no account here, and as a
# parameter PostgreSQL would refuse it as too long for the columns it is compared with and
# written to, so the session path resolves it (as ``customers.resolve_customer_ref``).
_LONGEST_ID = cast(String, LedgerTransaction.__table__.c.customer_id.type).length or 0


def _jsonb(values: dict[str, str]) -> str:
    """``jsonb_build_object`` of each key with its SQL expression, in order."""
    return "jsonb_build_object(" + ", ".join(f"'{key}', {sql}" for key, sql in values.items()) + ")"


def posted_answer(*, transaction: str, expires: str) -> dict[str, str]:
    """The answer as SQL, one expression per field of ``Posted`` (the route renders a Posted
    as its fields, ``expires_at`` in ISO 8601)."""
    return {
        "transaction_id": transaction,
        "customer_id": "%(customer)s::text",
        "kind": "%(kind)s::text",
        "points": "%(change)s::bigint",
        "balance": "account.balance",
        "debt": "account.debt",
        "debt_change": "0",
        "expires_at": expires,
        "written_off": "0",
    }


# The properties of the events the statements append, as SQL: one expression per field of the
# event's class (PointsEarned, PointsRedeemed), in its order; a test holds the two together.
EARNED_PROPERTIES = {
    "transaction_id": "journal.id",
    "points": "%(change)s::bigint",
    "balance": "account.balance",
    "order_id": "%(order)s::text",
    "rule_id": "%(rule)s::text",
    "reason": "%(reason)s::text",
}
REDEEMED_PROPERTIES = {
    "transaction_id": "checked.id",
    "points": "%(change)s::bigint",
    "balance": "account.balance",
    "order_id": "%(order)s::text",
    "reason": "%(reason)s::text",
}


# Python's isoformat of a UTC datetime, which the session path's answers carry.
_ISO_UTC = "to_char(expiry.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"

_EARN_NOW = (
    CREDIT_DEBT_FREE_ACTIVE_MEMBER
    + ", event AS ("
    + log_event_sql(source="journal, account", properties=_jsonb(EARNED_PROPERTIES))
    + "), answer AS ("
    + idempotency.store_answer_sql(
        source="journal, account, expiry",
        body=_jsonb(posted_answer(transaction="journal.id", expires=_ISO_UTC)),
    )
    + ") SELECT response_body::text FROM answer"
)

_REDEEM_NOW = (
    "WITH account AS ("
    + TAKE_ACTIVE_MEMBER_POINTS
    + "),"
    + DEBIT_LOTS
    # The lots hold the balance (the ledger's invariant). Were it ever broken, the failing
    # cast refuses the whole statement rather than commit a redemption the lots do not cover
    # (over a column, so that the planner cannot fold it into an error at once).
    + """, checked AS (
    SELECT CASE WHEN (SELECT coalesce(sum(points), 0) FROM used) = %(points)s THEN journal.id
        ELSE ('the lots hold less than the balance (transaction ' || journal.id || ')')::bigint
    END AS id
    FROM journal
), event AS ("""
    + log_event_sql(source="checked, account", properties=_jsonb(REDEEMED_PROPERTIES))
    + "), answer AS ("
    + idempotency.store_answer_sql(
        source="checked, account",
        body=_jsonb(posted_answer(transaction="checked.id", expires="NULL")),
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
    key already stored, the member busy, a reference longer than an id."""
    check_points(points)
    if len(customer_id) > _LONGEST_ID:
        return None
    now = clock.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be after the points are earned", field="expires_at")
    row = await statements.first_row(
        _EARN_NOW,
        {
            **credit_parameters(
                customer_id=customer_id,
                points=points,
                kind="earn",
                source_account=ISSUED,
                reason=reason,
                order_id=order_id,
                rule_id=rule_id,
                now=now,
                earned_at=now,
                expires_at=expires_at,
            ),
            "change": points,
            **log_event_parameters(
                type=PointsEarned.event_type, channel=channel, customer_id=customer_id
            ),
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
    with the balance, or because the key is stored, the member busy or the reference longer
    than an id)."""
    check_points(points)
    if len(customer_id) > _LONGEST_ID:
        return None
    row = await statements.first_row(
        _REDEEM_NOW,
        {
            **debit_parameters(
                customer_id=customer_id,
                points=points,
                kind="redeem",
                target_account=REDEEMED,
                reason=reason,
                order_id=order_id,
                now=clock.now(),
            ),
            "change": -points,
            **log_event_parameters(
                type=PointsRedeemed.event_type, channel=channel, customer_id=customer_id
            ),
            **answer,
        },
    )
    return None if row is None else cast(str, row[0])
