"""An order carrying a coupon another order used first is refused as such: 409
coupon-unavailable naming ``loyalty.coupons.N`` (with the code and why), answered before the
totals the coupon no longer gives are compared; under a race, one order wins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.flows import orders as order_flows
from rapport.loyalty.models import Coupon
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.orders.schemas import OrderIn
from rapport.platform.db import open_session
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, order_body, run_at_once, seed_catalog

OFF = 500  # the coupon's amount off: 2 Chianti come to 2,400, 1,900 with it


def _order(member: str, coupons: list[str]) -> OrderIn:
    """Two Chianti carrying ``coupons``, with the effects the checkout gave before the coupon
    was used: its 5.00 off (a new member's tier gives nothing more at this basket)."""
    body: dict[str, Any] = order_body(
        customer_id=member,
        lines=[{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        subtotal_minor=2400,
        discount_minor=OFF,
        shipping_minor=0,
        total_minor=2400 - OFF,
        payments=[{"method": "card", "amount_minor": 2400 - OFF}],
        loyalty={"coupons": coupons, "points_to_use": 0, "shipping_before_minor": 0},
    )
    return OrderIn.model_validate(body)


def _coupon(db: Session) -> str:
    return reward_coupons.create_campaign_coupon(
        db, rule="campaign:rush", kind="amount", value=OFF, expires_at=T0 + timedelta(days=30)
    ).code


def test_an_order_carrying_a_coupon_used_since_is_refused_naming_it(db: Session) -> None:
    # given a coupon the checkout gave 5.00 off with, then used by a first order
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    code = _coupon(db)
    first = order_flows.place_order(db, order=_order(member, [code]))
    assert first.order_id

    # when a second order carries it (typed otherwise, after an unknown code), with the
    # 5.00 off the checkout showed
    try:
        order_flows.place_order(db, order=_order(member, ["NOPE-1234", code.lower()]))
    except reward_coupons.CouponUnavailable as refused:
        problem = refused
    else:
        raise AssertionError("the second order was placed")

    # then it is refused as coupon-unavailable naming its place in the order, not the totals
    assert (problem.status, problem.slug, problem.field) == (
        409,
        "coupon-unavailable",
        "loyalty.coupons.1",
    )
    assert problem.extra == {"code": code, "reason": "used"}
    # and says what to do
    assert problem.detail == (
        f"Coupon {code} cannot be used: used. Run POST /v1/loyalty/checkout again without it"
        " and send the order with the amounts it gives"
    )
    stored = db.get(Coupon, code)
    assert stored is not None
    assert stored.used_order_id == first.order_id


def test_orders_racing_for_one_coupon_one_is_placed_the_others_refused_naming_it(
    committed_url: str,
) -> None:
    # given one campaign coupon a checkout gave 5.00 off with
    frozen_clock()
    with open_session(committed_url) as db:
        seed_catalog(db, stock=50)
        member = make_customer(db)
        code = _coupon(db)
        db.commit()

    def place() -> str:
        with open_session(committed_url) as db:
            try:
                return order_flows.place_order(db, order=_order(member, [code])).order_id
            except reward_coupons.CouponUnavailable as refused:
                return f"{refused.status} {refused.field} {refused.extra['code']}"

    # when five orders carrying it are placed at the same moment
    answers = run_at_once(*[place] * 5)

    # then one is placed and the other four are refused naming the coupon
    refused = [answer for answer in answers if answer.startswith("409 ")]
    assert len(refused) == 4, answers
    assert set(refused) == {f"409 loyalty.coupons.0 {code}"}
    with open_session(committed_url) as db:
        stored = db.get(Coupon, code)  # the coupon went to the one order placed
        assert stored is not None
        assert stored.used_order_id in answers
