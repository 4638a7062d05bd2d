"""A cancelled order in loyalty: it was never a purchase, so the first-purchase bonus it earned
is taken back through the ledger, once, and the customer's first order still standing (or else
their next) counts as their first; a referral it completed is taken back and reopened alike."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events.models import ProcessorCursor
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award, Referral
from rapport.loyalty.referrals import referring
from rapport.orders import service as orders
from rapport.platform import clock
from tests.loyalty.earning.test_earning import big_order, place, process
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import seed_catalog


def _replay(db: Session) -> None:
    db.execute(
        update(ProcessorCursor).where(ProcessorCursor.name == "loyalty.earning").values(position=0)
    )
    process(db)


def test_a_cancelled_first_order_gives_back_its_first_purchase_bonus_once(db: Session) -> None:
    # given a member's first order of 10 bottles: 120 points and the 200-point welcome bonus
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = orders.place_order(db, order=big_order(member, 10)).order_id
    process(db)
    assert ledger.balance(db, customer_id=member) == 320

    # when the shop cancels it, and the log is processed twice over (a replay)
    orders.cancel_order(db, order_id=order_id, reason="changed their mind")
    process(db)
    _replay(db)

    # then both the lines' points and the bonus are taken back, once each, as reversals
    assert ledger.balance(db, customer_id=member) == 0
    reversals = [
        (m.points, m.rule_id, m.reason)
        for m in ledger.statement(db, customer_id=member)
        if m.kind == "reverse"
    ]
    assert sorted(reversals) == [
        (-200, "welcome", f"First purchase bonus: order {order_id} cancelled"),
        (-120, None, f"Order {order_id} cancelled"),
    ]
    assert ledger.get_member(db, customer_id=member).debt == 0
    assert ledger.invariant_violations(db) == []
    # the order has nothing left to take back
    assert ledger.order_points(db, customer_id=member, order_id=order_id).reversible == 0

    # and their next order is their first purchase: it earns the welcome bonus
    second = place(db, member)
    process(db)
    assert ledger.balance(db, customer_id=member) == 30 + 200
    welcome = db.scalars(
        select(Award.order_id).where(Award.customer_id == member, Award.rule_id == "welcome")
    ).all()
    assert sorted(welcome) == sorted([order_id, second])
    # and its order after that is not
    place(db, member)
    process(db)
    assert ledger.balance(db, customer_id=member) == 30 + 200 + 30


def test_a_spent_first_purchase_bonus_becomes_debt_when_its_order_is_cancelled(
    db: Session,
) -> None:
    # given a member's first order (30 points and the 200-point bonus), 200 of them spent
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    order_id = place(db, member)
    process(db)
    ledger.redeem(db, customer_id=member, points=200, reason="Coffee reward")

    # when the order is cancelled
    orders.cancel_order(db, order_id=order_id)
    process(db)

    # then the 30 points still there are taken, and the spent bonus is owed, as after a
    # return of spent points: the member's next earning pays it first
    member_now = ledger.get_member(db, customer_id=member)
    assert (member_now.balance, member_now.debt) == (0, 200)
    assert ledger.invariant_violations(db) == []
    ledger.earn(db, customer_id=member, points=250, reason="Goodwill", order_id=None)
    member_now = ledger.get_member(db, customer_id=member)
    assert (member_now.balance, member_now.debt) == (50, 0)


def test_an_order_placed_before_the_first_was_cancelled_becomes_the_first_purchase(
    db: Session,
) -> None:
    # given a member's first order (bonus) and a second one placed before the first is
    # cancelled (judged then: not a first purchase), and a third
    moment = frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    first = place(db, member)
    moment.advance(timedelta(hours=1))
    second = place(db, member)
    moment.advance(timedelta(hours=1))
    place(db, member)
    process(db)
    assert ledger.balance(db, customer_id=member) == 30 + 200 + 30 + 30

    # when the first is cancelled, and the log is read again (a replay)
    moment.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=first)
    process(db)
    _replay(db)

    # then its points and bonus go, and the second order, the customer's first purchase now,
    # earns the bonus, once, dated today
    assert ledger.balance(db, customer_id=member) == 30 + 200 + 30
    welcome = db.scalars(
        select(Award).where(Award.customer_id == member, Award.rule_id == "welcome")
    ).all()
    assert sorted((a.order_id, a.once_key) for a in welcome) == sorted(
        [(first, f"first-order cancelled {first}"), (second, "first-order")]
    )
    movement = next(
        m
        for m in ledger.statement(db, customer_id=member)
        if m.kind == "earn" and m.order_id == second and m.rule_id == "welcome"
    )
    assert movement.points == 200
    assert movement.reason == f"First purchase bonus: first order ({first} was cancelled)"
    assert movement.created_at == clock.now()  # the cancellation's day
    assert ledger.invariant_violations(db) == []
    # and a later order is no first purchase
    place(db, member)
    process(db)
    assert ledger.balance(db, customer_id=member) == 30 + 200 + 30 + 30


def _referred_pair(db: Session) -> tuple[str, str]:
    referrer, friend = make_customer(db), make_customer(db)
    code = referring.referral_code(db, customer_id=referrer)
    referring.refer(db, code=code.code, friend_id=friend)
    return referrer, friend


def test_a_referred_friends_cancelled_first_order_pays_neither_side(db: Session) -> None:
    # given a referred friend whose first order paid both sides 500 (and the friend 30 + 200)
    moment = frozen_clock()
    seed_catalog(db, stock=50)
    referrer, friend = _referred_pair(db)
    first = place(db, friend)
    process(db)
    assert (ledger.balance(db, customer_id=referrer), ledger.balance(db, customer_id=friend)) == (
        500,
        500 + 200 + 30,
    )

    # when the order is cancelled, and the log is read again (a replay)
    moment.advance(timedelta(hours=2))
    orders.cancel_order(db, order_id=first)
    process(db)
    _replay(db)

    # then neither side keeps the referral bonus: it was no purchase, and the referral is open
    assert (ledger.balance(db, customer_id=referrer), ledger.balance(db, customer_id=friend)) == (
        0,
        0,
    )
    reasons = [m.reason for m in ledger.statement(db, customer_id=referrer) if m.kind == "reverse"]
    assert reasons == [f"Referral bonus: order {first} cancelled"]
    referral = db.get(Referral, friend)
    assert referral is not None
    assert (referral.completed_at, referral.order_id) == (None, None)
    assert ledger.invariant_violations(db) == []

    # and the friend's next order completes it, paying both sides once
    second = place(db, friend)
    process(db)
    _replay(db)
    assert (ledger.balance(db, customer_id=referrer), ledger.balance(db, customer_id=friend)) == (
        500,
        500 + 200 + 30,
    )
    db.refresh(referral)
    assert referral.order_id == second


def test_a_referral_moves_to_the_friends_order_placed_before_the_cancellation(
    db: Session,
) -> None:
    # given a referred friend's first order (it completed the referral) and a second one
    moment = frozen_clock()
    seed_catalog(db, stock=50)
    referrer, friend = _referred_pair(db)
    first = place(db, friend)
    moment.advance(timedelta(hours=1))
    second = place(db, friend)
    process(db)

    # when the first is cancelled
    moment.advance(timedelta(days=1))
    orders.cancel_order(db, order_id=first)
    process(db)
    _replay(db)

    # then the second order is the friend's first purchase: it completes the referral (both
    # sides paid once) and earns the first-purchase bonus
    referral = db.get(Referral, friend)
    assert referral is not None
    assert referral.order_id == second
    assert (ledger.balance(db, customer_id=referrer), ledger.balance(db, customer_id=friend)) == (
        500,
        500 + 200 + 30,
    )
    assert ledger.invariant_violations(db) == []
