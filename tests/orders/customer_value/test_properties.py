"""Invariants of the customer-value models, for any parameters and histories."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.orders.customer_value import (
    TIER_SHARES,
    VALUE_TIERS,
    BgNbdParams,
    GammaGammaParams,
    expected_average_spend,
    expected_purchases,
    probability_alive,
    probability_purchase,
    summarise_purchases,
    value_tiers,
)

params = st.builds(
    BgNbdParams,
    r=st.floats(0.05, 5.0),
    alpha=st.floats(0.5, 200.0),
    a=st.floats(0.05, 5.0),
    b=st.floats(0.05, 10.0),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[float, float, float]:
    """(x, t_x, T) in days, with 0 <= t_x <= T and t_x = 0 when x = 0."""
    age = draw(st.floats(1.0, 2000.0))
    x = draw(st.integers(0, 60))
    recency = 0.0 if x == 0 else draw(st.floats(0.0, 1.0)) * age
    return float(x), recency, age


@settings(max_examples=80, deadline=None)
@given(params, st.lists(histories(), min_size=1, max_size=20))
def test_probabilities_are_probabilities(
    fitted: BgNbdParams, rows: list[tuple[float, float, float]]
) -> None:
    x, t_x, age = (np.asarray(column) for column in zip(*rows, strict=True))
    alive = probability_alive(fitted, x, t_x, age)
    buying = probability_purchase(fitted, 90, x, t_x, age)
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all((buying >= 0) & (buying <= alive + 1e-12))
    # a customer who never came back cannot have dropped out under BG/NBD
    assert np.all(alive[x == 0] == 1.0)
    assert np.all(expected_purchases(fitted, 90, x, t_x, age) >= 0)


@settings(max_examples=80, deadline=None)
@given(params, st.floats(1.0, 300.0), st.floats(1.0, 1500.0))
def test_a_long_silent_one_off_buyer_is_less_likely_to_buy_than_a_recent_one(
    fitted: BgNbdParams, recent_age: float, extra_silence: float
) -> None:
    recent = probability_purchase(fitted, 90, [0.0], [0.0], [recent_age])[0]
    silent = probability_purchase(fitted, 90, [0.0], [0.0], [recent_age + extra_silence])[0]
    assert silent < recent


@settings(max_examples=80, deadline=None)
@given(params, st.integers(1, 40), st.floats(10.0, 1500.0), st.floats(0.0, 0.99))
def test_the_longer_a_repeat_buyer_is_silent_the_less_likely_alive(
    fitted: BgNbdParams, x: int, age: float, stop: float
) -> None:
    bought_lately = probability_alive(fitted, [x], [age], [age])[0]
    stopped_earlier = probability_alive(fitted, [x], [stop * age], [age])[0]
    assert stopped_earlier <= bought_lately


@settings(max_examples=80, deadline=None)
@given(params, st.integers(1, 40), st.floats(10.0, 1500.0), st.floats(1.0, 400.0))
def test_expected_purchases_grow_with_frequency_when_recency_is_age(
    fitted: BgNbdParams, x: int, age: float, horizon: float
) -> None:
    # From x >= 1 on: the first repeat purchase also opens the door to dropping out, so with
    # a large a / b a one-off buyer can be expected to buy more than a one-repeat buyer.
    fewer = expected_purchases(fitted, horizon, [x], [age], [age])[0]
    more = expected_purchases(fitted, horizon, [x + 1], [age], [age])[0]
    longer = expected_purchases(fitted, horizon * 2, [x], [age], [age])[0]
    assert more >= fewer * (1 - 1e-7)
    assert longer >= fewer * (1 - 1e-7)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1e7), min_size=0, max_size=600))
def test_value_tiers_partition_customers_with_their_shares(values: list[float]) -> None:
    tiers = value_tiers(values)
    n = len(values)
    assert len(tiers) == n
    assert set(tiers) <= set(VALUE_TIERS)
    cumulative = 0
    for tier in ("top1", "top5", "top20"):
        cumulative += int(np.count_nonzero(tiers == tier))
        assert cumulative == int(np.floor(TIER_SHARES[tier] * n + 1e-9))
    # and a higher tier never holds a lower value than a lower tier
    rank = {tier: i for i, tier in enumerate(VALUE_TIERS)}
    order = np.asarray([rank[t] for t in tiers])
    array = np.asarray(values)
    for better in range(3):
        above, below = array[order == better], array[order > better]
        if above.size and below.size:
            assert above.min() >= below.max()


@settings(max_examples=60, deadline=None)
@given(
    st.builds(
        GammaGammaParams, p=st.floats(0.5, 20), q=st.floats(1.1, 20), gamma=st.floats(1, 1e4)
    ),
    st.integers(1, 50),
    st.floats(1.0, 1e5),
)
def test_expected_spend_lies_between_the_population_and_the_customer(
    spend: GammaGammaParams, x: int, own_mean: float
) -> None:
    expected = expected_average_spend(spend, [x], [own_mean])[0]
    low, high = sorted((spend.population_mean, own_mean))
    assert low * (1 - 1e-9) <= expected <= high * (1 + 1e-9)
    # with no repeat purchase, the population's mean
    assert expected_average_spend(spend, [0], [0.0])[0] == spend.population_mean


def test_purchases_on_one_day_count_once_and_the_first_is_not_a_repeat() -> None:
    # customer 1: days 0 (two orders), 10, 30; customer 2: day 5 only; a purchase after the end
    customers, summary = summarise_purchases(
        [1, 1, 1, 1, 2, 1],
        [0, 0, 10, 30, 5, 99],
        [10.0, 5.0, 20.0, 40.0, 7.0, 1000.0],
        end_day=50,
    )
    assert customers.tolist() == [1, 2]
    assert summary.frequency.tolist() == [2.0, 0.0]
    assert summary.recency.tolist() == [30.0, 0.0]
    assert summary.age.tolist() == [50.0, 45.0]
    assert summary.monetary.tolist() == [30.0, 0.0]
