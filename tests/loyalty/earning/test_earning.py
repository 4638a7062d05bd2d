"""The earning processor: points from orders, returns, late deliveries and preferences, once
each, with tiers kept current and rule changes that never rewrite the past."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.models import ProcessorCursor
from rapport.events.processors import registered_processors, run_batch
from rapport.loyalty import service as ledger
from rapport.loyalty.earning import awards as earning_awards
from rapport.loyalty.earning import birthdays
from rapport.loyalty.models import Award, TierChangeRecord
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.program.rules import DEFAULT_RULES, Fact
from rapport.loyalty.referrals import referring
from rapport.loyalty.tasks import expire_lots  # noqa: F401  (registers the processor)
from rapport.loyalty.tiers import standing as tier_standing
from rapport.orders import service as orders
from rapport.orders import tasks as order_tasks  # noqa: F401  (registers the merge step)
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform.errors import Conflict
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import CHIANTI, order_body, seed_catalog


def process(db: Session) -> int:
    """Run every processor until the log is caught up (the loyalty one reads what the
    profile processor resolved)."""
    handled = 0
    for proc in registered_processors():
        while count := run_batch(db, proc):
            handled += count
    return handled


def place(db: Session, customer_id: str, **overrides: Any) -> str:
    body = order_body(customer_id=customer_id, **overrides)
    return orders.place_order(db, order=OrderIn.model_validate(body)).order_id


def big_order(customer_id: str, quantity: int) -> OrderIn:
    subtotal = quantity * 1200
    return OrderIn.model_validate(
        order_body(
            customer_id=customer_id,
            lines=[{"sku": CHIANTI, "quantity": quantity, "unit_price_minor": 1200}],
            discount_minor=0,
            shipping_minor=0,
            subtotal_minor=subtotal,
            total_minor=subtotal,
            payments=[{"method": "card", "amount_minor": subtotal}],
        )
    )


def test_an_order_earns_spend_points_and_the_first_purchase_bonus_once(db: Session) -> None:
    # given a member's first order: 3,300 of goods, 300 off, 4.90 shipping
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = place(db, member)

    # when the log is processed, twice over (a replay)
    process(db)
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "loyalty.earning").values(position=0)
    )
    process(db)

    # then 30 points for the 30 euros paid on goods and 200 for the first purchase, once
    assert ledger.balance(db, customer_id=member) == 230
    awards = db.scalars(select(Award).where(Award.customer_id == member)).all()
    assert sorted((a.rule_id, a.points, a.order_id) for a in awards) == [
        ("base-earn", 30, order_id),
        ("welcome", 200, order_id),
    ]
    movements = ledger.statement(db, customer_id=member)
    assert {m.rule_id for m in movements} == {"base-earn", "welcome"}


def test_a_second_order_earns_no_welcome_bonus(db: Session) -> None:
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place(db, member)
    place(db, member)
    process(db)
    assert ledger.balance(db, customer_id=member) == 230 + 30


def test_a_returned_line_takes_back_what_it_earned(db: Session) -> None:
    # given an order of 10 bottles (120 points, 12 per bottle)
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = orders.place_order(db, order=big_order(member, 10)).order_id
    process(db)
    before = ledger.balance(db, customer_id=member)

    # when 3 bottles come back
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 3, "reason": "damaged"}], "channel": "store"}
        ),
    )
    process(db)

    # then 36 points are reversed; the welcome bonus stays
    assert before - ledger.balance(db, customer_id=member) == 36
    assert ledger.order_points(db, customer_id=member, order_id=order_id).reversed == 36


def test_a_cancelled_order_gives_back_what_it_earned_once(db: Session) -> None:
    # given a member's second order of 10 bottles (120 points), not yet sent
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place(db, member)
    order_id = orders.place_order(db, order=big_order(member, 10)).order_id
    process(db)
    before = ledger.balance(db, customer_id=member)

    # when the shop cancels it, and the log is processed twice over (a replay)
    orders.cancel_order(db, order_id=order_id, reason="out of stock at the supplier")
    process(db)
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "loyalty.earning").values(position=0)
    )
    process(db)

    # then the 120 points it earned are taken back, once, as a return takes them
    assert before - ledger.balance(db, customer_id=member) == 120
    assert ledger.order_points(db, customer_id=member, order_id=order_id).reversible == 0
    assert ledger.invariant_violations(db) == []


def test_after_a_whole_return_a_manual_reversal_cannot_take_the_first_purchase_bonus(
    db: Session,
) -> None:
    # given a first order of 10 bottles (120 points) with the 200-point first-purchase bonus,
    # all of it returned, its 120 points taken back
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = orders.place_order(db, order=big_order(member, 10)).order_id
    process(db)
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 10, "reason": "damaged"}], "channel": "web"}
        ),
    )
    process(db)
    after_return = ledger.balance(db, customer_id=member)
    assert ledger.order_points(db, customer_id=member, order_id=order_id) == ledger.OrderPoints(
        earned=120, reversed=120
    )

    # when a shop also sends the return through the reversal command
    with pytest.raises(Conflict):
        ledger.reverse_for_return(db, customer_id=member, order_id=order_id, points=5)

    # then the first-purchase bonus stays, as the return left it
    assert ledger.balance(db, customer_id=member) == after_return == 200


def test_an_order_moved_by_a_merge_gives_back_its_points_when_returned(db: Session) -> None:
    # given a member's order of 10 bottles (120 points), and their profile then merged into
    # another (the order and the open points go to the survivor; the journal stays)
    frozen_clock()
    seed_catalog(db, stock=50)
    merged_away, survivor = make_customer(db), make_customer(db)
    order_id = orders.place_order(db, order=big_order(merged_away, 10)).order_id
    process(db)
    customers.merge_customers(
        db, source_customer_id=merged_away, target_customer_id=survivor, reason="same", actor="t"
    )
    process(db)
    before = ledger.balance(db, customer_id=survivor)

    # when 3 bottles come back
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {"lines": [{"sku": CHIANTI, "quantity": 3, "reason": "damaged"}], "channel": "store"}
        ),
    )
    process(db)

    # then the survivor gives back the 36 points those bottles earned
    assert before - ledger.balance(db, customer_id=survivor) == 36
    assert ledger.order_points(db, customer_id=survivor, order_id=order_id) == (
        ledger.OrderPoints(earned=120, reversed=36)
    )


def test_apology_points_once_per_order_and_preferences_once_per_field(db: Session) -> None:
    frozen = frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = place(db, member, promised_delivery=str((T0 + timedelta(days=2)).date()))
    process(db)
    start = ledger.balance(db, customer_id=member)

    # when the delivery is late (flagged by the job), then fails, and preferences are shared
    frozen.advance(timedelta(days=5))
    assert order_id in orders.flag_late_deliveries(db)
    orders.update_delivery_status(db, order_id=order_id, status="shipped")
    orders.update_delivery_status(db, order_id=order_id, status="failed")
    customers.set_preferences(db, customer_id=member, values={"shoe_size": "42"}, source="app")
    customers.set_preferences(
        db,
        customer_id=member,
        values={"shoe_size": "43", "favourite_colour": "green"},
        source="app",
    )
    process(db)

    # then one apology (150) and two fields (25 each)
    assert ledger.balance(db, customer_id=member) - start == 150 + 50


def test_tiers_upgrade_at_once_and_the_multiplier_applies_to_later_orders(db: Session) -> None:
    frozen_clock()
    seed_catalog(db, stock=500)
    member = make_customer(db)
    # 130 bottles: 1,560 euros of qualifying spend, over the gold threshold of 1,500
    orders.place_order(db, order=big_order(member, 130))
    process(db)
    assert tier_standing.member_tier(db, customer_id=member).tier_id == "gold"
    change = db.scalar(select(TierChangeRecord).where(TierChangeRecord.customer_id == member))
    assert change is not None
    assert (change.from_tier, change.to_tier, change.change) == (None, "gold", "upgrade")

    before = ledger.balance(db, customer_id=member)
    orders.place_order(db, order=big_order(member, 10))
    process(db)
    assert ledger.balance(db, customer_id=member) - before == 180  # 120 x 1.5 for gold


def test_changed_rules_apply_to_later_events_only(db: Session) -> None:
    # given an order received under the default rules
    frozen = frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place(db, member)

    # when the rules change to 2 points per euro before the processor has run
    frozen.advance(timedelta(minutes=1))
    doubled: dict[str, Any] = {"rules": [dict(rule) for rule in DEFAULT_RULES["rules"]]}  # type: ignore[index, union-attr]
    doubled["rules"][0]["points_per_unit"] = "2"
    program_versions.save(db, "rules", doubled, changed_by="test")
    frozen.advance(timedelta(minutes=1))
    place(db, member)
    process(db)

    # then the first order earned under the old rules, the second under the new
    awards = db.scalars(
        select(Award.points)
        .where(Award.customer_id == member, Award.rule_id == "base-earn")
        .order_by(Award.id)
    ).all()
    assert list(awards) == [30, 60]


def test_birthday_bonus_once_a_year(db: Session) -> None:
    frozen_clock(T0.replace(month=5, day=12))
    member = make_customer(db)
    customers.set_preferences(
        db, customer_id=member, values={"birthday": "1990-05-12"}, source="app"
    )
    other = make_customer(db)
    customers.set_preferences(
        db, customer_id=other, values={"birthday": "1990-05-13"}, source="app"
    )
    assert birthdays.give_birthday_points(db) == 100
    assert birthdays.give_birthday_points(db) == 0
    assert ledger.balance(db, customer_id=member) == 100
    assert ledger.get_member(db, customer_id=other) is None


def test_a_referred_friends_first_purchase_pays_both_once(db: Session) -> None:
    frozen_clock()
    seed_catalog(db, stock=50)
    referrer = make_customer(db)
    friend = make_customer(db)
    code = referring.referral_code(db, customer_id=referrer)
    referring.refer(db, code=code.code, friend_id=friend)

    place(db, friend)
    place(db, friend)
    process(db)

    assert ledger.balance(db, customer_id=referrer) == 500
    assert ledger.balance(db, customer_id=friend) == 500 + 200 + 30 + 30


def test_merged_profiles_bring_their_points_with_their_expiry(db: Session) -> None:
    # given two profiles of one person, each with points (one lot due earlier than the other)
    frozen = frozen_clock()
    seed_catalog(db, stock=50)
    kept, merged = make_customer(db), make_customer(db)
    ledger.earn(db, customer_id=kept, points=100, reason="kept's points")
    ledger.earn(db, customer_id=merged, points=70, reason="early lot")
    frozen.advance(timedelta(days=30))
    ledger.earn(db, customer_id=merged, points=30, reason="later lot")
    place(db, merged)
    process(db)
    merged_balance = ledger.balance(db, customer_id=merged)  # 100 + 30 spend + 200 welcome
    due_before: dict[datetime, int] = {}
    for member in (kept, merged):
        found = ledger.get_member(db, customer_id=member)
        assert found is not None
        for lot in found.lots:
            due_before[lot.expires_at] = due_before.get(lot.expires_at, 0) + lot.remaining

    # when they are merged and the log is processed (twice: a replay moves nothing again)
    customers.merge_customers(
        db, source_customer_id=merged, target_customer_id=kept, reason="same email", actor="test"
    )
    process(db)
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "loyalty.earning").values(position=0)
    )
    process(db)

    # then the survivor holds all the points, each lot with its own expiry, and the books balance
    assert ledger.balance(db, customer_id=merged) == 0
    assert ledger.balance(db, customer_id=kept) == 100 + merged_balance
    survivor = ledger.get_member(db, customer_id=kept)
    assert survivor is not None
    due_after: dict[datetime, int] = {}
    for lot in survivor.lots:
        due_after[lot.expires_at] = due_after.get(lot.expires_at, 0) + lot.remaining
    assert due_after == due_before
    assert ledger.invariant_violations(db) == []
    # and the merged profile's order still counts as the survivor's earlier order
    assert (
        earning_awards.member_context(
            db, program_versions.rule_set(db)[1], order_fact_for(kept)
        ).earlier_orders
        == 1
    )


def order_fact_for(customer_id: str) -> Fact:
    return Fact(kind="order_placed", customer_id=customer_id, occurred_at=T0, order_id="new")
