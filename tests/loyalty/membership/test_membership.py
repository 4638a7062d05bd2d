"""Paid membership on SQLite and PostgreSQL: plans, join, renew, cancel, lapse, the value
statement and the program analytics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import analytics as segment_analytics
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.membership import value as value_statements
from rapport.loyalty.models import AppliedCheckout, MembershipPayment
from rapport.orders import service as orders
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import order_body, seed_catalog


def _plan(db: Session, *, plan_id: str = "plus", period: str = "month", fee: int = 499) -> None:
    membership_plans.save_plan(
        db, plan_id=plan_id, name="Plus", fee_minor=fee, currency="EUR", period=period
    )


def _payments(db: Session, customer_id: str) -> list[tuple[str, str, int]]:
    return [
        (p.period_start.strftime("%Y-%m-%d"), p.period_end.strftime("%Y-%m-%d"), p.amount_minor)
        for p in memberships.payments(db, customer_id=customer_id)
    ]


@pytest.mark.parametrize(
    ("_case", "changes", "field"),
    [
        ("negative fee", {"fee_minor": -1}, "fee_minor"),
        ("unknown period", {"period": "week"}, "period"),
        ("lowercase currency", {"currency": "eur"}, "currency"),
        ("long currency", {"currency": "EURO"}, "currency"),
        ("made-up currency", {"currency": "XYZ"}, "currency"),
        ("empty name", {"name": " "}, "name"),
        ("bad id", {"plan_id": "a b"}, "plan_id"),
    ],
)
def test_invalid_plans_are_refused_naming_the_field(db, _case, changes, field) -> None:  # type: ignore[no-untyped-def]
    values = {
        "plan_id": "plus",
        "name": "Plus",
        "fee_minor": 499,
        "currency": "EUR",
        "period": "month",
    } | changes
    with pytest.raises(InvalidInput) as raised:
        membership_plans.save_plan(db, **values)
    assert raised.value.field == field
    assert membership_plans.list_plans(db) == []


def test_plans_are_created_updated_and_listed_by_fee(db) -> None:
    _plan(db, plan_id="yearly", period="year", fee=4900)
    _plan(db, plan_id="plus", fee=499)
    membership_plans.save_plan(
        db, plan_id="plus", name="Plus+", fee_minor=599, currency="EUR", period="month"
    )
    assert [(p.plan_id, p.name, p.fee_minor) for p in membership_plans.list_plans(db)] == [
        ("plus", "Plus+", 599),
        ("yearly", "Plus", 4900),
    ]


def test_joining_records_the_first_fee_as_revenue_and_benefits_start_at_once(db) -> None:
    # given a monthly plan and a customer with points
    frozen_clock()
    _plan(db)
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=50, reason="Order")
    # when they join
    joined = memberships.join(db, customer_id=customer_id, plan_id="plus")
    # then the plan's benefits apply from this moment, the fee is one payment, points untouched
    assert joined.status == "active"
    plan = memberships.current_plan(db, customer_id=customer_id, at=T0)
    assert plan is not None
    assert plan.plan_id == "plus"
    assert (
        memberships.current_plan(db, customer_id=customer_id, at=T0 - timedelta(seconds=1)) is None
    )
    assert _payments(db, customer_id) == [("2026-03-01", "2026-04-01", 499)]
    assert loyalty.balance(db, customer_id=customer_id) == 50
    logged = db.scalars(select(Event).where(Event.type == "membership_joined")).all()
    assert [e.properties["fee_minor"] for e in logged] == [499]


def test_joining_twice_unknown_plan_or_customer_is_refused(db) -> None:
    _plan(db)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    with pytest.raises(Conflict) as twice:
        memberships.join(db, customer_id=customer_id, plan_id="plus")
    with pytest.raises(NotFound) as no_plan:
        memberships.join(db, customer_id=make_customer(db), plan_id="gold")
    with pytest.raises(NotFound) as no_customer:
        memberships.join(db, customer_id="cus_nobody", plan_id="plus")
    assert (twice.value.field, no_plan.value.field, no_customer.value.field) == (
        "customer_id",
        "plan_id",
        "customer_id",
    )
    assert db.scalar(select(func.count()).select_from(MembershipPayment)) == 1
    assert twice.value.detail == (
        f"Customer {customer_id!r} already has an active membership of plan 'plus'"
    )


def test_renewal_job_charges_each_period_once_even_when_run_twice(db) -> None:
    # given a member who joined on 1 March on a monthly plan
    clock = frozen_clock()
    _plan(db)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    # when the job runs before the period ends, then twice after two periods have passed
    assert memberships.renew_due(db, now=T0 + timedelta(days=10)) == memberships.RenewalRun()
    clock.advance(timedelta(days=62))  # 2 May
    first = memberships.renew_due(db)
    second = memberships.renew_due(db)
    # then the two missed periods are charged once each, dated from the old period ends
    assert (first.renewed_periods, second.renewed_periods) == (2, 0)
    assert _payments(db, customer_id) == [
        ("2026-03-01", "2026-04-01", 499),
        ("2026-04-01", "2026-05-01", 499),
        ("2026-05-01", "2026-06-01", 499),
    ]
    current = memberships.get_membership(db, customer_id=customer_id)
    assert current is not None
    assert current.current_period_start.strftime("%Y-%m-%d") == "2026-05-01"
    assert memberships.current_plan(db, customer_id=customer_id) is not None


def test_a_changed_fee_applies_from_the_next_renewal(db) -> None:
    clock = frozen_clock()
    _plan(db)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    _plan(db, fee=599)
    clock.advance(timedelta(days=31))
    memberships.renew_due(db)
    assert [amount for _, _, amount in _payments(db, customer_id)] == [499, 599]


def test_cancel_keeps_benefits_until_the_period_ends_then_the_job_lapses_it(db) -> None:
    # given a yearly member who cancels a month in
    clock = frozen_clock()
    _plan(db, period="year", fee=4900)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    clock.advance(timedelta(days=30))
    cancelled = memberships.cancel(db, customer_id=customer_id)
    again = memberships.cancel(db, customer_id=customer_id)
    # then benefits stay for the paid year, and nothing renews
    assert (cancelled.status, again.status, cancelled.auto_renew) == (
        "cancelled",
        "cancelled",
        False,
    )
    end = T0.replace(year=2027)
    assert memberships.current_plan(db, customer_id=customer_id, at=end - timedelta(seconds=1))
    assert memberships.renew_due(db, now=end - timedelta(seconds=1)) == memberships.RenewalRun()
    # when the year is over and the job runs (twice)
    clock.advance(end - clock.at)
    assert memberships.renew_due(db) == memberships.RenewalRun(renewed_periods=0, lapsed=1)
    assert memberships.renew_due(db) == memberships.RenewalRun()
    # then the membership lapsed at the period end with one payment, and the plan is gone
    lapsed = memberships.get_membership(db, customer_id=customer_id)
    assert lapsed is not None
    assert lapsed.status == "lapsed"
    assert lapsed.ended_at is not None
    assert lapsed.ended_at.strftime("%Y-%m-%d") == "2027-03-01"
    assert memberships.current_plan(db, customer_id=customer_id) is None
    assert len(_payments(db, customer_id)) == 1
    # and they may join again
    rejoined = memberships.join(db, customer_id=customer_id, plan_id="plus")
    assert rejoined.status == "active"


def test_lapse_ends_benefits_at_once_and_a_retired_plan_does_not_renew(db) -> None:
    clock = frozen_clock()
    _plan(db)
    _plan(db, plan_id="old")
    first, second = make_customer(db), make_customer(db)
    memberships.join(db, customer_id=first, plan_id="plus")
    memberships.join(db, customer_id=second, plan_id="old")
    memberships.lapse(db, customer_id=first, reason="card refused")
    membership_plans.save_plan(
        db, plan_id="old", name="Old", fee_minor=499, currency="EUR", period="month", active=False
    )
    assert memberships.current_plan(db, customer_id=first) is None
    clock.advance(timedelta(days=31))
    assert memberships.renew_due(db) == memberships.RenewalRun(renewed_periods=0, lapsed=1)
    assert memberships.current_plan(db, customer_id=second) is None
    with pytest.raises(NotFound):
        memberships.cancel(db, customer_id=first)


def test_value_statement_compares_the_fee_with_the_plans_savings(db) -> None:
    # given a member and three orders placed with checkout effects, one before joining
    frozen_clock()
    _plan(db)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    for order_id, days, saved in (("O-0", -3, 900), ("O-1", 2, 350), ("O-2", 9, 400)):
        _import_order(db, customer_id, order_id, days, 5000)
        db.add(
            AppliedCheckout(
                order_id=order_id,
                customer_id=customer_id,
                effects=[],
                plan_savings_minor=saved,
                placed_at=T0 + timedelta(days=days),
            )
        )
    db.commit()
    # when the member asks what the plan was worth this period
    statement = value_statements.value_statement(db, customer_id=customer_id)
    # then the fee paid (499) is set against the 750 saved in the period
    assert (statement.fee_paid_minor, statement.savings_minor, statement.net_minor) == (
        499,
        750,
        251,
    )
    assert (statement.orders_with_savings, statement.currency) == (2, "EUR")


def test_a_cancelled_orders_savings_do_not_count_in_the_value_statement(db) -> None:
    # given a member who saved 350 and 400 with the plan on two orders placed this period
    frozen_clock()
    _plan(db)
    seed_catalog(db, stock=50)
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="plus")
    for order_id, saved in (("O-KEPT", 350), ("O-CALLED-OFF", 400)):
        placed = orders.place_order(
            db,
            order=orders.OrderIn.model_validate(
                order_body(customer_id=customer_id, order_id=order_id)
            ),
        )
        db.add(
            AppliedCheckout(
                order_id=order_id,
                customer_id=customer_id,
                effects=[],
                plan_savings_minor=saved,
                placed_at=placed.placed_at,
            )
        )
    db.commit()

    # when the second order is cancelled before it was sent
    orders.cancel_order(db, order_id="O-CALLED-OFF")

    # then only what the plan saved on the order kept counts: the cancelled one saved nothing
    statement = value_statements.value_statement(db, customer_id=customer_id)
    assert (statement.savings_minor, statement.orders_with_savings) == (350, 1)


def _import_order(
    db: Session,
    customer_id: str,
    order_id: str,
    days: int,
    total: int,
    currency: str = "EUR",
) -> None:
    customer = customers.get_customer(db, customer_id=customer_id)
    assert customer is not None
    assert customer.external_id is not None
    orders.import_orders(
        db,
        orders=[
            orders.ImportedOrder(
                order_id=order_id,
                customer_external_id=customer.external_id,
                channel="web",
                fulfilment="in_store",
                store_id=None,
                placed_at=T0 + timedelta(days=days),
                currency=currency,
                lines=[orders.ImportedLine(sku="SKU-1", quantity=1, unit_price_minor=total)],
            )
        ],
    )


def test_savings_in_another_currency_are_never_set_against_the_plans_fee(db) -> None:
    # given a member of a plan in JPY who saved 4.20 EUR with member prices on a EUR order
    frozen_clock()
    membership_plans.save_plan(
        db, plan_id="yen", name="P yen", fee_minor=500, currency="JPY", period="month"
    )
    customer_id = make_customer(db)
    memberships.join(db, customer_id=customer_id, plan_id="yen")
    _import_order(db, customer_id, "E-1", 2, 5000, currency="EUR")
    _import_order(db, customer_id, "Y-1", 3, 5000, currency="JPY")
    for order_id, saved in (("E-1", 420), ("Y-1", 80)):
        db.add(
            AppliedCheckout(
                order_id=order_id,
                customer_id=customer_id,
                effects=[],
                plan_savings_minor=saved,
                placed_at=T0 + timedelta(days=2),
            )
        )
    db.commit()
    # when the value statement is read
    statement = value_statements.value_statement(db, customer_id=customer_id)
    # then it is in yen: the fee against the yen saved, the euros apart and never subtracted
    assert statement.currency == "JPY"
    assert (statement.fee_paid_minor, statement.savings_minor, statement.net_minor) == (
        500,
        80,
        -420,
    )
    assert statement.orders_with_savings == 1
    assert statement.other_currencies == (
        value_statements.CurrencyValue(currency="EUR", fee_paid_minor=0, savings_minor=420),
    )


def test_a_plan_with_members_keeps_its_currency(db) -> None:
    # given a plan with a member
    frozen_clock()
    _plan(db)
    memberships.join(db, customer_id=make_customer(db), plan_id="plus")
    # when its currency is changed, then 409 naming currency and saying what to do
    with pytest.raises(Conflict) as refused:
        membership_plans.save_plan(
            db, plan_id="plus", name="Plus", fee_minor=499, currency="GBP", period="month"
        )
    assert refused.value.field == "currency"
    assert "create a new plan in GBP" in refused.value.detail
    plan = membership_plans.get_plan(db, plan_id="plus")
    assert plan is not None
    assert plan.currency == "EUR"
    # while a plan nobody has joined may change it
    _plan(db, plan_id="empty")
    changed = membership_plans.save_plan(
        db, plan_id="empty", name="Empty", fee_minor=499, currency="GBP", period="month"
    )
    assert changed.currency == "GBP"


def test_analytics_compare_paying_free_and_non_members(db) -> None:
    # given a paying member, a free member (points only) and a non-member, with orders in the
    # 30 days to T0 + 30 and the 30 days before
    frozen_clock(T0 - timedelta(days=40))
    _plan(db)
    paying, free, other = make_customer(db), make_customer(db), make_customer(db)
    memberships.join(db, customer_id=paying, plan_id="plus")
    loyalty.earn(db, customer_id=free, points=10, reason="Welcome")
    _import_order(db, paying, "A-1", -20, 5000)  # before the window
    _import_order(db, paying, "A-2", 5, 3000)
    _import_order(db, paying, "A-3", 10, 2000)
    _import_order(db, free, "B-1", -20, 4000)  # bought before, not again
    _import_order(db, other, "C-1", 12, 1000)
    known = customers.count_customers(db)
    # when the analytics cover T0 to T0 + 30 days
    report = segment_analytics.program_analytics(db, since=T0, until=T0 + timedelta(days=30))
    by_segment = {s.segment: s for s in report.segments}
    # then each group's customers, spend per customer, frequency and retention are exact
    assert (by_segment["paying"].customers, by_segment["free"].customers) == (1, 1)
    assert by_segment["non_member"].customers == known - 2
    assert (by_segment["paying"].orders, by_segment["paying"].spend_minor) == (2, 5000)
    assert by_segment["paying"].spend_per_customer_minor == 5000
    assert by_segment["paying"].orders_per_customer == 2.0
    assert (by_segment["paying"].previous_buyers, by_segment["paying"].retention) == (1, 1.0)
    assert (by_segment["free"].orders, by_segment["free"].retention) == (0, 0.0)
    assert (by_segment["non_member"].buyers, by_segment["non_member"].spend_minor) == (1, 1000)
    assert by_segment["non_member"].retention is None
