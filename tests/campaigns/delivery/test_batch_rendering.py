"""A batch's loyalty facts load in bulk: rendering {{ points }} and {{ tier }} for 50
recipients issues as many queries as for 5 (not one per recipient), and each recipient still
gets their own points and tier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import InboxMessage
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import TierStanding
from rapport.platform import clock
from tests.campaigns.delivery.factories import make_campaign, make_customer


@contextmanager
def counted_statements(db: Session) -> Iterator[list[str]]:
    """Every SQL statement the session's connection runs inside the block."""
    statements: list[str] = []
    connection = db.connection()

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", count)


def _send_batch(db: Session, size: int) -> tuple[int, dict[str, str], dict[str, str]]:
    """Queue ``size`` inbox messages showing points and tier, dispatch them in one batch;
    return the statements it took, each customer's body and what it should read."""
    top = loyalty.tier_policy(db).tiers[-1]
    base = loyalty.tier_policy(db).tiers[0]
    campaign = make_campaign(
        db, channel="inbox", subject="Hi", body="{{ first_name }}: {{ points }} points, {{ tier }}"
    )
    expected: dict[str, str] = {}
    people = []
    for n in range(size):
        person = make_customer(db, consents={"marketing_push": True}, first_name=f"P{n}")
        people.append(person)
        points = 0
        tier = base.name
        if n % 2 == 0:
            points = 10 + n
            loyalty.adjust(db, customer_id=person, points=points, reason="test")
        if n % 3 == 0:
            now = clock.now()
            db.add(
                TierStanding(
                    customer_id=person,
                    tier_id=top.id,
                    since=now,
                    review_at=now + timedelta(days=365),
                    qualifying_value=0,
                    updated_at=now,
                )
            )
            tier = top.name
        expected[person] = f"P{n}: {points} points, {tier}"
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people])
    db.commit()
    with counted_statements(db) as statements:
        assert dispatch_batch(db, limit=size, worker="w1") == size
    bodies = dict(
        db.execute(
            select(InboxMessage.customer_id, InboxMessage.body).where(
                InboxMessage.customer_id.in_(people)
            )
        ).all()
    )
    return len(statements), bodies, expected


def test_points_and_tiers_cost_the_same_queries_for_5_or_50_recipients(db: Session) -> None:
    few, few_bodies, few_expected = _send_batch(db, 5)
    many, many_bodies, many_expected = _send_batch(db, 50)

    assert many == few
    assert few_bodies == few_expected
    assert many_bodies == many_expected
    assert "P0: 10 points" in many_bodies[next(iter(many_expected))]
