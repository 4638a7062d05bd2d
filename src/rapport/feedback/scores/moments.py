"""Moments of truth: how much each experience signal moves the score.

Every answer carries the signals known when it was asked (``days_late`` of the delivery,
``first_purchase``, ``pickup_wait_minutes``, ``resolution_hours`` of a ticket). For each
signal we compare the answers where it happened with those where it did not, as a difference
of mean values (NPS points, CSAT points or CES points, see :mod:`arithmetic`) with Welch's 95%
interval (clipped to the differences the scale allows), and for the continuous ones fit the
change per unit (per day late, per ten minutes of waiting, per day to resolve). These are
observed associations, not experiments: a late parcel may also be a bulky one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapport.feedback.scores.arithmetic import Difference, Slope, difference, slope

Signals = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Observation:
    value: float
    signals: Signals


@dataclass(frozen=True, slots=True)
class Moment:
    signal: str
    label: str  # what happened, e.g. "Delivered 3-5 days late"
    baseline: str  # what it is compared with, e.g. "on time"
    difference: Difference
    slope: Slope | None = None
    unit: str | None = None  # of the slope, e.g. "per day late"


def _number(signals: Signals, name: str) -> float | None:
    value = signals.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _split(
    observations: Sequence[Observation], test: Callable[[Signals], bool | None]
) -> tuple[list[float], list[float]]:
    happened: list[float] = []
    baseline: list[float] = []
    for observation in observations:
        verdict = test(observation.signals)
        if verdict is None:
            continue
        (happened if verdict else baseline).append(observation.value)
    return happened, baseline


def _late_between(low: float, high: float) -> Callable[[Signals], bool | None]:
    def test(signals: Signals) -> bool | None:
        days = _number(signals, "days_late")
        if days is None:
            return None
        if days <= 0:
            return False
        return True if low <= days <= high else None

    return test


def _over(name: str, threshold: float) -> Callable[[Signals], bool | None]:
    def test(signals: Signals) -> bool | None:
        amount = _number(signals, name)
        return None if amount is None else amount > threshold

    return test


def _first(signals: Signals) -> bool | None:
    value = signals.get("first_purchase")
    return value if isinstance(value, bool) else None


def _slope(observations: Sequence[Observation], name: str, scale: float, cap: float) -> Slope:
    xs, ys = [], []
    for observation in observations:
        amount = _number(observation.signals, name)
        if amount is None:
            continue
        xs.append(min(max(amount, 0.0), cap) / scale)
        ys.append(observation.value)
    return slope(xs, ys)


def moments_of_truth(
    observations: Sequence[Observation], value_range: tuple[float, float] | None = None
) -> list[Moment]:
    """Every moment with at least one answer on each side, in a fixed order; ``value_range``
    is what an answer's value can be (:func:`arithmetic.score_range`), which bounds the
    intervals."""
    found: list[Moment] = []

    def add(
        signal: str,
        label: str,
        baseline: str,
        test: Callable[[Signals], bool | None],
        fitted: Slope | None = None,
        unit: str | None = None,
    ) -> None:
        happened, rest = _split(observations, test)
        if happened and rest:
            compared = difference(happened, rest, value_range=value_range)
            found.append(Moment(signal, label, baseline, compared, fitted, unit))

    add(
        "days_late",
        "Delivered late",
        "on time or early",
        _late_between(1, float("inf")),
        _slope(observations, "days_late", 1, 14),
        "per day late (up to 14)",
    )
    add("days_late", "Late by 1-2 days", "on time or early", _late_between(1, 2))
    add("days_late", "Late by 3-5 days", "on time or early", _late_between(3, 5))
    add("days_late", "Late by 6 days or more", "on time or early", _late_between(6, 10_000))
    add("first_purchase", "First purchase", "repeat purchase", _first)
    add(
        "pickup_wait_minutes",
        "Pick-up wait over 10 minutes",
        "10 minutes or less",
        _over("pickup_wait_minutes", 10),
        _slope(observations, "pickup_wait_minutes", 10, 60),
        "per 10 minutes of waiting (up to an hour)",
    )
    add(
        "resolution_hours",
        "Ticket resolved after 24 hours",
        "resolved within 24 hours",
        _over("resolution_hours", 24),
        _slope(observations, "resolution_hours", 24, 14 * 24),
        "per day to resolve (up to 14)",
    )
    return found
