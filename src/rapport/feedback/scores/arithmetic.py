"""Score arithmetic: NPS, CSAT and CES with confidence intervals, and differences between
two groups of answers (the moments of truth).

Every answer is first turned into a *value* whose mean is the score: an NPS answer is +100
(promoter, 9-10), 0 (passive, 7-8) or -100 (detractor, 0-6), so the mean of the values is
%promoters - %detractors; a CSAT answer is 100 when it is 4 or 5 and 0 otherwise, so the mean
is the share of satisfied answers; a CES answer is its own value (1-7). Intervals:

* NPS: adjusted Wald interval for the difference of the promoter and detractor shares (Rocks,
  "Interval estimation for the net promoter score", The American Statistician 70(4), 2016):
  add 3/4 of an answer to the promoters and to the detractors and 3 to ``n`` (an Agresti-Caffo
  style correction), then use the normal interval with variance
  ``(p+ + p- - (p+ - p-)^2) / n``. Unlike the plain normal interval, which collapses to a point
  for two or three answers all alike, it widens for few answers; it is clipped to -100..100
  and always reaches the score itself;
  the score itself stays the plain %promoters - %detractors;
* CSAT: Wilson score interval for a proportion (sound for small samples and extreme shares);
* CES: Student's t interval for a mean.

Differences between two groups use Welch's interval (unequal variances), which for NPS values
is the usual interval for a difference of two NPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

KINDS = ("nps", "csat", "ces")
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
CONFIDENCE = 0.95


def z_quantile(confidence: float = CONFIDENCE) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def t_quantile(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student's t quantile, by the Cornish-Fisher expansion around the normal
    quantile (Abramowitz & Stegun 26.7.5): within 0.004 of the exact value from 3 degrees
    of freedom up (closed forms below 3), exact enough for reporting intervals."""
    if df <= 0:
        return math.inf
    p = 0.5 + confidence / 2
    if df < 1.5:
        return math.tan(math.pi * (p - 0.5))
    if df < 2.5:
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    z = z_quantile(confidence)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def value_of(kind: str, score: int) -> float:
    """The per-answer value whose mean is the score (see the module docstring)."""
    if kind == "nps":
        return 100.0 if score >= 9 else (-100.0 if score <= 6 else 0.0)
    if kind == "csat":
        return 100.0 if score >= 4 else 0.0
    return float(score)


def unhappy(kind: str, score: int) -> bool:
    """An unhappy answer, the one that opens a ticket: NPS 0-6 (a detractor), CSAT 1-2,
    CES 1-2 (very hard). Its share is comparable across kinds, where their values are not."""
    if kind == "nps":
        return score <= 6
    return score <= 2


def score_range(kind: str) -> tuple[float, float]:
    """The lowest and highest score a kind can reach: the values of the ends of its answer
    scale (NPS -100 to 100, CSAT 0 to 100, CES 1 to 7)."""
    low, high = SCALES[kind]
    return value_of(kind, low), value_of(kind, high)


def check_score(kind: str, score: int) -> bool:
    low, high = SCALES[kind]
    return low <= score <= high


