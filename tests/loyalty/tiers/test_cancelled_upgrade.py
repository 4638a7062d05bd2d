"""A cancelled order was never a purchase: the tier it lifted the member to is taken back at
once (to the tier and review date held before it), while a tier reached before it stays."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.loyalty.models import TierChangeRecord
from rapport.loyalty.tiers import standing as tier_standing
from rapport.orders import service as orders
from rapport.orders.schemas import ReturnIn
from rapport.platform import clock
from tests.loyalty.earning.test_earning import big_order, process
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog


def test_an_upgrade_to_gold_is_taken_back_when_its_order_is_cancelled(db: Session) -> None:
    # given a member whose 1,560 euro order made them gold
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    member = make_customer(db)
    order_id = orders.place_order(db, order=big_order(member, 130)).order_id
    process(db)
    assert tier_standing.member_tier(db, customer_id=member).tier_id == "gold"

    # when the shop cancels it a day later
    frozen.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=order_id, reason="payment never arrived")
    process(db)

    # then they are a Member again at once, with no spend to their name
    tier = tier_standing.member_tier(db, customer_id=member)
    assert (tier.tier_id, tier.qualifying_value) == ("member", 0)
    assert tier.benefits.member_discount_percent == 0
    # and the tier history and tier_changed say why: the order was cancelled
    history = tier_standing.tier_history(db, customer_id=member)
    assert [(h["from_tier"], h["to_tier"], h["change"], h["reason"]) for h in history] == [
        ("gold", "member", "downgrade", "order cancelled"),
        (None, "gold", "upgrade", None),
    ]
    moves = db.scalars(
        select(Event.properties).where(Event.type == "tier_changed", Event.customer_id == member)
    ).all()
    assert [(m["from_tier"], m["to_tier"], m.get("reason")) for m in moves] == [
        ("member", "gold", None),
        ("gold", "member", "order cancelled"),
    ]


def test_a_cancelled_order_gives_back_the_tier_and_review_date_held_before_it(
    db: Session,
) -> None:
    # given a member made silver by a 600 euro order, then gold a month later by another
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    member = make_customer(db)
    orders.place_order(db, order=big_order(member, 50))
    process(db)
    silver = tier_standing.member_tier(db, customer_id=member)
    assert silver.tier_id == "silver"
    frozen.advance(timedelta(days=30))
    lifting = orders.place_order(db, order=big_order(member, 80)).order_id
    process(db)
    assert tier_standing.member_tier(db, customer_id=member).tier_id == "gold"

    # when the second order is cancelled
    frozen.advance(timedelta(days=2))
    orders.cancel_order(db, order_id=lifting, reason="changed their mind")
    process(db)

    # then they are silver again, since and reviewed as before the second order
    tier = tier_standing.member_tier(db, customer_id=member)
    assert (tier.tier_id, tier.qualifying_value) == ("silver", 50 * 1200)
    assert silver.since is not None
    assert silver.review_at is not None
    assert tier.since is not None
    assert tier.review_at is not None
    assert clock.as_utc(tier.since) == clock.as_utc(silver.since)
    assert clock.as_utc(tier.review_at) == clock.as_utc(silver.review_at)


def test_a_tier_reached_before_the_cancelled_order_is_kept(db: Session) -> None:
    # given a gold member who returned most of the order that made them gold (a return
    # dips the value, but a downgrade waits for the review date)
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    member = make_customer(db)
    first = orders.place_order(db, order=big_order(member, 130)).order_id
    process(db)
    frozen.advance(timedelta(days=5))
    orders.record_return(
        db,
        order_id=first,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 120, "reason": "damaged"}], "channel": "store"}
        ),
    )
    process(db)
    # and who then placed another order
    frozen.advance(timedelta(days=5))
    later = orders.place_order(db, order=big_order(member, 5)).order_id
    process(db)

    # when that later order is cancelled
    frozen.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=later, reason="changed their mind")
    process(db)

    # then they stay gold until the review date: gold was reached before that order
    tier = tier_standing.member_tier(db, customer_id=member)
    assert tier.tier_id == "gold"
    assert tier.since is not None
    assert clock.as_utc(tier.since) == T0
    changes = db.scalars(
        select(TierChangeRecord.change).where(TierChangeRecord.customer_id == member)
    ).all()
    assert changes == ["upgrade"]


def test_the_statement_says_a_tier_was_taken_back_for_a_cancelled_order(
    admin: TestClient, db: Session
) -> None:
    # given a member made gold by an order the shop then cancelled
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    member = make_customer(db)
    order_id = orders.place_order(db, order=big_order(member, 130)).order_id
    process(db)
    frozen.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=order_id, reason="payment never arrived")
    process(db)
    # when the member's loyalty statement is opened
    page = admin.get(f"/admin/loyalty/members/{member}").text
    # then its tier changes say the upgrade and why gold was taken back
    reasons = re.findall(r'data-testid="tier-change-reason">([^<]*)<', page)
    assert reasons == ["order cancelled", "qualifying activity"]
