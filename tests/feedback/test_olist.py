"""The moments-of-truth and screening evaluation on the real Olist reviews, when present."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA

OLIST = SHARED_DATA / "olist"

pytestmark = pytest.mark.skipif(
    not (OLIST / "reviews-sample").exists() or not (OLIST / "subset-2017-10k").exists(),
    reason="needs ../shared/data/olist (reviews-sample and subset-2017-10k)",
)


def test_late_deliveries_lower_olist_review_scores(capsys) -> None:
    from bench import feedback_eval

    # given the real reviews joined to their orders' delivery dates
    reviews = feedback_eval.load_reviews(OLIST)
    signals, owner = feedback_eval.order_signals(OLIST)
    # when the moments of truth and the screening are measured
    moments = feedback_eval.moments_report(reviews, signals)
    screened = feedback_eval.screening_report(reviews, owner)
    capsys.readouterr()
    # then a late delivery costs about 1.76 stars, clearly below zero
    assert (len(reviews), moments["joined"], moments["late"]) == (6123, 593, 35)
    assert moments["late_minus_on_time_stars"] == -1.76
    assert moments["late_minus_on_time_stars_interval"] == [-2.37, -1.14]
    # and screening holds a small, known share of the real reviews
    assert (screened["near_duplicate"], screened["rating_text_mismatch"]) == (11, 4)
    assert screened["held"] == 15
