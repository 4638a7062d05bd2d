"""The place-an-order workflow called as a verb (no HTTP): the order and its loyalty effects
(points redeemed, coupon consumed) land together, or nothing does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event, ProcessorCursor
from rapport.events.processors import registered_processors, run_batch
from rapport.flows import orders as order_flows
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import AppliedCheckout, Coupon
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.tasks import expire_lots  # noqa: F401  (registers the processor)
from rapport.orders import service as orders
from rapport.orders.schemas import ReturnIn
from rapport.platform.errors import InvalidInput
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, CORKSCREW, seed_catalog


def member_with_points(db: Session) -> str:
    """A member (no paid plan) with 2,000 points."""
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    loyalty.earn(db, customer_id=member, points=2000, reason="welcome gift")
    return member


def order_with_effects(member: str, *, order_id: str, coupon: str) -> orders.OrderIn:
    """Two Chianti and a corkscrew shipped (3,300), a 3.00 coupon, 500 points paying 5.00 and
    shipping 4.95 (under the free-shipping threshold): the effects the checkout answers."""
    body: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": member,
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [
            {"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200},
            {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
        ],
        "subtotal_minor": 3300,
        "discount_minor": 300,
        "shipping_minor": 495,
        "total_minor": 3300 - 300 + 495,
        "payments": [
            {"method": "points", "amount_minor": 500},
            {"method": "card", "amount_minor": 3300 - 300 + 495 - 500},
        ],
        "loyalty": {"coupons": [coupon], "points_to_use": 500, "shipping_before_minor": 495},
    }
    return orders.OrderIn.model_validate(body)


def placed_events(db: Session) -> int:
    return db.scalar(select(func.count()).where(Event.type == "order_placed")) or 0


def test_the_order_and_its_loyalty_effects_are_placed_together(db: Session) -> None:
    # Given a member with 2,000 points and a 3.00 campaign coupon
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )

    # When the order with those checkout effects is placed through the workflow
    placed = order_flows.place_order(
        db, order=order_with_effects(member, order_id="O-FLOW-1", coupon=coupon.code)
    )

    # Then the order is recorded with its totals
    assert (placed.order_id, placed.customer_id) == ("O-FLOW-1", member)
    assert (placed.subtotal_minor, placed.discount_minor, placed.total_minor) == (3300, 300, 3495)
    assert orders.count_orders(db) == 1
    assert placed_events(db) == 1
    # and 500 points were redeemed, the coupon consumed by this order, the effects recorded
    db.expire_all()
    assert loyalty.balance(db, customer_id=member) == 1500
    used = db.get(Coupon, coupon.code)
    assert used is not None
    assert used.used_order_id == "O-FLOW-1"
    applied = db.get(AppliedCheckout, "O-FLOW-1")
    assert applied is not None
    assert applied.coupon_savings_minor == 300


def test_a_refused_loyalty_effect_leaves_no_order(db: Session) -> None:
    # Given a member whose coupon was used by a first order
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    order_flows.place_order(
        db, order=order_with_effects(member, order_id="O-FLOW-1", coupon=coupon.code)
    )
    db.expire_all()  # as a later request would, read the coupon as the first order left it

    # When a second order claims the same coupon
    with pytest.raises(reward_coupons.CouponUnavailable) as refused:
        order_flows.place_order(
            db, order=order_with_effects(member, order_id="O-FLOW-2", coupon=coupon.code)
        )

    # Then loyalty refuses the coupon as used, naming it (not the discount it no longer
    # gives), and nothing of the order is left
    assert refused.value.field == "loyalty.coupons.0"
    assert refused.value.extra == {"code": coupon.code, "reason": "used"}
    db.expire_all()
    assert orders.get_order(db, order_id="O-FLOW-2") is None
    assert orders.count_orders(db) == 1
    assert placed_events(db) == 1
    assert db.get(AppliedCheckout, "O-FLOW-2") is None
    # and no more points were taken
    assert loyalty.balance(db, customer_id=member) == 1500


def test_a_points_payment_without_the_loyalty_block_places_nothing(db: Session) -> None:
    # Given a member with 2,000 points and an order paying 5.00 with points but no loyalty block
    member = member_with_points(db)
    body = order_with_effects(member, order_id="O-NO-BLOCK", coupon="NONE").model_dump()
    body.update(discount_minor=0, total_minor=3300 + 495, loyalty=None)
    body["payments"] = [
        {"method": "points", "amount_minor": 500},
        {"method": "card", "amount_minor": 3300 + 495 - 500},
    ]

    # When it is placed
    with pytest.raises(InvalidInput) as refused:
        order_flows.place_order(db, order=orders.OrderIn.model_validate(body))

    # Then it is refused naming the payments, and nothing is stored or taken
    assert refused.value.field == "payments"
    assert orders.get_order(db, order_id="O-NO-BLOCK") is None
    assert placed_events(db) == 0
    assert loyalty.balance(db, customer_id=member) == 2000


def test_the_callers_hook_runs_in_the_same_transaction_after_the_effects(db: Session) -> None:
    # Given a member and a coupon, and a caller's hook (the API stores its idempotent answer)
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    seen: list[tuple[str, int]] = []

    def hook(session: Session, order: orders.Order) -> None:
        seen.append((order.order_id, loyalty.balance(session, customer_id=member)))

    # When the order is placed with the hook
    order_flows.place_order(
        db,
        order=order_with_effects(member, order_id="O-FLOW-3", coupon=coupon.code),
        before_commit=hook,
    )

    # Then the hook saw the order with its points already redeemed
    assert seen == [("O-FLOW-3", 1500)]


def _process(db: Session) -> None:
    for proc in registered_processors():
        while run_batch(db, proc):
            pass


def _return(db: Session, order_id: str, *lines: tuple[str, int]) -> orders.RecordedReturn:
    request = ReturnIn.model_validate(
        {
            "lines": [{"sku": sku, "quantity": n, "reason": "changed_mind"} for sku, n in lines],
            "channel": "store",
        }
    )
    return orders.record_return(db, order_id=order_id, request=request)


def test_a_return_gives_back_the_points_the_order_was_paid_with_for_the_part_returned(
    db: Session,
) -> None:
    # Given an order of 34.95 paid 5.00 with 500 points and 29.95 by card, its points earned
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    order_flows.place_order(
        db, order=order_with_effects(member, order_id="O-PTS-1", coupon=coupon.code)
    )
    _process(db)
    after_order = loyalty.balance(db, customer_id=member)  # 2,000 - 500 + what it earned

    # When one of the two Chianti comes back (12.00 less its share of the coupon: 10.91)
    first = _return(db, "O-PTS-1", (CHIANTI, 1))
    _process(db)

    # Then the refund is split by the order's payments: 500/3495 of it in points
    assert first.refund_minor == 1091
    assert (first.points_refund_minor, first.money_refund_minor) == (156, 935)
    # and the member gets those 156 points back (at 100 points per 1.00), not cash for them
    assert loyalty.points_paid(db, customer_id=member, order_id="O-PTS-1") == (500, 156)

    # When the rest comes back (shipping is not refunded)
    rest = _return(db, "O-PTS-1", (CHIANTI, 1), (CORKSCREW, 1))
    _process(db)

    # Then the two returns refund the 30.00 the goods cost after the coupon, not a cent more
    # (the corkscrew's 8.18 where rounding each return on its own gave 8.19)
    assert first.refund_minor + rest.refund_minor == 3300 - 300
    assert rest.refund_minor == 1091 + 818
    # and their points add up to the points payment's share of all that came back, rounded
    # once (not once per return), and never more than was paid
    assert first.points_refund_minor + rest.points_refund_minor == 3000 * 500 // 3495
    assert loyalty.points_paid(db, customer_id=member, order_id="O-PTS-1") == (500, 429)
    # and the balance is what the order left, plus the points given back, less what the
    # returned goods had earned (the first-purchase bonus stays)
    reversed_ = loyalty.order_points(db, customer_id=member, order_id="O-PTS-1").reversed
    assert reversed_ > 0
    assert loyalty.balance(db, customer_id=member) == after_order + 429 - reversed_
    assert loyalty.invariant_violations(db) == []
    # and the programme's figures count the points given back as not redeemed
    assert loyalty.lifetime_flows(db).redeemed == 500 - 429


def test_a_return_of_an_order_paid_without_points_refunds_only_money(db: Session) -> None:
    member = member_with_points(db)
    body = order_with_effects(member, order_id="O-CARD-1", coupon="NONE").model_dump()
    body.update(discount_minor=0, total_minor=3300 + 495, loyalty=None)
    body["payments"] = [{"method": "card", "amount_minor": 3300 + 495}]
    order_flows.place_order(db, order=orders.OrderIn.model_validate(body))
    returned = _return(db, "O-CARD-1", (CORKSCREW, 1))
    _process(db)
    assert (returned.refund_minor, returned.points_refund_minor) == (900, 0)
    assert returned.money_refund_minor == 900
    assert loyalty.points_paid(db, customer_id=member, order_id="O-CARD-1") == (0, 0)


def test_a_cancelled_order_gives_back_every_point_it_was_paid_with(db: Session) -> None:
    # Given an order paid 5.00 with 500 points and the rest by card, its points earned
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    )
    order_flows.place_order(
        db, order=order_with_effects(member, order_id="O-PTS-X", coupon=coupon.code)
    )
    _process(db)
    after_order = loyalty.balance(db, customer_id=member)
    earned = loyalty.order_points(db, customer_id=member, order_id="O-PTS-X").earned
    assert earned > 0

    # When the shop cancels it before it is sent
    orders.cancel_order(db, order_id="O-PTS-X", reason="payment declined")
    _process(db)

    # Then the 500 points paid come back, and what its goods earned is taken back, with the
    # 200-point first-purchase bonus it earned (it was the member's first order)
    assert loyalty.points_paid(db, customer_id=member, order_id="O-PTS-X") == (500, 500)
    assert loyalty.order_points(db, customer_id=member, order_id="O-PTS-X").reversible == 0
    assert loyalty.balance(db, customer_id=member) == after_order + 500 - earned - 200
    assert loyalty.invariant_violations(db) == []


def _replay_loyalty(db: Session) -> None:
    """The loyalty processor reads the whole log again, as after a crash before its cursor."""
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "loyalty.earning").values(position=0)
    )
    _process(db)


def _holder(db: Session, code: str) -> str | None:
    db.expire_all()
    coupon = db.get(Coupon, code)
    assert coupon is not None
    assert (coupon.used_at is None) == (coupon.used_order_id is None)
    return coupon.used_order_id


def test_a_cancelled_order_gives_back_the_coupon_it_used_once(db: Session) -> None:
    # Given an order that used a 3.00 campaign coupon
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    ).code
    order_flows.place_order(db, order=order_with_effects(member, order_id="O-CPN-1", coupon=coupon))
    _process(db)
    assert _holder(db, coupon) == "O-CPN-1"

    # When the order is cancelled, and the log is processed twice over (a replay)
    orders.cancel_order(db, order_id="O-CPN-1", reason="changed their mind")
    _process(db)
    _replay_loyalty(db)

    # Then the coupon is free again: the checkout takes it and the next order uses it
    assert _holder(db, coupon) is None
    valid, refused = reward_coupons.validate_coupons(db, customer_id=member, codes=[coupon])
    assert ([c.code for c in valid], refused) == ([coupon], {})
    order_flows.place_order(db, order=order_with_effects(member, order_id="O-CPN-2", coupon=coupon))
    assert _holder(db, coupon) == "O-CPN-2"
    # and a replay of the first order's cancellation never takes it from the second
    _replay_loyalty(db)
    assert _holder(db, coupon) == "O-CPN-2"


def test_a_coupon_expired_by_the_cancellation_stays_used(db: Session) -> None:
    # Given an order that used a coupon valid for a day
    member = member_with_points(db)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:flash", kind="amount", value=300, expires_at=T0 + timedelta(days=1)
    ).code
    order_flows.place_order(db, order=order_with_effects(member, order_id="O-OLD-1", coupon=coupon))
    _process(db)

    # When the order is cancelled two days later
    frozen_clock(T0 + timedelta(days=2))
    orders.cancel_order(db, order_id="O-OLD-1")
    _process(db)

    # Then the coupon, expired, stays used by the cancelled order
    assert _holder(db, coupon) == "O-OLD-1"


def test_a_reward_coupon_comes_back_without_the_points_it_cost(db: Session) -> None:
    # Given a member with 2,000 points who bought a 3.00 coupon for 300 of them, and used it
    # on their first order, paying 500 more points toward it
    member = member_with_points(db)
    reward_catalogue.save_reward(
        db,
        reward_id="three-off",
        name="3 off",
        points_cost=300,
        coupon_kind="amount",
        coupon_value=300,
        min_subtotal_minor=0,
        categories=[],
        stackable=True,
        valid_days=30,
    )
    coupon = reward_coupons.redeem_reward(db, customer_id=member, reward_id="three-off").code
    assert loyalty.balance(db, customer_id=member) == 1700
    order_flows.place_order(db, order=order_with_effects(member, order_id="O-RWD-1", coupon=coupon))
    _process(db)

    # When the order is cancelled
    orders.cancel_order(db, order_id="O-RWD-1")
    _process(db)
    _replay_loyalty(db)

    # Then the coupon is theirs to use again, and the points are as before the order: the 500
    # paid back, what the order earned (its first-purchase bonus too) taken back, and the
    # reward's 300 still spent, since the coupon they bought is back
    assert _holder(db, coupon) is None
    assert loyalty.balance(db, customer_id=member) == 1700
    assert loyalty.invariant_violations(db) == []


def test_a_guests_cancelled_order_gives_back_its_coupon(db: Session) -> None:
    # Given a guest's order (no customer) that used a campaign coupon, paid by card
    frozen_clock()
    seed_catalog(db, stock=50)
    coupon = reward_coupons.create_campaign_coupon(
        db, rule="campaign:spring", kind="amount", value=300, expires_at=T0 + timedelta(days=30)
    ).code
    body = order_with_effects("nobody", order_id="O-GUEST-1", coupon=coupon).model_dump()
    body["customer_id"] = None
    body["payments"] = [{"method": "card", "amount_minor": body["total_minor"]}]
    body["loyalty"]["points_to_use"] = 0
    order_flows.place_order(db, order=orders.OrderIn.model_validate(body))
    _process(db)
    assert _holder(db, coupon) == "O-GUEST-1"

    # When it is cancelled
    orders.cancel_order(db, order_id="O-GUEST-1")
    _process(db)

    # Then the coupon is free again
    assert _holder(db, coupon) is None
