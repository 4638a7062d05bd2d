"""Redeeming a reward for, or issuing a coupon to, an erased customer answers what every
endpoint answers for them: 404 naming ``customer_id`` and saying they were erased, from the API
and from the coupon verbs alike (the verbs said 422, the API 404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.loyalty.models import Coupon
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import clock
from rapport.platform.errors import NotFound
from tests.conftest import auth
from tests.customers.factories import erased_customer


def _gone(customer_id: str) -> str:
    return (
        f"Customer {customer_id!r} was erased: their personal data is gone and nothing more "
        "is recorded for them"
    )


def _reward(db: Session) -> None:
    reward_catalogue.save_reward(
        db,
        reward_id="ten-off",
        name="10 off",
        points_cost=100,
        coupon_kind="amount",
        coupon_value=1000,
        min_subtotal_minor=0,
        categories=[],
        stackable=True,
        valid_days=30,
    )


def _earned(db: Session):  # type: ignore[no-untyped-def]
    return lambda customer_id: loyalty.earn(db, customer_id=customer_id, points=500, reason="Order")


def test_redeeming_for_an_erased_customer_answers_as_every_endpoint_does(
    client, api_key, db
) -> None:
    # given a customer who had points, erased since, and a reward
    _reward(db)
    customer_id = erased_customer(db, before=_earned(db))

    # when a reward is redeemed for them over the API
    answer = client.post(
        f"/v1/loyalty/members/{customer_id}/rewards/ten-off/redeem",
        headers={**auth(api_key("write")), "Idempotency-Key": "erased-redeem"},
    )

    # then it is 404 naming customer_id and saying they were erased, and nothing is issued
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.json()["field"], answer.json()["detail"]) == ("customer_id", _gone(customer_id))
    assert db.scalar(select(func.count()).select_from(Coupon)) == 0


@pytest.mark.parametrize("verb", ["redeem_reward", "create_campaign_coupon"])
def test_the_coupon_verbs_refuse_an_erased_customer_as_the_api_does(db, verb: str) -> None:
    # given an erased customer and a reward
    _reward(db)
    customer_id = erased_customer(db, before=_earned(db))

    verbs = {
        "redeem_reward": lambda: reward_coupons.redeem_reward(
            db, customer_id=customer_id, reward_id="ten-off"
        ),
        "create_campaign_coupon": lambda: reward_coupons.create_campaign_coupon(
            db,
            rule="campaign:x",
            kind="amount",
            value=500,
            expires_at=clock.now() + timedelta(days=9),
            customer_id=customer_id,
        ),
    }

    # when a coupon verb is asked for a coupon of theirs
    with pytest.raises(NotFound) as refused:
        verbs[verb]()

    # then it answers the same 404 the API does, naming customer_id
    assert (refused.value.status, refused.value.field) == (404, "customer_id")
    assert refused.value.detail == _gone(customer_id)
    assert db.scalar(select(func.count()).select_from(Coupon)) == 0
