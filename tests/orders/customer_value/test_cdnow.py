"""The CDNOW fit reproduces Fader, Hardie & Lee (2005) to two decimals, and beats the naive
forecast on the holdout weeks 40-78."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA

CDNOW = SHARED_DATA / "cdnow"

pytestmark = pytest.mark.skipif(
    not (CDNOW / "CDNOW_sample.txt").exists(),
    reason="needs ../shared/data/cdnow (CDNOW_sample.txt and the published summaries)",
)


def test_fit_reproduces_the_published_parameters_and_beats_the_naive_forecast() -> None:
    from bench import clv_eval

    # given the 2,357-customer sample, weeks 1-39, rebuilt from its transactions
    result = clv_eval.run(CDNOW)
    # then BG/NBD and Gamma-Gamma agree with the papers to two decimals
    for model, published in clv_eval.PUBLISHED.items():
        ours = result[model]
        assert isinstance(ours, dict)
        for key, value in published.items():
            tolerance = 0.05 if key == "ll" else 0.005
            assert ours[key] == pytest.approx(value, abs=tolerance), (model, key)
    details = result["_details"]
    assert isinstance(details, dict)
    assert (details["customers"], details["repeat_customers"]) == (2357, 946)
    # and the published summary file gives the same parameters
    cross = details["published_summary_fit"]
    for key in ("r", "alpha", "a", "b", "p", "q"):
        model = "bgnbd" if key in ("r", "alpha", "a", "b") else "gamma_gamma"
        assert cross[key] == pytest.approx(clv_eval.PUBLISHED[model][key], abs=0.006)
    # and the per-customer holdout forecast beats "the same rate as in calibration"
    assert isinstance(result["holdout_mae"], float)
    assert isinstance(result["naive_mae"], float)
    assert result["holdout_mae"] < result["naive_mae"]
