"""A coupon bound to another customer answers exactly as a code never issued does, whatever
its state (open, used, expired), in the validation, the checkout and an order carrying it: the
answers must not tell a code that exists from one that does not, or codes could be probed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.loyalty.rewards import coupons as reward_coupons
from tests.conftest import auth
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, seed_catalog

UNKNOWN = "NEVERISSUED"


def _bound_coupons(db: Session, owner: str) -> dict[str, str]:
    """The owner's coupons in each state, by state: open, used (by an order), expired."""
    clock = frozen_clock()
    seed_catalog(db, stock=50)

    def issue(days: int) -> str:
        return reward_coupons.create_campaign_coupon(
            db,
            rule="campaign:private",
            kind="amount",
            value=300,
            expires_at=T0 + timedelta(days=days),
            customer_id=owner,
        ).code

    codes = {"open": issue(30), "used": issue(30), "expired": issue(1)}
    reward_coupons.consume_coupons(db, codes=[codes["used"]], order_id="O-OWNER")
    db.commit()
    clock.advance(timedelta(days=2))
    return codes


def test_validation_answers_another_customers_coupon_as_an_unknown_code(
    client, api_key, db
) -> None:
    # given a customer's open, used and expired coupons
    owner, prober = make_customer(db), make_customer(db)
    codes = _bound_coupons(db, owner)
    key = auth(api_key("read"))

    def validate(customer_id: str | None, code: str) -> tuple[int, Any]:
        body = {"codes": [code], **({"customer_id": customer_id} if customer_id else {})}
        answer = client.post("/v1/loyalty/coupons/validate", json=body, headers=key)
        return answer.status_code, answer.json()

    # when another customer, or a guest, validates each of them, and a code never issued
    for customer_id in (prober, None):
        unknown = validate(customer_id, UNKNOWN)
        # then each answers exactly as the unknown code does (but for the code itself)
        assert unknown == (200, {"valid": [], "refused": {UNKNOWN: "unknown"}})
        for code in codes.values():
            refused = {"valid": [], "refused": {code: "unknown"}}
            assert validate(customer_id, code) == (200, refused)
    # and the owner is still told why theirs are refused
    assert validate(owner, codes["used"])[1]["refused"] == {codes["used"]: "used"}
    assert validate(owner, codes["expired"])[1]["refused"] == {codes["expired"]: "expired"}
    assert [c["code"] for c in validate(owner, codes["open"])[1]["valid"]] == [codes["open"]]


def _cart(customer_id: str, code: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "coupons": [code],
    }


def _order(customer_id: str, code: str, number: str) -> dict[str, Any]:
    """An order claiming the coupon's 3.00 off, as a prober would send it."""
    return {
        "order_id": f"O-PROBE-{number}",
        "customer_id": customer_id,
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200}],
        "subtotal_minor": 2400,
        "discount_minor": 300,
        "total_minor": 2100,
        "payments": [{"method": "card", "amount_minor": 2100}],
        "loyalty": {"coupons": [code], "points_to_use": 0, "shipping_before_minor": 0},
    }


def _without(problem: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in problem.items() if name not in names}


def test_checkout_and_orders_answer_another_customers_coupon_as_an_unknown_code(
    client, api_key, db
) -> None:
    # given a customer's open, used and expired coupons
    owner, prober = make_customer(db), make_customer(db)
    codes = _bound_coupons(db, owner)
    key = auth(api_key("write"))

    # when another customer's checkout carries each of them, and a code never issued
    def checked(code: str) -> tuple[int, Any]:
        answer = client.post("/v1/loyalty/checkout", json=_cart(prober, code), headers=key)
        return answer.status_code, answer.json()

    status, unknown = checked(UNKNOWN)
    # then each is refused as the unknown code is, with the same effects
    assert (status, unknown["refused_coupons"]) == (200, {UNKNOWN: "unknown"})
    for code in codes.values():
        status, answer = checked(code)
        assert (status, answer["refused_coupons"]) == (200, {code: "unknown"})
        assert _without(answer, "refused_coupons") == _without(unknown, "refused_coupons")

    # and an order carrying one (claiming its amount off) is refused as one carrying the
    # unknown code is: the same status and problem, never 409 coupon-unavailable 'used'
    def ordered(code: str, number: str) -> tuple[int, dict[str, Any]]:
        answer = client.post(
            "/v1/orders",
            json=_order(prober, code, number),
            headers={**key, "Idempotency-Key": f"probe-{number}"},
        )
        return answer.status_code, _without(answer.json(), "instance", "trace_id")

    expected = ordered(UNKNOWN, "0")
    assert expected[0] == 422
    assert expected[1]["field"] == "discount_minor"
    for number, code in enumerate(codes.values(), start=1):
        assert ordered(code, str(number)) == expected


def test_consuming_another_customers_used_coupon_is_refused_as_unknown(db) -> None:
    # given a customer's coupon used by their order
    owner, prober = make_customer(db), make_customer(db)
    codes = _bound_coupons(db, owner)

    # when another customer's order tries to use it, or a guest's
    refusals = []
    for customer_id in (prober, None):
        try:
            reward_coupons.consume_coupons(
                db, codes=[codes["used"]], order_id="O-PROBE", customer_id=customer_id
            )
        except reward_coupons.CouponUnavailable as refused:
            refusals.append(refused.extra)
        db.rollback()

    # then it is refused as unknown for the other customer (a guest's consumption is checked
    # by the validation before it; without a customer the coupon's own state is said)
    assert refusals == [
        {"code": codes["used"], "reason": "unknown"},
        {"code": codes["used"], "reason": "used"},
    ]
