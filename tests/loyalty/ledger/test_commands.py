"""The points ledger on SQLite and PostgreSQL: lots, FIFO, expiry, returns, debt, statement."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import LedgerEntry, LotConsumption
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from tests.loyalty.factories import T0, frozen_clock, make_customer


def _open_lots(db, customer_id):  # type: ignore[no-untyped-def]
    member = loyalty.get_member(db, customer_id=customer_id)
    assert member is not None
    return [(lot.amount, lot.remaining) for lot in member.lots]


def test_earning_opens_the_account_with_a_lot_expiring_after_the_program_months(db) -> None:
    # given a customer and the default program (12 months)
    frozen_clock()
    customer_id = make_customer(db)
    # when they earn twice
    first = loyalty.earn(
        db, customer_id=customer_id, points=120, reason="Order", order_id="O-1", rule_id="base"
    )
    second = loyalty.earn(db, customer_id=customer_id, points=30, reason="Review bonus")
    # then the balance is the sum of two open lots, each with its expiry
    assert (first.balance, second.balance) == (120, 150)
    assert first.expires_at == T0.replace(year=2027)
    assert _open_lots(db, customer_id) == [(120, 120), (30, 30)]
    assert loyalty.balance(db, customer_id=customer_id) == 150
    # and each transaction is two entries that sum to zero, logged as an event
    entries = db.execute(
        select(LedgerEntry.account_id, LedgerEntry.amount)
        .where(LedgerEntry.transaction_id == first.transaction_id)
        .order_by(LedgerEntry.amount)
    ).all()
    assert entries == [("program:issued", -120), (customer_id, 120)]
    logged = db.scalars(select(Event).where(Event.type == "points_earned")).all()
    assert [e.properties["points"] for e in logged] == [120, 30]
    assert loyalty.invariant_violations(db) == []


def test_earning_for_an_unknown_customer_is_404_and_changes_nothing(db) -> None:
    with pytest.raises(NotFound) as raised:
        loyalty.earn(db, customer_id="cus_nobody", points=10, reason="Order")
    assert raised.value.field == "customer_id"
    assert db.scalar(select(func.count()).select_from(LedgerEntry)) == 0


@pytest.mark.parametrize("points", [0, -5, 100_000_001])
def test_points_out_of_range_are_refused(db, points) -> None:  # type: ignore[no-untyped-def]
    customer_id = make_customer(db)
    with pytest.raises(InvalidInput) as raised:
        loyalty.earn(db, customer_id=customer_id, points=points, reason="Order")
    assert raised.value.field == "points"


def test_redemption_takes_the_oldest_lots_first(db) -> None:
    # given lots of 100 then 50
    clock = frozen_clock()
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Order")
    clock.advance(timedelta(days=1))
    loyalty.earn(db, customer_id=customer_id, points=50, reason="Order")
    # when 120 are redeemed
    posted = loyalty.redeem(db, customer_id=customer_id, points=120, reason="Reward")
    # then the first lot is used up and 20 come from the second
    assert (posted.points, posted.balance) == (-120, 30)
    assert _open_lots(db, customer_id) == [(50, 30)]
    consumed = db.scalars(
        select(LotConsumption.points)
        .where(LotConsumption.transaction_id == posted.transaction_id)
        .order_by(LotConsumption.id)
    ).all()
    assert consumed == [100, 20]
    assert loyalty.invariant_violations(db) == []


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(db) -> None:
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=40, reason="Order")
    with pytest.raises(loyalty.InsufficientPoints) as raised:
        loyalty.redeem(db, customer_id=customer_id, points=41, reason="Reward")
    assert (raised.value.status, raised.value.field) == (409, "points")
    assert raised.value.extra == {"balance": 40}
    assert loyalty.balance(db, customer_id=customer_id) == 40
    assert len(loyalty.statement(db, customer_id=customer_id)) == 1


def test_redeeming_without_an_account_is_404(db) -> None:
    customer_id = make_customer(db)
    with pytest.raises(NotFound):
        loyalty.redeem(db, customer_id=customer_id, points=1, reason="Reward")


def test_expiry_consumes_due_lots_and_leaves_the_rest(db) -> None:
    # given a lot expiring in 10 days and one in a year
    clock = frozen_clock()
    customer_id = make_customer(db)
    loyalty.earn(
        db, customer_id=customer_id, points=70, reason="Promo", expires_at=T0 + timedelta(days=10)
    )
    loyalty.earn(db, customer_id=customer_id, points=30, reason="Order")
    loyalty.redeem(db, customer_id=customer_id, points=20, reason="Reward")
    # when the expiry job runs before and after the date
    assert loyalty.expire_lots(db) == loyalty.ExpiryRun()
    clock.advance(timedelta(days=10))
    run = loyalty.expire_lots(db)
    # then the 50 left of the promo lot expire, once
    assert run == loyalty.ExpiryRun(members=1, lots=1, points=50)
    assert loyalty.expire_lots(db) == loyalty.ExpiryRun()
    assert loyalty.balance(db, customer_id=customer_id) == 30
    assert _open_lots(db, customer_id) == [(30, 30)]
    assert loyalty.statement(db, customer_id=customer_id)[0].kind == "expire"
    assert loyalty.liability(db).by_account["program:expired"] == 50
    assert loyalty.invariant_violations(db) == []


def test_adjustments_add_a_lot_or_remove_points_but_never_below_zero(db) -> None:
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=10, reason="Order")
    added = loyalty.adjust(db, customer_id=customer_id, points=25, reason="Goodwill")
    removed = loyalty.adjust(db, customer_id=customer_id, points=-30, reason="Duplicate credit")
    assert (added.balance, removed.balance) == (35, 5)
    with pytest.raises(loyalty.InsufficientPoints):
        loyalty.adjust(db, customer_id=customer_id, points=-6, reason="Too much")
    with pytest.raises(InvalidInput) as raised:
        loyalty.adjust(db, customer_id=customer_id, points=5, reason="  ")
    assert raised.value.field == "reason"
    assert loyalty.liability(db).by_account["program:adjustments"] == -25 + 30
    assert loyalty.invariant_violations(db) == []


def test_a_return_reverses_the_orders_points_proportionally_from_its_own_lot(db) -> None:
    # given 200 points from order O-9 and 50 from elsewhere
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=50, reason="Welcome")
    loyalty.earn(db, customer_id=customer_id, points=200, reason="Order", order_id="O-9")
    # when a quarter of the order's value comes back
    posted = loyalty.reverse_for_return(
        db, customer_id=customer_id, order_id="O-9", share=Fraction(1, 4)
    )
    # then 50 points leave the order's lot, not the older welcome lot
    assert (posted.points, posted.balance, posted.debt) == (-50, 200, 0)
    assert _open_lots(db, customer_id) == [(50, 50), (200, 150)]
    assert loyalty.order_points(db, customer_id=customer_id, order_id="O-9") == (
        loyalty.OrderPoints(earned=200, reversed=50)
    )
    # and never more than the order earned
    rest = loyalty.reverse_for_return(db, customer_id=customer_id, order_id="O-9", points=500)
    assert rest.points == -150
    with pytest.raises(Conflict):
        loyalty.reverse_for_return(db, customer_id=customer_id, order_id="O-9", points=1)
    assert loyalty.invariant_violations(db) == []


def test_reversing_spent_points_records_debt_that_later_earning_pays(db) -> None:
    # given 100 points from an order, 80 of them spent
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Order", order_id="O-1")
    loyalty.redeem(db, customer_id=customer_id, points=80, reason="Reward")
    # when the whole order is returned
    posted = loyalty.reverse_for_return(
        db, customer_id=customer_id, order_id="O-1", share=Fraction(1)
    )
    # then the balance goes to zero, not below, and 80 become debt
    assert (posted.points, posted.balance, posted.debt, posted.debt_change) == (-20, 0, 80, 80)
    # when the member earns 50, then 60
    first = loyalty.earn(db, customer_id=customer_id, points=50, reason="Order", order_id="O-2")
    second = loyalty.earn(db, customer_id=customer_id, points=60, reason="Order", order_id="O-3")
    # then the debt is paid first and only the rest becomes points
    assert (first.points, first.balance, first.debt) == (0, 0, 30)
    assert (second.points, second.balance, second.debt) == (30, 30, 0)
    assert _open_lots(db, customer_id) == [(30, 30)]
    # and the order that paid debt still counts what it issued, for its own returns
    assert loyalty.order_points(db, customer_id=customer_id, order_id="O-2").earned == 50
    assert loyalty.liability(db).by_account["program:member_debt"] == 0
    assert loyalty.invariant_violations(db) == []


def test_without_debt_the_shortfall_is_written_off(db) -> None:
    loyalty.configure_program(db, allow_debt=False)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Order", order_id="O-1")
    loyalty.redeem(db, customer_id=customer_id, points=90, reason="Reward")
    posted = loyalty.reverse_for_return(db, customer_id=customer_id, order_id="O-1", points=100)
    assert (posted.points, posted.balance, posted.debt, posted.written_off) == (-10, 0, 0, 90)
    assert loyalty.order_points(db, customer_id=customer_id, order_id="O-1").reversible == 0
    assert loyalty.invariant_violations(db) == []


def test_statement_lists_every_movement_newest_first_in_pages(db) -> None:
    customer_id = make_customer(db)
    loyalty.earn(
        db, customer_id=customer_id, points=10, reason="Order", order_id="O-1", rule_id="r1"
    )
    loyalty.earn(db, customer_id=customer_id, points=20, reason="Birthday", rule_id="birthday")
    loyalty.redeem(db, customer_id=customer_id, points=5, reason="Coffee")
    page = loyalty.statement(db, customer_id=customer_id, limit=2)
    assert [(m.kind, m.points, m.reason) for m in page] == [
        ("redeem", -5, "Coffee"),
        ("earn", 20, "Birthday"),
    ]
    rest = loyalty.statement(db, customer_id=customer_id, limit=2, before=page[-1].transaction_id)
    assert [(m.points, m.order_id, m.rule_id) for m in rest] == [(10, "O-1", "r1")]


def test_program_settings_are_validated_and_do_not_rewrite_earned_lots(db) -> None:
    frozen_clock()
    customer_id = make_customer(db)
    before = loyalty.earn(db, customer_id=customer_id, points=10, reason="Order")
    loyalty.configure_program(db, expiry_months=6, point_value_minor_per_100=50)
    after = loyalty.earn(db, customer_id=customer_id, points=10, reason="Order")
    assert before.expires_at == T0.replace(year=2027)
    assert after.expires_at == T0.replace(month=9)
    assert loyalty.liability(db).value_minor == 10
    with pytest.raises(InvalidInput) as raised:
        loyalty.configure_program(db, expiry_months=0)
    assert raised.value.field == "expiry_months"


def test_the_program_currency_is_one_in_use(db) -> None:
    # a currency some country pays in today is taken, and only relabels amounts
    loyalty.configure_program(db, point_value_minor_per_100=150)
    assert loyalty.configure_program(db, currency="GBP").point_value_minor_per_100 == 150
    # a withdrawn code or a made-up one is refused, naming the field, and changes nothing
    for wrong in ("DEM", "XYZ", "gbp"):
        with pytest.raises(InvalidInput) as raised:
            loyalty.configure_program(db, currency=wrong)
        assert raised.value.field == "currency"
    assert loyalty.get_program(db).currency == "GBP"


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert loyalty.add_months(T0.replace(month=1, day=31), 1) == T0.replace(month=2, day=28)
    assert loyalty.add_months(T0.replace(month=11), 3) == T0.replace(year=2027, month=2)


def test_a_return_after_the_points_expired_without_debt_writes_them_off(db) -> None:
    loyalty.configure_program(db, allow_debt=False)
    clock = frozen_clock()
    customer_id = make_customer(db)
    loyalty.earn(
        db,
        customer_id=customer_id,
        points=4,
        reason="Order",
        order_id="O-1",
        expires_at=T0 + timedelta(days=1),
    )
    clock.advance(timedelta(days=1))
    loyalty.expire_lots(db)
    posted = loyalty.reverse_for_return(
        db, customer_id=customer_id, order_id="O-1", share=Fraction(1, 4)
    )
    assert (posted.points, posted.balance, posted.written_off) == (0, 0, 1)
    assert loyalty.invariant_violations(db) == []
