"""The Olist bench's moments-of-truth table, on a handful of reviews (no data needed): its
intervals stay within what a difference of the scale's values can be."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def test_few_reviews_give_intervals_within_the_scale(capsys) -> None:
    from bench import feedback_eval

    # given two late orders reviewed 1 and 5 stars and three on time reviewed 5, 5 and 4
    at = datetime(2017, 10, 1, tzinfo=UTC)
    scores = {"late-1": 1, "late-2": 5, "ok-1": 5, "ok-2": 5, "ok-3": 4}
    reviews = [
        feedback_eval.OlistReview(f"r-{order}", order, score, "", "", at)
        for order, score in scores.items()
    ]
    signals = {
        order: {"days_late": 4 if order.startswith("late") else 0, "first_purchase": True}
        for order in scores
    }
    # when the bench measures the moments of truth (Welch's interval on two answers is wide)
    headline = feedback_eval.moments_report(reviews, signals)
    printed = capsys.readouterr().out
    # then every interval it prints lies within the differences the scale allows:
    # -100 to +100 points of satisfied share, -4 to +4 stars
    rows = re.findall(r"^\| (.+?) vs .*\| ([-+\d.]+) to ([-+\d.]+) \|", printed, re.MULTILINE)
    assert len(rows) == 4  # late, late by 3-5 days; in both measures
    for _, low, high in rows:
        assert -100 <= float(low) <= float(high) <= 100
    stars = [(float(low), float(high)) for _, low, high in rows[2:]]
    assert stars == [(-4.0, 4.0), (-4.0, 4.0)]
    assert headline["late_minus_on_time_stars_interval"] == [-4.0, 4.0]
    # and the table says so
    assert "clipped to the differences the scale allows (-4 to +4)" in printed
