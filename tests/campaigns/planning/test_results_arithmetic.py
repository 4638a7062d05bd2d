"""The uplift arithmetic against hand-computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from rapport.campaigns.planning.results import (
    difference_of_means,
    difference_of_proportions,
    mean_interval,
    wilson,
)


def test_wilson_interval_matches_the_textbook_case() -> None:
    # Newcombe (1998), table I, example (a): 81 of 263 -> 0.2553 to 0.3662.
    interval = wilson(81, 263)
    assert interval.value == pytest.approx(81 / 263)
    assert interval.low == pytest.approx(0.2553, abs=5e-4)
    assert interval.high == pytest.approx(0.3662, abs=5e-4)


def test_newcombe_difference_matches_the_published_example() -> None:
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339.
    interval = difference_of_proportions((56, 70), (48, 80))
    assert interval.value == pytest.approx(56 / 70 - 48 / 80)
    assert interval.low == pytest.approx(0.0524, abs=5e-4)
    assert interval.high == pytest.approx(0.3339, abs=5e-4)


def test_newcombe_difference_behaves_at_zero() -> None:
    # Newcombe (1998), table II, example (h): 0/10 - 0/20 -> -0.1611 to 0.2775.
    interval = difference_of_proportions((0, 10), (0, 20))
    assert interval.value == 0
    assert interval.low == pytest.approx(-0.1611, abs=5e-4)
    assert interval.high == pytest.approx(0.2775, abs=5e-4)


def test_welch_interval_matches_a_hand_computation_and_scipy() -> None:
    treated = [0.0, 10.0, 20.0, 30.0]  # mean 15, variance 500/3
    control = [0.0, 0.0, 6.0]  # mean 2, variance 12
    interval = difference_of_means(treated, control)
    a, b = (500 / 3) / 4, 12 / 3
    freedom = (a + b) ** 2 / (a**2 / 3 + b**2 / 2)
    assert freedom == pytest.approx(3.5545, abs=1e-4)
    assert interval.value == pytest.approx(13.0)
    # Welch's interval as scipy's own t-test computes it.
    reference = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(0.95)
    assert interval.low == pytest.approx(reference.low)
    assert interval.high == pytest.approx(reference.high)
    # ... and by hand with t(0.975, 3.5545) ~ 2.93 (interpolated on 1/df between 3 and 4).
    assert interval.high is not None
    assert interval.high - 13.0 == pytest.approx(2.93 * math.sqrt(a + b), rel=0.01)


def test_no_spread_gives_a_point_and_too_few_give_no_interval() -> None:
    assert difference_of_means([5.0, 5.0], [2.0, 2.0]).low == 3.0
    assert difference_of_means([5.0], [2.0, 3.0]).low is None
    assert mean_interval([]).value is None
    assert wilson(0, 0).value is None


@given(
    x1=st.integers(0, 200),
    extra1=st.integers(0, 200),
    x2=st.integers(0, 200),
    extra2=st.integers(0, 200),
)
def test_the_conversion_uplift_interval_always_holds_its_estimate(
    x1: int, extra1: int, x2: int, extra2: int
) -> None:
    n1, n2 = x1 + extra1, x2 + extra2
    interval = difference_of_proportions((x1, n1), (x2, n2))
    if n1 == 0 or n2 == 0:
        assert interval.value is None
        return
    assert interval.low is not None
    assert interval.high is not None
    assert interval.value is not None
    assert -1 - 1e-9 <= interval.low <= interval.value <= interval.high <= 1 + 1e-9


def test_wilson_interval_touches_its_bound_exactly_at_none_or_all() -> None:
    assert wilson(0, 86).low == 0.0
    assert wilson(86, 86).high == 1.0
    assert 0.0 < wilson(0, 86).high < 0.05


def test_a_mean_of_amounts_never_negative_has_no_negative_lower_bound() -> None:
    # one customer of eight spent €1.30, the others nothing: the t interval dips below zero
    spend = [130.0] + [0.0] * 7
    plain = mean_interval(spend)
    assert plain.low is not None
    assert plain.low < 0
    clamped = mean_interval(spend, floor=0.0)
    assert clamped.low == 0.0
    assert (clamped.value, clamped.high) == (plain.value, plain.high)
