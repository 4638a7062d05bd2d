"""Customer value fitted on the orders Rapport holds: stored, read, selected, erased."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from rapport.flows import privacy
from rapport.orders import service
from rapport.orders.customer_value.serving import fit_currency, merge_customer_value
from rapport.platform import clock
from rapport.platform.errors import InvalidInput
from tests.orders.customer_value.factories import NOW, add_customer_with_orders


@pytest.fixture
def history(db: Session) -> dict[str, str]:
    """Thirty customers from loyal and recent to one-off and long gone."""
    clock.set_clock(lambda: NOW)
    ids: dict[str, str] = {}
    for i in range(10):  # regulars: every month for a year, still buying
        ids[f"regular{i}"] = add_customer_with_orders(
            db, name=f"regular{i}", days_ago=list(range(5 + i, 365, 30)), total_minor=4000 + i
        )
    for i in range(10):  # lapsed: bought a few times a year ago, then nothing
        ids[f"lapsed{i}"] = add_customer_with_orders(
            db, name=f"lapsed{i}", days_ago=[400 + i, 370, 340], total_minor=3000
        )
    for i in range(10):  # one-off buyers
        ids[f"once{i}"] = add_customer_with_orders(
            db, name=f"once{i}", days_ago=[200 + 10 * i], total_minor=2000
        )
    return ids


def test_fit_stores_every_buyers_value_and_the_parameters(
    db: Session, history: dict[str, str]
) -> None:
    # when the models are fitted on the orders held
    fit = service.fit_customer_value(db)
    # then the parameters are stored and read back as the ones in use
    assert fit is not None
    assert (fit.customers, fit.repeat_customers) == (30, 20)
    assert min(fit.r, fit.alpha, fit.a, fit.b) > 0
    assert fit.p is not None
    assert fit.q is not None
    assert fit.q > 1
    assert service.value_fit(db) == fit
    # and every buyer has a value; the regular customer is worth more and more alive
    regular = service.customer_value(db, customer_id=history["regular0"])
    lapsed = service.customer_value(db, customer_id=history["lapsed0"])
    assert regular is not None
    assert lapsed is not None
    assert regular.fitted_at == NOW
    assert regular.predicted_value_minor > lapsed.predicted_value_minor > 0
    assert regular.p_alive > lapsed.p_alive
    assert regular.expected_purchases_90d > lapsed.expected_purchases_90d
    assert regular.frequency == 11  # twelve purchase days, eleven of them repeats
    within = service.expected_purchases_within(db, customer_id=history["regular0"], days=90)
    assert within == pytest.approx(regular.expected_purchases_90d)
    assert service.customer_value(db, customer_id="cus_unknown") is None
    # and the tiers partition the 30 customers: 0 top1, 1 top5, 5 top20 (cumulative 0, 1, 6)
    summary = {row.tier: row.customers for row in service.value_tier_summary(db)}
    assert summary == {"top1": 0, "top5": 1, "top20": 5, "rest": 24}
    assert service.top_customers(db, limit=1)[0].value_tier == "top5"


def test_refit_replaces_values(db: Session, history: dict[str, str]) -> None:
    service.fit_customer_value(db)
    clock.set_clock(lambda: NOW + timedelta(days=30))
    second = service.fit_customer_value(db)
    assert second is not None
    assert second.fitted_at == NOW + timedelta(days=30)
    value = service.customer_value(db, customer_id=history["once0"])
    assert value is not None
    assert value.fitted_at == second.fitted_at
    assert sum(row.customers for row in service.value_tier_summary(db)) == 30


def test_value_audience_selects_by_tier_value_and_p_alive(
    db: Session, history: dict[str, str]
) -> None:
    service.fit_customer_value(db)
    regulars = {history[f"regular{i}"] for i in range(10)}
    lapsed = {history[f"lapsed{i}"] for i in range(10)}
    everyone = set(db.scalars(service.value_audience()))
    assert everyone == set(history.values())
    # the top 20 % are the six most valuable: all regulars
    top = set(db.scalars(service.value_audience(value_tiers=["top1", "top5", "top20"])))
    assert len(top) == 6
    assert top <= regulars
    # by probability alive: the lapsed are the ones below one half
    dying = set(db.scalars(service.value_audience(max_p_alive=0.5)))
    assert lapsed <= dying
    assert not dying & regulars
    # by predicted value, inclusive bounds
    lowest_regular = min(
        v.predicted_value_minor
        for v in (service.customer_value(db, customer_id=c) for c in regulars)
        if v is not None
    )
    rich = set(db.scalars(service.value_audience(min_predicted_value_minor=lowest_regular)))
    assert regulars <= rich
    assert (
        set(
            db.scalars(
                service.value_audience(
                    min_predicted_value_minor=lowest_regular,
                    max_predicted_value_minor=lowest_regular,
                )
            )
        )
        <= regulars
    )
    # by the chance of a purchase within 90 days, which falls for silent one-off buyers too
    onces = [history[f"once{i}"] for i in range(10)]  # bought once, 200 to 290 days ago
    unlikely = set(db.scalars(service.value_audience(max_p_purchase_90d=0.25)))
    assert set(onces) | lapsed <= unlikely
    assert not unlikely & regulars
    chances = [
        value.p_purchase_90d
        for value in (service.customer_value(db, customer_id=c) for c in onces)
        if value is not None
    ]
    assert chances == sorted(chances, reverse=True)
    likely = set(db.scalars(service.value_audience(min_p_purchase_90d=0.5)))
    assert likely == regulars
    # and the conditions combine
    both = set(db.scalars(service.value_audience(value_tiers=["rest"], min_p_alive=0.9)))
    assert both
    assert not both & lapsed
    assert not both & top


def test_value_audience_refuses_an_unknown_tier() -> None:
    with pytest.raises(InvalidInput) as refused:
        service.value_audience(value_tiers=["gold"])
    assert refused.value.field == "value_tiers"


def test_erasure_removes_the_value_and_the_next_fit_leaves_the_person_out(
    db: Session, history: dict[str, str]
) -> None:
    service.fit_customer_value(db)
    person = history["regular3"]
    exported = privacy.export_customer(db, customer_id=person, requested_by="dpo@example.org")
    assert exported["customer_value"][0]["customer_id"] == person
    # when the person is erased
    privacy.erase_customer(db, customer_id=person, requested_by="dpo@example.org")
    # then their value is gone, and stays gone after a refit
    assert service.customer_value(db, customer_id=person) is None
    fit = service.fit_customer_value(db)
    assert fit is not None
    assert fit.customers == 29
    assert service.customer_value(db, customer_id=person) is None
    assert person not in set(db.scalars(service.value_audience()))


def test_without_orders_nothing_is_fitted(db: Session) -> None:
    clock.set_clock(lambda: NOW)
    assert service.fit_customer_value(db) is None
    assert service.value_fit(db) is None


def test_the_fit_counts_only_the_shops_currency(db: Session, history: dict[str, str]) -> None:
    # given two customers with the same euro orders, one of whom also bought in dollars
    euros = add_customer_with_orders(db, name="euros", days_ago=[20, 50, 80], total_minor=5000)
    mixed = add_customer_with_orders(db, name="mixed", days_ago=[20, 50, 80], total_minor=5000)
    add_customer_with_orders(
        db,
        name="mixed-usd",
        days_ago=[10, 35, 65],
        total_minor=900000,
        currency="USD",
        existing=mixed,
    )
    dollars = add_customer_with_orders(
        db, name="dollars", days_ago=[5, 30], total_minor=700000, currency="USD"
    )
    # when the models are fitted: most orders are in euros, the shop's currency
    assert fit_currency(db) == "EUR"
    fit = service.fit_customer_value(db)
    # then the dollar orders are left out, never added to euro totals
    assert fit is not None
    assert fit.customers == 32
    a = service.customer_value(db, customer_id=euros)
    b = service.customer_value(db, customer_id=mixed)
    assert a is not None
    assert b is not None
    assert (b.frequency, b.monetary_minor) == (a.frequency, a.monetary_minor) == (2, 5000)
    assert b.predicted_value_minor == a.predicted_value_minor
    assert service.customer_value(db, customer_id=dollars) is None
    # and a merge works the survivor's value out on its euro orders only
    merge_customer_value(db, source_id=dollars, target_id=mixed)
    merged = service.customer_value(db, customer_id=mixed)
    assert merged is not None
    assert merged.monetary_minor == 5000
