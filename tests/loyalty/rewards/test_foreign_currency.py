"""A cart or order in another currency than the program's gets no loyalty money effects: its
minor units are not the program's (500 yen are not 5 euros), and Rapport keeps no exchange
rates. The checkout says each was not applied and why; an order carrying coupons or points in
it is refused, nothing consumed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rapport.loyalty import service as ledger
from rapport.loyalty.models import AppliedCheckout, Coupon
from rapport.loyalty.rewards import coupons as reward_coupons
from tests.conftest import auth
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.loyalty.rewards.test_checkout_api import cart, paying_member
from tests.orders.factories import CHIANTI, seed_catalog


def _why(currency: str) -> str:
    return (
        f"order in {currency}, program in EUR: coupons, points and member prices apply only in EUR"
    )


def _coupon(db: Any) -> str:
    return reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=500, expires_at=T0 + timedelta(days=30)
    ).code


@pytest.mark.parametrize("currency", ["JPY", "KRW"])
def test_a_cart_in_another_currency_gets_no_money_effects_and_says_why(
    client, api_key, db, currency: str
) -> None:
    # given a paying member (member prices, free shipping) with 2,000 points and a 5.00 coupon
    member = paying_member(db)
    code = _coupon(db)
    key = auth(api_key("write"))
    body = cart(member, coupons=[code], points_to_use=1000)

    # when the same cart is checked in euros and in another currency
    in_euros = client.post("/v1/loyalty/checkout", json=body, headers=key)
    foreign = client.post("/v1/loyalty/checkout", json={**body, "currency": currency}, headers=key)

    # then in euros the coupon, points, member price and free shipping apply
    assert in_euros.status_code == 200, in_euros.text
    assert in_euros.json()["discount_minor"] > 0
    assert in_euros.json()["points_used"] == 1000
    # and in the other currency none does, each saying why, and the coupon is refused
    assert foreign.status_code == 200, foreign.text
    result = foreign.json()
    assert (result["discount_minor"], result["points_used"], result["points_payment_minor"]) == (
        0,
        0,
        0,
    )
    assert result["shipping_minor"] == 495
    assert result["total_minor"] == 2400 + 900 + 495
    assert result["refused_coupons"] == {code: _why(currency)}
    money = [e for e in result["effects"] if e["step"] != "points_earned"]
    assert {e["step"] for e in money} == {"member_price", "points_payment", "free_shipping"}
    assert all(e["amount_minor"] == 0 and _why(currency) in e["description"] for e in money)
    assert result["points_to_earn"] == 0


def test_a_tiers_free_shipping_is_not_given_on_a_basket_in_won(client, api_key, db) -> None:
    # given a member of the default tier (free shipping over 90.00)
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    # when a basket of 9,897 won is checked
    answer = client.post(
        "/v1/loyalty/checkout",
        json={
            "customer_id": member,
            "lines": [{"sku": CHIANTI, "quantity": 1, "unit_price_minor": 9897}],
            "shipping_minor": 3000,
            "currency": "KRW",
        },
        headers=auth(api_key("write")),
    )
    # then shipping is not free, and the checkout says why
    assert answer.status_code == 200, answer.text
    assert answer.json()["shipping_minor"] == 3000
    shipping = [e for e in answer.json()["effects"] if e["step"] == "free_shipping"]
    assert [(e["rule"], e["amount_minor"], e["description"]) for e in shipping] == [
        ("tier:member", 0, f"no free shipping: {_why('KRW')}")
    ]


def _order(member: str, currency: str, **loyalty: Any) -> dict[str, Any]:
    return {
        "customer_id": member,
        "channel": "web",
        "fulfilment": "ship",
        "currency": currency,
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "subtotal_minor": 2400,
        "discount_minor": 0,
        "shipping_minor": 495,
        "total_minor": 2400 + 495,
        "payments": [{"method": "card", "amount_minor": 2400 + 495}],
        "loyalty": {"coupons": [], "points_to_use": 0, "shipping_before_minor": 495, **loyalty},
    }


@pytest.mark.parametrize("currency", ["JPY", "KRW"])
def test_an_order_in_another_currency_carrying_coupons_or_points_is_refused(
    client, api_key, db, currency: str
) -> None:
    # given a paying member with 2,000 points and a coupon
    member = paying_member(db)
    code = _coupon(db)
    key = auth(api_key("write"))

    # when orders in another currency carry the coupon, or points to use
    refusals = [
        client.post(
            "/v1/orders",
            json=_order(member, currency, **loyalty),
            headers={**key, "Idempotency-Key": f"order-{n}"},
        )
        for n, loyalty in enumerate([{"coupons": [code]}, {"points_to_use": 1000}])
    ]

    # then each is refused naming loyalty and why, and nothing is consumed
    for refused in refusals:
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["field"] == "loyalty"
        assert _why(currency) in refused.json()["detail"]
    db.expire_all()
    assert ledger.balance(db, customer_id=member) == 2000
    stored = db.get(Coupon, code)
    assert stored is not None
    assert stored.used_at is None

    # and the order without them is placed at its own prices, shipping not free
    placed = client.post(
        "/v1/orders",
        json=_order(member, currency),
        headers={**key, "Idempotency-Key": "order-plain"},
    )
    assert placed.status_code == 201, placed.text
    applied = db.get(AppliedCheckout, placed.json()["order_id"])
    assert applied is not None
    assert (applied.plan_savings_minor, applied.coupon_savings_minor, applied.points_used) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize("currency", ["XYZ", "XXX"])
def test_the_checkout_and_simulator_take_only_currencies_orders_take(
    client, api_key, db, currency: str
) -> None:
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    key = auth(api_key("admin"))
    line = {"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200}

    checkout = client.post(
        "/v1/loyalty/checkout",
        json={"customer_id": member, "lines": [line], "currency": currency},
        headers=key,
    )
    simulated = client.post(
        "/v1/loyalty/simulate",
        json={"customer_id": member, "order": {"lines": [line], "currency": currency}},
        headers=key,
    )

    for refused, field in ((checkout, "currency"), (simulated, "order.currency")):
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert field in refused.text
        assert "is not a currency in use" in refused.text
