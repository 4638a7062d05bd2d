"""Score arithmetic on known answer sets."""

from __future__ import annotations

import pytest

from rapport.feedback.scores import arithmetic


def test_nps_is_promoters_minus_detractors_with_an_adjusted_wald_interval() -> None:
    # given 5 promoters, 3 passives and 2 detractors
    answers = [10, 9, 9, 10, 9, 7, 8, 7, 3, 6]
    # when
    result = arithmetic.nps(answers)
    # then NPS = 50% - 20% = 30, and the interval adds 3/4 answer to promoters and detractors
    # and 3 to n: p+ = 5.75/13, p- = 2.75/13, variance (p+ + p- - (p+ - p-)^2) / 13
    assert result.n == 10
    assert result.value == pytest.approx(30.0)
    assert (result.promoters, result.passives, result.detractors) == pytest.approx((50, 30, 20))
    promoters, detractors = 5.75 / 13, 2.75 / 13
    centre = promoters - detractors
    margin = 1.959964 * ((promoters + detractors - centre**2) / 13) ** 0.5
    assert result.low == pytest.approx(100 * (centre - margin), abs=1e-3)
    assert result.high == pytest.approx(100 * (centre + margin), abs=1e-3)
    assert (result.low, result.high) == pytest.approx((-19.05, 65.20), abs=0.01)


def test_nps_interval_on_an_ordinary_sample_matches_the_figure_by_hand() -> None:
    # given 100 answers: 50 promoters, 30 passives, 20 detractors (NPS 30)
    answers = [10] * 50 + [7] * 30 + [3] * 20
    # when
    result = arithmetic.nps(answers)
    # then the adjusted Wald interval is 14.05 to 44.20 (worked by hand:
    # p+ = 50.75/103, p- = 20.75/103), close to the plain normal 14.7 to 45.3 at this n
    assert result.value == pytest.approx(30.0)
    assert (result.low, result.high) == pytest.approx((14.05, 44.20), abs=0.01)


@pytest.mark.parametrize(
    ("answers", "low_below"),
    [([10, 10, 9], 0.0), ([10, 10], -20.0), ([3, 10], -70.0), ([0], -99.0), ([9], -40.0)],
)
def test_nps_interval_widens_for_a_few_answers_and_stays_on_the_scale(
    answers: list[int], low_below: float
) -> None:
    # when a handful of answers is scored
    result = arithmetic.nps(answers)
    # then the interval is wide (not the point the plain normal interval gave: 100 to 100 for
    # three promoters), inside -100..100, and reaches the score itself
    assert result.low is not None
    assert result.high is not None
    assert result.value is not None
    assert -100.0 <= result.low <= result.value <= result.high <= 100.0
    assert result.high - result.low > 50.0
    assert result.low < low_below


def test_csat_is_the_share_of_four_and_five_with_a_wilson_interval() -> None:
    # given 8 satisfied answers out of 10
    result = arithmetic.csat([5, 5, 4, 4, 4, 5, 4, 5, 3, 1])
    # then CSAT is 80% and the Wilson interval is about 49.0% to 94.3%
    assert result.value == pytest.approx(80.0)
    assert result.low == pytest.approx(49.02, abs=0.01)
    assert result.high == pytest.approx(94.33, abs=0.01)


def test_ces_is_the_mean_with_a_t_interval() -> None:
    # given five answers with mean 5 and sample variance 2.5
    result = arithmetic.ces([3, 4, 5, 6, 7])
    # then the interval is 5 +- t(0.975, 4) * sqrt(2.5 / 5), t = 2.776
    assert result.value == pytest.approx(5.0)
    assert result.low == pytest.approx(5 - 2.776445 * (0.5**0.5), abs=0.01)
    assert result.high == pytest.approx(5 + 2.776445 * (0.5**0.5), abs=0.01)


def test_ces_interval_stays_on_the_answer_scale() -> None:
    # given two far-apart answers, whose t interval would run from about -13 to 21
    result = arithmetic.ces([1, 7])
    # then it is shown as the whole scale, 1 to 7, not past it
    assert result.value == pytest.approx(4.0)
    assert (result.low, result.high) == (1, 7)


@pytest.mark.parametrize(
    ("_case", "df", "expected"),
    [
        ("one degree of freedom", 1, 12.7062),
        ("two", 2, 4.3027),
        ("ten", 10, 2.2281),
        ("thirty", 30, 2.0423),
    ],
)
def test_t_quantiles_match_the_tables(_case: str, df: int, expected: float) -> None:
    assert arithmetic.t_quantile(df) == pytest.approx(expected, abs=0.005)


def test_no_answers_have_no_score() -> None:
    for kind in arithmetic.KINDS:
        result = arithmetic.score(kind, [])
        assert (result.n, result.value, result.low, result.high) == (0, None, None, None)


def test_values_average_to_the_score() -> None:
    answers = [10, 9, 7, 3, 0]
    values = [arithmetic.value_of("nps", a) for a in answers]
    assert sum(values) / len(values) == pytest.approx(arithmetic.nps(answers).value)
    assert [arithmetic.value_of("csat", a) for a in (5, 4, 3)] == [100.0, 100.0, 0.0]


def test_difference_of_two_groups_uses_welch() -> None:
    # given two groups of values with different spreads
    a = [100.0, 100.0, 0.0, -100.0]
    b = [100.0, 100.0, 100.0, 100.0, 0.0, 100.0]
    # when
    result = arithmetic.difference(a, b)
    # then the effect is the difference of means and the interval contains it
    assert result.effect == pytest.approx(25.0 - 250 / 3)
    assert result.low is not None
    assert result.high is not None
    assert result.low < result.effect < result.high
    assert result.significant is False


def test_slope_recovers_a_straight_line() -> None:
    xs = [0.0, 1.0, 2.0, 3.0, 4.0]
    ys = [50.0, 40.0, 30.5, 19.5, 10.0]
    result = arithmetic.slope(xs, ys)
    assert result.per_unit == pytest.approx(-10.0, abs=0.1)
    assert result.low is not None
    assert result.high is not None
    assert result.low < -9
    assert result.high > -11