@dataclass(frozen=True, slots=True)
class Score:
    """A score over ``n`` answers with its 95% interval (``None`` without answers)."""

    kind: str
    n: int
    value: float | None
    low: float | None
    high: float | None
    # NPS only: the three shares, in percent.
    promoters: float | None = None
    passives: float | None = None
    detractors: float | None = None

    @property
    def margin(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


NPS_ADJUSTMENT = 0.75
"""Answers added to the promoters and to the detractors (and twice that to the passives, so 3
to ``n``) for the interval only: the adjusted Wald interval for NPS (see the module docstring)."""


def nps(scores: Sequence[int], confidence: float = CONFIDENCE) -> Score:
    n = len(scores)
    if n == 0:
        return Score("nps", 0, None, None, None)
    promoting = sum(1 for s in scores if s >= 9)
    detracting = sum(1 for s in scores if s <= 6)
    promoters, detractors = promoting / n, detracting / n
    adjusted_n = n + 4 * NPS_ADJUSTMENT
    adjusted_promoters = (promoting + NPS_ADJUSTMENT) / adjusted_n
    adjusted_detractors = (detracting + NPS_ADJUSTMENT) / adjusted_n
    centre = adjusted_promoters - adjusted_detractors
    variance = (adjusted_promoters + adjusted_detractors - centre**2) / adjusted_n
    margin = z_quantile(confidence) * math.sqrt(max(variance, 0.0))
    value = promoters - detractors
    # The adjusted centre leans towards 0, so a single answer's interval could leave out the
    # score itself (one detractor: -98.5 to 48.5): it always reaches the score.
    return Score(
        "nps",
        n,
        100 * value,
        100 * max(min(centre - margin, value), -1.0),
        100 * min(max(centre + margin, value), 1.0),
        promoters=100 * promoters,
        passives=100 * (1 - promoters - detractors),
        detractors=100 * detractors,
    )


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion, as fractions."""
    if n == 0:
        return 0.0, 1.0
    z = z_quantile(confidence)
    p = successes / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    spread = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return max(centre - spread, 0.0), min(centre + spread, 1.0)


def csat(scores: Sequence[int], confidence: float = CONFIDENCE) -> Score:
    n = len(scores)
    if n == 0:
        return Score("csat", 0, None, None, None)
    satisfied = sum(1 for s in scores if s >= 4)
    low, high = wilson(satisfied, n, confidence)
    return Score("csat", n, 100 * satisfied / n, 100 * low, 100 * high)


def ces(scores: Sequence[int], confidence: float = CONFIDENCE) -> Score:
    n = len(scores)
    if n == 0:
        return Score("ces", 0, None, None, None)
    mean = sum(scores) / n
    if n == 1:
        return Score("ces", 1, mean, None, None)
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1)
    margin = t_quantile(n - 1, confidence) * math.sqrt(variance / n)
    # A few answers give a wide interval; it cannot reach past the answer scale itself.
    lowest, highest = SCALES["ces"]
    return Score("ces", n, mean, max(mean - margin, lowest), min(mean + margin, highest))


def score(kind: str, scores: Sequence[int], confidence: float = CONFIDENCE) -> Score:
    """The score of ``kind`` over these answers."""
    if kind == "nps":
        return nps(scores, confidence)
    if kind == "csat":
        return csat(scores, confidence)
    if kind == "ces":
        return ces(scores, confidence)
    raise ValueError(f"unknown survey kind {kind!r}")


@dataclass(frozen=True, slots=True)
class Difference:
    """How much group ``a``'s score exceeds group ``b``'s, with Welch's 95% interval."""

    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    effect: float | None
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, variance


def difference(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = CONFIDENCE,
    value_range: tuple[float, float] | None = None,
) -> Difference:
    """Mean of ``a`` minus mean of ``b`` (values, see :func:`value_of`) with Welch's interval.
    With the ``value_range`` values can take (:func:`score_range`), the interval is clipped to
    the differences possible, from lowest minus highest to highest minus lowest: a few answers
    give a wide interval, which cannot reach past the scale (NPS -200 to 200 points, CSAT -100
    to 100, CES -6 to 6)."""
    if not a or not b:
        mean_a = sum(a) / len(a) if a else None
        mean_b = sum(b) / len(b) if b else None
        return Difference(len(a), len(b), mean_a, mean_b, None, None, None)
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    effect = mean_a - mean_b
    if len(a) < 2 or len(b) < 2:
        return Difference(len(a), len(b), mean_a, mean_b, effect, None, None)
    se_a, se_b = var_a / len(a), var_b / len(b)
    standard_error = math.sqrt(se_a + se_b)
    if standard_error == 0:
        return Difference(len(a), len(b), mean_a, mean_b, effect, effect, effect)
    # Welch-Satterthwaite degrees of freedom.
    df = (se_a + se_b) ** 2 / (se_a**2 / (len(a) - 1) + se_b**2 / (len(b) - 1))
    margin = t_quantile(df, confidence) * standard_error
    low, high = effect - margin, effect + margin
    if value_range is not None:
        widest = value_range[1] - value_range[0]
        low, high = max(low, -widest), min(high, widest)
    return Difference(len(a), len(b), mean_a, mean_b, effect, low, high)


@dataclass(frozen=True, slots=True)
class Slope:
    """Least-squares change of the value per unit of a signal, with a 95% interval."""

    n: int
    per_unit: float | None
    low: float | None
    high: float | None


def slope(xs: Sequence[float], ys: Sequence[float], confidence: float = CONFIDENCE) -> Slope:
    """Simple linear regression of ``ys`` on ``xs``: the slope and its t interval."""
    n = len(xs)
    if n < 3:
        return Slope(n, None, None, None)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return Slope(n, None, None, None)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    beta = sxy / sxx
    alpha = mean_y - beta * mean_x
    residual = sum((y - alpha - beta * x) ** 2 for x, y in zip(xs, ys, strict=True))
    standard_error = math.sqrt(residual / (n - 2) / sxx)
    margin = t_quantile(n - 2, confidence) * standard_error
    return Slope(n, beta, beta - margin, beta + margin)
