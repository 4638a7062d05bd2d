"""Model selection at training: boosted trees, a logistic regression or their average (the
blend), whichever has the highest PR AUC on a validation window carved from the end of the
training period; the choice and every candidate's figures are kept in the saved model."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from rapport.orders.return_risk import (
    Basket,
    BasketLine,
    BoostingParams,
    LabelledBasket,
    ReturnHistory,
    ReturnRiskModel,
)

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
TREES = (BoostingParams(0.1, 60, 7, 20, 1.0),)
# Fewer rows than one leaf may hold: these trees cannot split, so they predict the base rate.
STUMPS = (BoostingParams(0.1, 5, 2, 100_000, 1.0),)


def xor_world(count: int = 1600, seed: int = 5) -> list[LabelledBasket]:
    """Returned when the basket is large *or* dear, but not both: no straight line splits it."""
    rng = random.Random(seed)
    found = []
    for number in range(count):
        large, dear = rng.random() < 0.5, rng.random() < 0.5
        lines = tuple(
            BasketLine(f"SKU-{rng.randrange(500)}", "home", 1, 9000 if dear else 500)
            for _ in range(4 if large else 1)
        )
        returned = (large != dear) if rng.random() < 0.95 else (large == dear)
        placed = START + timedelta(hours=5 * number)
        found.append(LabelledBasket(Basket(f"B{number}", f"C{number}", placed, lines), returned))
    return found


def value_world(count: int = 1200, seed: int = 9) -> list[LabelledBasket]:
    """The dearer the basket, the likelier it comes back."""
    rng = random.Random(seed)
    found = []
    for number in range(count):
        price = rng.randint(100, 20_000)
        chance = 0.05 + 0.6 * price / 20_000
        line = BasketLine(f"SKU-{rng.randrange(300)}", "home", 1, price)
        placed = START + timedelta(hours=6 * number)
        found.append(
            LabelledBasket(
                Basket(f"B{number}", f"C{number}", placed, (line,)), rng.random() < chance
            )
        )
    return found


def test_trees_win_where_the_signal_is_an_interaction() -> None:
    # given baskets returned when large xor dear
    labelled = xor_world()

    # when the model is fitted with trees and the regression as candidates
    model = ReturnRiskModel(
        grid=TREES, calibration_folds=3, candidates=["boosted_trees", "logistic_regression"]
    ).fit(labelled, seed=1)

    # then the trees win clearly on the validation window, and that is what is served
    report = model.report
    assert report is not None
    assert set(report.candidate_pr_auc) == {"boosted_trees", "logistic_regression"}
    assert report.candidate_pr_auc["boosted_trees"] > 0.8
    assert (
        report.candidate_pr_auc["boosted_trees"]
        > report.candidate_pr_auc["logistic_regression"] + 0.2
    )
    assert model.kind == report.model_chosen == "boosted_trees"
    assert model.kind_label == "boosted trees"
    # and the validation window is the last fifth of the period, by time
    assert report.validation_rows == 320
    assert report.validation_start is not None
    cut = datetime.fromisoformat(report.validation_start)
    assert START + timedelta(hours=5 * 1279) < cut <= START + timedelta(hours=5 * 1280)


def test_the_regression_wins_against_trees_that_cannot_split(tmp_path: Path) -> None:
    # given a smooth signal, and trees that may not split
    labelled = value_world()

    # when the model is fitted
    model = ReturnRiskModel(grid=STUMPS, calibration_folds=3).fit(labelled, seed=1)

    # then the logistic regression is chosen, with every candidate's validation figures kept
    report = model.report
    assert report is not None
    assert model.kind == report.model_chosen == "logistic_regression"
    assert (
        report.candidate_pr_auc["logistic_regression"]
        > report.candidate_pr_auc["boosted_trees"] + 0.1
    )
    # trees that cannot split add a constant, so the blend ranks exactly as the regression,
    # and the tie goes to the earlier candidate
    assert report.candidate_pr_auc["logistic_regression"] == report.candidate_pr_auc["blend"]
    assert set(report.candidate_brier) == {"boosted_trees", "logistic_regression", "blend"}
    # and it ranks dear baskets above cheap ones
    history = ReturnHistory()
    cheap, dear = (
        Basket(name, "new", START + timedelta(days=400), (BasketLine("SKU-1", "home", 1, price),))
        for name, price in (("cheap", 200), ("dear", 19_000))
    )
    assert model.predict_proba(dear, history) > model.predict_proba(cheap, history) + 0.2

    # and saving and loading keeps the kind, the report and every probability
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = ReturnRiskModel.load(path)
    assert loaded.kind == "logistic_regression"
    assert loaded.report == report
    rows = ReturnHistory.stream(labelled)[-200:]
    np.testing.assert_array_equal(loaded.predict_features(rows), model.predict_features(rows))
    assert loaded.explain_features(rows[-1]) == model.explain_features(rows[-1])


def test_candidates_can_be_limited() -> None:
    model = ReturnRiskModel(
        grid=TREES, calibration_folds=3, candidates=["logistic_regression"]
    ).fit(xor_world(600), seed=1)

    assert model.kind == "logistic_regression"
    assert model.report is not None
    assert list(model.report.candidate_pr_auc) == ["logistic_regression"]
    with pytest.raises(ValueError, match="candidates"):
        ReturnRiskModel(candidates=["random_forest"])


def test_the_blend_averages_the_two_calibrated_models(tmp_path: Path) -> None:
    # given baskets with a smooth signal, and each model alone, fitted the same way
    labelled = value_world()
    alone = {
        kind: ReturnRiskModel(grid=TREES, calibration_folds=3, candidates=[kind]).fit(
            labelled, seed=1
        )
        for kind in ("boosted_trees", "logistic_regression", "blend")
    }
    blend = alone["blend"]
    rows = ReturnHistory.stream(labelled)[-200:]

    # then the blend's probability is the mean of the other two, basket by basket
    trees = alone["boosted_trees"].predict_features(rows)
    linear = alone["logistic_regression"].predict_features(rows)
    np.testing.assert_allclose(blend.predict_features(rows), (trees + linear) / 2, rtol=1e-12)
    assert blend.kind_label == "boosted trees and logistic regression, averaged"

    # and saving and loading keeps both models, the report and every probability and reason
    path = tmp_path / "blend.npz"
    blend.save(path)
    loaded = ReturnRiskModel.load(path)
    assert loaded.kind == "blend"
    assert loaded.report == blend.report
    np.testing.assert_array_equal(loaded.predict_features(rows), blend.predict_features(rows))
    assert loaded.explain_features(rows[-1]) == blend.explain_features(rows[-1])


def test_the_blend_is_judged_on_the_validation_window_like_the_others() -> None:
    # given a fit with all three candidates
    model = ReturnRiskModel(grid=TREES, calibration_folds=3).fit(value_world(), seed=1)
    report = model.report
    assert report is not None

    # then the report holds the blend's figures beside the others', and the best is served
    assert list(report.candidate_pr_auc) == ["boosted_trees", "logistic_regression", "blend"]
    assert report.model_chosen == max(report.candidate_pr_auc, key=report.candidate_pr_auc.get)
    # and the blend's Brier score lies within the other two's (a mean of two probabilities)
    briers = report.candidate_brier
    assert briers["blend"] <= max(briers["boosted_trees"], briers["logistic_regression"])
