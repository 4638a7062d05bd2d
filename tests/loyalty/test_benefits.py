"""A paid plan's points multiplier on SQLite and PostgreSQL: members earn at the better of
their tier's and their plan's, for as long as the plan's benefits last."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.benefits import member_benefits
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.models import Award
from rapport.orders import service as orders
from tests.loyalty.earning.test_earning import big_order, process
from tests.loyalty.factories import frozen_clock, make_customer, triple_plan
from tests.orders.factories import seed_catalog


def _spend_points(db: Session, customer_id: str) -> list[int]:
    return list(
        db.scalars(
            select(Award.points)
            .where(Award.customer_id == customer_id, Award.rule_id == "base-earn")
            .order_by(Award.id)
        )
    )


def test_a_plans_multiplier_applies_while_its_benefits_last(db: Session) -> None:
    # given a x3 monthly plan; one member on it, one who cancelled, one whose plan lapsed
    clock = frozen_clock()
    seed_catalog(db, stock=500)
    triple_plan(db)
    paying, cancelled, lapsed = (make_customer(db) for _ in range(3))
    for member in (paying, cancelled, lapsed):
        memberships.join(db, customer_id=member, plan_id="triple")
    memberships.cancel(db, customer_id=cancelled)
    memberships.cancel(db, customer_id=lapsed)

    # when each buys 10 bottles (120 euros) while the plan is on
    for member in (paying, cancelled, lapsed):
        orders.place_order(db, order=big_order(member, 10))
    process(db)

    # then each earns 3 x 120, and its benefits say x3
    assert [_spend_points(db, m) for m in (paying, cancelled, lapsed)] == [[360]] * 3
    assert member_benefits(db, customer_id=cancelled).points_multiplier == 3.0

    # when the paid month is over (the lapsed one's by the renewal job) and each buys again
    clock.advance(timedelta(days=40))
    memberships.renew_due(db)
    lapsed_membership = memberships.get_membership(db, customer_id=lapsed)
    assert lapsed_membership is not None
    assert lapsed_membership.status == "lapsed"
    for member in (paying, cancelled, lapsed):
        orders.place_order(db, order=big_order(member, 10))
    process(db)

    # then the paying member (renewed) still earns x3, the others their tier's x1
    assert [_spend_points(db, m)[-1] for m in (paying, cancelled, lapsed)] == [360, 120, 120]
    assert member_benefits(db, customer_id=paying).points_multiplier == 3.0
    assert member_benefits(db, customer_id=cancelled).points_multiplier == 1.0
    assert member_benefits(db, customer_id=lapsed).points_multiplier == 1.0
    assert loyalty.balance(db, customer_id=lapsed) == 200 + 360 + 120


def test_the_spend_reason_names_the_plan_whose_multiplier_won(db: Session) -> None:
    # given a x3 plan, one member on it and one not (their tier earns x1)
    frozen_clock()
    seed_catalog(db, stock=500)
    triple_plan(db)
    paying = make_customer(db)
    memberships.join(db, customer_id=paying, plan_id="triple")

    # when they buy
    orders.place_order(db, order=big_order(paying, 10))
    process(db)

    # then the award's reason says the x3 came from the plan, not the tier
    reason = db.scalar(
        select(Award.reason).where(Award.customer_id == paying, Award.rule_id == "base-earn")
    )
    assert reason is not None
    assert "times 3.0 for plan Triple" in reason
    assert "tier" not in reason
