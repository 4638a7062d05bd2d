"""POST /v1/loyalty/checkout, and POST /v1/orders applying exactly those effects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.loyalty import service as ledger
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import AppliedCheckout, Coupon
from rapport.loyalty.rewards import coupons as reward_coupons
from tests.conftest import auth
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, CORKSCREW, seed_catalog


def paying_member(db: Session) -> str:
    """A member of the paid plan with 2,000 points, and a member price on Chianti."""
    frozen_clock()
    seed_catalog(db, stock=50)
    catalog.set_channel_price(
        db, sku=CHIANTI, channel="members", price_minor=1000, reason="members' price"
    )
    membership_plans.save_plan(
        db,
        plan_id="plus",
        name="Plus",
        fee_minor=4900,
        currency="EUR",
        period="year",
        free_shipping=True,
        member_prices=True,
        early_access_hours=48,
    )
    member = make_customer(db)
    memberships.join(db, customer_id=member, plan_id="plus")
    ledger.earn(db, customer_id=member, points=2000, reason="welcome gift")
    return member


def cart(member: str, **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": member,
        "channel": "web",
        "lines": [
            {"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200},
            {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
        ],
        "shipping_minor": 495,
        **extra,
    }


def order_from(
    checkout: dict[str, Any], member: str, coupons: list[str], points: int
) -> dict[str, Any]:
    """The order a shop would send after showing the checkout answer."""
    return {
        "customer_id": member,
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [
            {"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200},
            {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
        ],
        "subtotal_minor": checkout["subtotal_minor"],
        "discount_minor": checkout["discount_minor"],
        "shipping_minor": checkout["shipping_minor"],
        "total_minor": checkout["subtotal_minor"]
        - checkout["discount_minor"]
        + checkout["shipping_minor"],
        "payments": [
            {"method": "points", "amount_minor": checkout["points_payment_minor"]},
            {"method": "card", "amount_minor": checkout["total_minor"]},
        ],
        "loyalty": {"coupons": coupons, "points_to_use": points, "shipping_before_minor": 495},
    }


def test_checkout_answers_effects_in_order_naming_their_rules(client, api_key, db) -> None:
    member = paying_member(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    answer = client.post(
        "/v1/loyalty/checkout",
        json=cart(member, coupons=[coupon.code], points_to_use=500),
        headers=auth(api_key("write")),
    )
    assert answer.status_code == 200
    result = answer.json()
    steps = [(e["step"], e["rule"]) for e in result["effects"]]
    assert steps[:2] == [("member_price", "plan:plus"), ("coupon", "campaign:spring")]
    assert ("points_payment", "program:points") in steps
    assert ("free_shipping", "plan:plus") in steps
    assert steps[-1][0] == "points_earned"
    # 2 x 10.00 member price + 9.00 = 29.00, minus 3.00 coupon; 500 points pay 5.00
    assert result["discount_minor"] == 400 + 300
    assert (result["points_used"], result["points_payment_minor"]) == (500, 500)
    assert (result["shipping_minor"], result["total_minor"]) == (0, 2600 - 500)
    # nothing was written
    db.expire_all()
    assert ledger.balance(db, customer_id=member) == 2000
    assert db.get(Coupon, coupon.code).used_at is None  # type: ignore[union-attr]


def test_an_order_with_the_checkout_effects_applies_them_once(client, api_key, db) -> None:
    member = paying_member(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    key = auth(api_key("write"))
    checkout = client.post(
        "/v1/loyalty/checkout",
        json=cart(member, coupons=[coupon.code], points_to_use=500),
        headers=key,
    ).json()

    placed = client.post(
        "/v1/orders",
        json=order_from(checkout, member, [coupon.code], 500),
        headers={**key, "Idempotency-Key": "order-1"},
    )

    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    db.expire_all()  # the order's statements changed rows this session has loaded
    assert ledger.balance(db, customer_id=member) == 1500
    used = db.get(Coupon, coupon.code)
    assert used is not None
    assert used.used_order_id == order_id
    applied = db.get(AppliedCheckout, order_id)
    assert applied is not None
    assert applied.plan_savings_minor == 400 + 495  # member prices and free shipping
    assert applied.coupon_savings_minor == 300
    assert applied.effects[0]["step"] == "member_price"

    # the same coupon again is refused with the order as used, which changes nothing
    again = client.post(
        "/v1/orders",
        json=order_from(checkout, member, [coupon.code], 500),
        headers={**key, "Idempotency-Key": "order-2"},
    )
    assert again.status_code == 409
    problem = again.json()
    assert (problem["type"].rsplit("/", 1)[-1], problem["field"]) == (
        "coupon-unavailable",
        "loyalty.coupons.0",
    )
    assert (problem["code"], problem["reason"]) == (coupon.code, "used")
    assert ledger.balance(db, customer_id=member) == 1500


def test_an_order_whose_totals_differ_from_the_effects_is_refused(client, api_key, db) -> None:
    member = paying_member(db)
    key = auth(api_key("write"))
    checkout = client.post(
        "/v1/loyalty/checkout", json=cart(member, points_to_use=500), headers=key
    ).json()
    body = order_from(checkout, member, [], 500)
    body["shipping_minor"] = 495
    body["total_minor"] += 495
    body["payments"][1]["amount_minor"] += 495

    refused = client.post("/v1/orders", json=body, headers={**key, "Idempotency-Key": "o-3"})

    assert refused.status_code == 422
    assert refused.json()["field"] == "shipping_minor"
    assert refused.json()["expected"] == 0
    assert ledger.balance(db, customer_id=member) == 2000
    assert db.scalar(select(AppliedCheckout.order_id)) is None


def test_a_points_payment_without_the_loyalty_block_is_refused(client, api_key, db) -> None:
    # given a member with 2,000 points
    member = paying_member(db)
    key = auth(api_key("write"))
    body = {
        "order_id": "O-NO-LOYALTY",
        "customer_id": member,
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [{"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 1000}],
        "subtotal_minor": 1000,
        "total_minor": 1000,
        "payments": [
            {"method": "points", "amount_minor": 900},
            {"method": "card", "amount_minor": 100},
        ],
    }

    # when an order says 9.00 of it was paid with points, without the checkout's loyalty block
    refused = client.post("/v1/orders", json=body, headers={**key, "Idempotency-Key": "o-4"})

    # then it is refused naming payments and saying what to send, and nothing is stored: no
    # order for a return to give back points that were never taken
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "payments"
    assert "loyalty" in refused.json()["detail"]
    read = auth(api_key("read"))
    assert client.get("/v1/orders/O-NO-LOYALTY", headers=read).status_code == 404
    assert ledger.balance(db, customer_id=member) == 2000

    # and the same order paid by card alone is placed
    body["payments"] = [{"method": "card", "amount_minor": 1000}]
    placed = client.post("/v1/orders", json=body, headers={**key, "Idempotency-Key": "o-5"})
    assert placed.status_code == 201, placed.text


def test_benefits_combine_the_tier_and_the_paid_plan(client, api_key, db) -> None:
    member = paying_member(db)
    other = make_customer(db)
    key = auth(api_key("read"))
    paying = client.get(f"/v1/loyalty/members/{member}/benefits", headers=key).json()
    free = client.get(f"/v1/loyalty/members/{other}/benefits", headers=key).json()
    assert (paying["paying_plan"], paying["free_shipping_over_minor"]) == ("plus", 0)
    assert (paying["member_prices"], paying["early_access_hours"]) == (True, 48)
    assert (free["paying_plan"], free["free_shipping_over_minor"]) == (None, 9000)
    assert (free["member_prices"], free["support_priority"]) == (False, "standard")


def test_refused_codes_are_left_alone_however_they_are_typed(client, api_key, db) -> None:
    member = paying_member(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    typed = [coupon.code.lower(), "no-such-code"]
    key = auth(api_key("write"))
    checkout = client.post(
        "/v1/loyalty/checkout", json=cart(member, coupons=typed), headers=key
    ).json()
    assert checkout["refused_coupons"] == {"NOSUCHCODE": "unknown"}

    placed = client.post(
        "/v1/orders",
        json=order_from(checkout, member, typed, 0),
        headers={**key, "Idempotency-Key": "typed-codes"},
    )

    assert placed.status_code == 201, placed.text
    db.expire_all()
    used = db.get(Coupon, coupon.code)
    assert used is not None
    assert used.used_order_id == placed.json()["order_id"]


def test_a_code_given_twice_counts_once_and_is_used_by_the_order(client, api_key, db) -> None:
    member = paying_member(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    twice = [coupon.code, coupon.code.lower(), "NOPE"]
    key = auth(api_key("write", "read"))
    # the validation lists it once, as valid, and never as refused too
    checked = client.post(
        "/v1/loyalty/coupons/validate", json={"customer_id": member, "codes": twice}, headers=key
    ).json()
    assert [c["code"] for c in checked["valid"]] == [coupon.code]
    assert checked["refused"] == {"NOPE": "unknown"}
    # the checkout takes it off once
    checkout = client.post(
        "/v1/loyalty/checkout", json=cart(member, coupons=twice), headers=key
    ).json()
    assert [e["rule"] for e in checkout["effects"] if e["step"] == "coupon"] == ["campaign:spring"]
    assert checkout["refused_coupons"] == {"NOPE": "unknown"}

    placed = client.post(
        "/v1/orders",
        json=order_from(checkout, member, twice, 0),
        headers={**key, "Idempotency-Key": "twice"},
    )

    # and the order that took it off used it up
    assert placed.status_code == 201, placed.text
    db.expire_all()
    used = db.get(Coupon, coupon.code)
    assert used is not None
    assert used.used_order_id == placed.json()["order_id"]


def test_the_tiers_free_shipping_says_its_threshold_as_money(client, api_key, db) -> None:
    # given a member of the default tier (free shipping over 90.00) and no paid plan
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    # when a cart of 96.00 is checked
    answer = client.post(
        "/v1/loyalty/checkout",
        json={
            "customer_id": member,
            "channel": "web",
            "lines": [{"sku": CHIANTI, "quantity": 8, "unit_price_minor": 1200}],
            "shipping_minor": 495,
        },
        headers=auth(api_key("write")),
    )
    # then shipping is free, said in the programme's currency and naming the tier by its name
    # (its id in the rule)
    assert answer.status_code == 200
    shipping = [e for e in answer.json()["effects"] if e["step"] == "free_shipping"]
    assert [(e["rule"], e["description"]) for e in shipping] == [
        ("tier:member", "free shipping for Member over €90.00")
    ]
