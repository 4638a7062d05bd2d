"""Rewards and coupons on SQLite and PostgreSQL: catalogue, redemption into a coupon in the
ledger's transaction, validation reasons, consumption once, also under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.models import Coupon
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import checkout
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput, NotFound
from tests.loyalty.factories import T0, frozen_clock, make_customer


def _reward(db: Session, *, cost: int = 300, valid_days: int = 30) -> None:
    reward_catalogue.save_reward(
        db,
        reward_id="ten-off",
        name="10 off",
        points_cost=cost,
        coupon_kind="amount",
        coupon_value=1000,
        min_subtotal_minor=5000,
        categories=["Wine"],
        stackable=False,
        valid_days=valid_days,
    )


def _coupon_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Coupon)) or 0)


@pytest.mark.parametrize(
    ("_case", "changes", "field"),
    [
        ("zero cost", {"points_cost": 0}, "points_cost"),
        ("percent over 100", {"coupon_kind": "percent", "coupon_value": 101}, "coupon_value"),
        ("unknown kind", {"coupon_kind": "gift"}, "coupon_kind"),
        ("zero amount", {"coupon_value": 0}, "coupon_value"),
        ("no validity", {"valid_days": 0}, "valid_days"),
    ],
)
def test_invalid_rewards_are_refused_naming_the_field(db, _case, changes, field) -> None:  # type: ignore[no-untyped-def]
    values = {
        "reward_id": "r",
        "name": "Reward",
        "points_cost": 100,
        "coupon_kind": "amount",
        "coupon_value": 500,
    } | changes
    with pytest.raises(InvalidInput) as raised:
        reward_catalogue.save_reward(db, **values)
    assert raised.value.field == field
    assert reward_catalogue.list_rewards(db) == []


def test_redeeming_a_reward_spends_points_and_issues_one_coupon_in_one_transaction(db) -> None:
    # given a member with 500 points and a 300-point reward valid 30 days
    frozen_clock()
    _reward(db)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=500, reason="Order")
    # when they redeem it
    coupon = reward_coupons.redeem_reward(db, customer_id=customer_id, reward_id="ten-off")
    # then 300 points are gone and a readable, unique coupon carries the reward's terms
    assert loyalty.balance(db, customer_id=customer_id) == 200
    assert len(coupon.code) == reward_coupons.CODE_LENGTH
    assert set(coupon.code) <= set(reward_coupons.CODE_ALPHABET)
    assert (coupon.customer_id, coupon.rule, coupon.kind, coupon.value) == (
        customer_id,
        "reward:ten-off",
        "amount",
        1000,
    )
    assert coupon.expires_at == T0 + timedelta(days=30)
    redemption = loyalty.statement(db, customer_id=customer_id)[0]
    assert (redemption.kind, redemption.points, redemption.reason) == (
        "redeem",
        -300,
        "Reward: 10 off",
    )
    assert coupon.transaction_id == redemption.transaction_id
    assert loyalty.invariant_violations(db) == []


def test_insufficient_points_issue_nothing(db) -> None:
    _reward(db, cost=300)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=299, reason="Order")
    with pytest.raises(loyalty.InsufficientPoints):
        reward_coupons.redeem_reward(db, customer_id=customer_id, reward_id="ten-off")
    assert loyalty.balance(db, customer_id=customer_id) == 299
    assert _coupon_count(db) == 0
    with pytest.raises(NotFound) as unknown:
        reward_coupons.redeem_reward(db, customer_id=customer_id, reward_id="nothing")
    assert unknown.value.field == "reward_id"


def test_validation_names_why_each_code_is_refused(db) -> None:
    # given a member's coupon, another member's, a used one, an expired one, a campaign one
    clock = frozen_clock()
    _reward(db, cost=100, valid_days=10)
    member, other = make_customer(db), make_customer(db)
    for customer_id in (member, other):
        loyalty.earn(db, customer_id=customer_id, points=300, reason="Order")
    mine = reward_coupons.redeem_reward(db, customer_id=member, reward_id="ten-off").code
    used = reward_coupons.redeem_reward(db, customer_id=member, reward_id="ten-off").code
    theirs = reward_coupons.redeem_reward(db, customer_id=other, reward_id="ten-off").code
    reward_coupons.consume_coupons(db, codes=[used], order_id="O-1")
    db.commit()
    clock.advance(timedelta(days=5))
    campaign = reward_coupons.create_campaign_coupon(
        db,
        rule="campaign:spring",
        kind="percent",
        value=15,
        expires_at=T0 + timedelta(days=30),
        code="spring-15",
    ).code
    # when the member's cart names them all (one twice, one in lower case), on day 5 and day 11
    codes = [mine.lower(), used, theirs, "NOPE1234", campaign, mine]
    valid, refused = reward_coupons.validate_coupons(db, customer_id=member, codes=codes)
    later_valid, later_refused = reward_coupons.validate_coupons(
        db, customer_id=member, codes=[mine], at=T0 + timedelta(days=11)
    )
    # then only their own unused coupon and the campaign coupon are valid, each refusal says why
    assert [c.code for c in valid] == [mine, "SPRING15"]
    assert valid[0] == checkout.Coupon(
        code=mine,
        rule="reward:ten-off",
        kind="amount",
        value=1000,
        min_subtotal_minor=5000,
        categories=("Wine",),
        stackable=False,
    )
    # (the code given twice counts once: valid, and not refused too)
    assert refused == {
        used: "used",
        theirs: "unknown",
        "NOPE1234": "unknown",
    }
    assert (later_valid, later_refused) == ([], {mine: "expired"})


def test_consuming_marks_the_order_and_refuses_a_second_order(db) -> None:
    frozen_clock()
    campaign = reward_coupons.create_campaign_coupon(
        db, rule="campaign:x", kind="amount", value=500, expires_at=T0 + timedelta(days=1)
    )
    reward_coupons.consume_coupons(db, codes=[campaign.code], order_id="O-1")
    reward_coupons.consume_coupons(db, codes=[campaign.code], order_id="O-1")  # a replay: no-op
    db.commit()
    with pytest.raises(reward_coupons.CouponUnavailable) as raised:
        reward_coupons.consume_coupons(db, codes=[campaign.code], order_id="O-2")
    db.rollback()
    assert raised.value.extra == {"code": campaign.code, "reason": "used"}
    stored = db.get(Coupon, campaign.code)
    assert stored is not None
    assert stored.used_order_id == "O-1"


def test_ten_parallel_orders_consume_one_coupon_exactly_once(committed_url) -> None:
    # given one campaign coupon
    with open_session(committed_url) as db:
        code = reward_coupons.create_campaign_coupon(
            db,
            rule="campaign:rush",
            kind="amount",
            value=500,
            expires_at=T0.replace(year=2100),
        ).code
    used: list[str] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(10)
    lock = threading.Lock()

    def place(order_id: str) -> None:
        with open_session(committed_url) as db:
            start.wait()
            try:
                reward_coupons.consume_coupons(db, codes=[code], order_id=order_id)
                db.commit()
            except reward_coupons.CouponUnavailable:
                db.rollback()
                with lock:
                    refused.append(order_id)
            except BaseException as error:
                with lock:
                    errors.append(error)
            else:
                with lock:
                    used.append(order_id)

    # when ten orders use it at the same moment, each in its own transaction
    threads = [threading.Thread(target=place, args=(f"O-{n}",)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one order has it, and the other nine were refused
    assert errors == []
    assert (len(used), len(refused)) == (1, 9)
    with open_session(committed_url) as db:
        stored = db.get(Coupon, code)
        assert stored is not None
        assert stored.used_order_id == used[0]
