"""Bulk reads for callers that need many members at once (a campaign batch): each
customer's points and tier name, the same as the one-at-a-time reads give."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.models import TierStanding
from rapport.platform import clock
from tests.loyalty.factories import make_customer


def test_balances_and_tier_names_in_bulk_match_the_single_reads(db: Session) -> None:
    rich = make_customer(db)
    poor = make_customer(db)
    loyalty.adjust(db, customer_id=rich, points=120, reason="test")
    top = loyalty.tier_policy(db).tiers[-1]
    now = clock.now()
    db.add(
        TierStanding(
            customer_id=rich,
            tier_id=top.id,
            since=now,
            review_at=now + timedelta(days=365),
            qualifying_value=0,
            updated_at=now,
        )
    )
    db.flush()

    assert loyalty.balances(db, customer_ids=[rich, poor, rich]) == {rich: 120, poor: 0}
    assert loyalty.balance(db, customer_id=rich) == 120
    names = loyalty.tier_names(db, customer_ids=[rich, poor])
    assert names == {
        rich: loyalty.member_tier(db, customer_id=rich).tier_name,
        poor: loyalty.member_tier(db, customer_id=poor).tier_name,
    }
    assert names[rich] == top.name
    assert loyalty.balances(db, customer_ids=[]) == {}
