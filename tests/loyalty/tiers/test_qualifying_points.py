"""Progress toward a points-based tier counts the spend rules' base points: a paid plan's (or
a tier's) points multiplier speeds earning, not progress; a return takes back the same share
of what the order counted."""

from __future__ import annotations

import copy
from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.tiers import standing as tier_standing
from rapport.loyalty.tiers.policy import DEFAULT_TIERS
from rapport.loyalty.tiers.reviews import qualifying_value
from rapport.orders import service as orders
from rapport.orders.schemas import ReturnIn
from rapport.platform import clock
from tests.loyalty.earning.test_earning import big_order, process
from tests.loyalty.factories import frozen_clock, make_customer, triple_plan
from tests.orders.factories import CHIANTI, seed_catalog


def _points_ladder(db: Session) -> None:
    """Silver from 300 qualifying points, gold from 1,000 (the default ladder's benefits)."""
    ladder = copy.deepcopy(DEFAULT_TIERS)
    ladder["basis"] = "points"
    tiers = ladder["tiers"]
    assert isinstance(tiers, list)
    tiers[1]["threshold"], tiers[2]["threshold"] = 300, 1000
    program_versions.save(db, "tiers", ladder, changed_by="test", active_from=clock.now())


def _progress(db: Session, customer_id: str) -> int:
    """The member's qualifying value now (a return lowers it before any review)."""
    at = clock.now()
    policy = program_versions.tier_policy(db, at=at)
    return qualifying_value(db, customer_id=customer_id, policy=policy, at=at)


def test_a_plans_multiplier_does_not_multiply_tier_progress(db: Session) -> None:
    # given a points-based ladder and a member of a x3 plan
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    _points_ladder(db)
    triple_plan(db)
    member = make_customer(db)
    memberships.join(db, customer_id=member, plan_id="triple")
    frozen.advance(timedelta(minutes=1))
    # when they buy €144.00 (1 point per euro: 144 base points)
    order_id = orders.place_order(db, order=big_order(member, 12)).order_id
    process(db)
    # then they earn 432 points (and the 200 welcome bonus, which counts toward no tier),
    # but progress by 144: still a Member (not Silver at 300)
    assert loyalty.balance(db, customer_id=member) == 432 + 200
    tier = tier_standing.member_tier(db, customer_id=member)
    assert (tier.tier_id, tier.qualifying_value) == ("member", 144)
    # and returning half the order takes back half of that progress
    frozen.advance(timedelta(days=1))
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 6, "reason": "damaged"}], "channel": "store"}
        ),
    )
    process(db)
    assert loyalty.balance(db, customer_id=member) == 216 + 200
    assert _progress(db, member) == 72


def test_a_cancelled_order_takes_back_all_it_counted(db: Session) -> None:
    frozen = frozen_clock()
    seed_catalog(db, stock=500)
    _points_ladder(db)
    member = make_customer(db)
    # a Member (no multiplier) buying €360.00 becomes Silver on 360 points
    order_id = orders.place_order(db, order=big_order(member, 30)).order_id
    process(db)
    assert tier_standing.member_tier(db, customer_id=member).tier_id == "silver"
    # and a Silver member's x1.25 does not count toward Gold either
    frozen.advance(timedelta(days=1))
    orders.place_order(db, order=big_order(member, 10))
    process(db)
    assert tier_standing.member_tier(db, customer_id=member).qualifying_value == 360 + 120
    # when the first order is cancelled, its 360 leave the progress
    frozen.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=order_id, reason="payment never arrived")
    process(db)
    assert _progress(db, member) == 120
