"""Return risk: leak-free history features, the label window, the baseline, the calibrated
model (determinism, quality on synthetic truth, save/load, reasons) and the incentive policy."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from rapport.orders.return_risk import (
    Basket,
    BasketLine,
    BoostingParams,
    HistoryBaseline,
    LabelledBasket,
    Offer,
    ReturnHistory,
    ReturnRiskModel,
    suggest_incentive,
)
from rapport.orders.return_risk.model import _Forest
from rapport.orders.return_risk.reasons import reason_for, round_down

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
SPLIT = START + timedelta(days=240)
HOUR = timedelta(hours=1)
FAST_GRID = (BoostingParams(0.1, 60, 7, 20, 1.0),)


def basket(
    basket_id: str,
    customer: str,
    day: float,
    *lines: tuple[str, str, int, int],
) -> Basket:
    found = lines or (("MUG-1", "mugs", 1, 800),)
    return Basket(
        basket_id=basket_id,
        customer_id=customer,
        placed_at=START + timedelta(days=day),
        lines=tuple(
            BasketLine(sku, category, quantity, price) for sku, category, quantity, price in found
        ),
    )


def synthetic(customers: int = 160, seed: int = 7) -> tuple[list[LabelledBasket], set[str]]:
    """Every fifth customer returns most orders; apparel comes back more for everyone."""
    rng = random.Random(seed)
    labelled: list[LabelledBasket] = []
    heavy: set[str] = set()
    for number in range(customers):
        customer = f"C{number:03d}"
        latent = 0.75 if number % 5 == 0 else 0.05
        if latent > 0.5:
            heavy.add(customer)
        days = sorted(rng.uniform(0, 360) for _ in range(rng.randint(8, 14)))
        for order, day in enumerate(days):
            apparel = rng.random() < 0.3
            lines = [
                (f"HOME-{rng.randrange(40)}", "home", rng.randint(1, 3), rng.randint(300, 3000))
            ]
            if apparel:
                lines.append((f"SHIRT-{rng.randrange(20)}", "apparel", 1, rng.randint(1500, 6000)))
            chance = min(0.95, latent + (0.2 if apparel else 0.0))
            returned = rng.random() < chance
            labelled.append(
                LabelledBasket(basket(f"{customer}-{order}", customer, day, *lines), returned)
            )
    return labelled, heavy


@pytest.fixture(scope="module")
def world() -> tuple[list[LabelledBasket], set[str]]:
    return synthetic()


@pytest.fixture(scope="module")
def fitted(world) -> ReturnRiskModel:
    labelled, _ = world
    train = [item for item in labelled if item.basket.placed_at < SPLIT]
    return ReturnRiskModel(grid=FAST_GRID, calibration_folds=3).fit(train, seed=3)


def test_features_never_use_later_baskets_or_their_labels(world) -> None:
    # given the first 200 days of baskets, and the same plus every later basket relabelled
    labelled, _ = world
    cut = START + timedelta(days=200)
    early = [item for item in labelled if item.basket.placed_at < cut]
    later = [
        replace(item, returned=not item.returned)
        for item in labelled
        if item.basket.placed_at >= cut
    ]

    # when features are streamed over both
    alone = ReturnHistory.stream(early)
    together = ReturnHistory.stream([*later, *early])[len(later) :]

    # then every early basket's features are identical
    assert len(alone) == len(early) == 1003
    assert together == alone


def test_a_label_counts_only_once_its_window_has_closed() -> None:
    # given a returned basket on day 0, then baskets on day 29 and day 30
    history = ReturnHistory()
    history.record(LabelledBasket(basket("B1", "ann", 0), returned=True))

    # when the day-29 basket is described
    day_29 = history.features(basket("B2", "ann", 29))
    history.record(LabelledBasket(basket("B2", "ann", 29), returned=False))
    # and the day-30 basket, whose previous basket's window closed exactly now
    day_30 = history.features(basket("B3", "ann", 30))

    # then the day-29 basket knows the earlier order but not its outcome
    assert (day_29.prior_baskets, day_29.closed_baskets, day_29.returned_baskets) == (1, 0, 0)
    assert day_29.sku_known_share == 0.0
    assert day_29.customer_return_rate == pytest.approx(0.1)
    # and the day-30 basket sees B1's return, smoothed toward the overall rate 2/11
    assert (day_30.prior_baskets, day_30.closed_baskets, day_30.returned_baskets) == (2, 1, 1)
    assert day_30.overall_rate == pytest.approx(2 / 11)
    # (half a pseudo-basket of prior: (1 + 0.5 * 2/11) / (1 + 0.5) = (12/11) / 1.5 = 8/11)
    assert day_30.customer_return_rate == pytest.approx(8 / 11)
    assert day_30.sku_known_share == 1.0
    assert day_30.days_since_previous == pytest.approx(1.0)
    assert day_30.baskets_last_30_days == 1


def test_history_refuses_to_go_back_in_time() -> None:
    # given a history that has seen day 10
    history = ReturnHistory()
    history.features(basket("B1", "ann", 10))

    # when / then an earlier basket is refused
    with pytest.raises(ValueError, match="time order"):
        history.features(basket("B0", "ann", 9))


def test_baseline_smooths_toward_the_overall_rate() -> None:
    # given four closed training baskets, one returned (overall rate 1/4), and k = 2
    training = [
        LabelledBasket(basket("X1", "xia", 0), returned=True),
        LabelledBasket(basket("X2", "xia", 10), returned=False),
        LabelledBasket(basket("Z1", "zoe", 0), returned=False),
        LabelledBasket(basket("Z2", "zoe", 5), returned=False),
    ]
    baseline = HistoryBaseline(prior_strength=2.0).fit(training)
    history = ReturnHistory()
    for item in sorted(training, key=lambda item: item.basket.placed_at):
        history.record(item)

    # when three customers are scored on day 45, after every window has closed
    xia = baseline.predict_proba(basket("X3", "xia", 45), history)
    zoe = baseline.predict_proba(basket("Z3", "zoe", 45), history)
    new = baseline.predict_proba(basket("N1", "new", 45), history)

    # then each is (returned + k * 1/4) / (closed + k), and a new customer gets exactly 1/4
    assert baseline.rate == 0.25
    assert xia == pytest.approx((1 + 0.5) / (2 + 2))
    assert zoe == pytest.approx((0 + 0.5) / (2 + 2))
    assert new == 0.25


def test_the_same_seed_gives_the_same_probabilities(world) -> None:
    # given a small training set
    labelled, _ = world
    train = [item for item in labelled if item.basket.placed_at < START + timedelta(days=150)]
    test = [item.basket for item in labelled if item.basket.placed_at >= SPLIT]

    # when the model is fitted twice with one seed
    scores = []
    for _ in range(2):
        model = ReturnRiskModel(grid=FAST_GRID, calibration_folds=3).fit(train, seed=11)
        history = model.new_history()
        for item in sorted(train, key=lambda item: item.basket.placed_at):
            history.record(item)
        scores.append(model.predict_proba_batch(test, history))

    # then both runs give exactly the same probabilities
    assert len(scores[0]) == len(test)
    assert scores[0] == scores[1]


def test_model_ranks_and_calibrates_on_synthetic_truth(world, fitted) -> None:
    # given features for every basket, streamed in time order
    labelled, heavy = world
    rows = ReturnHistory.stream(labelled)
    test = [i for i, item in enumerate(labelled) if item.basket.placed_at >= SPLIT]
    labels = np.array([labelled[i].returned for i in test], dtype=np.float64)

    # when the model scores the later third of the year
    scores = fitted.predict_features([rows[i] for i in test])

    # then it ranks well, separates heavy returners and is calibrated on average
    is_heavy = np.array([labelled[i].basket.customer_id in heavy for i in test])
    assert roc_auc_score(labels, scores) > 0.75
    assert scores[is_heavy].mean() > 3 * scores[~is_heavy].mean()
    assert abs(scores.mean() - labels.mean()) < 0.04
    assert fitted.report is not None
    assert fitted.report.calibration in {"isotonic", "sigmoid"}


def test_flattened_trees_match_scikit_learn() -> None:
    # given a fitted boosted model on data with missing values
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, 3))
    features[rng.random(size=400) < 0.2, 1] = np.nan
    labels = (features[:, 0] + np.nan_to_num(features[:, 1], nan=1.0) > 0.5).astype(int)
    with threadpool_limits(limits=1, user_api="openmp"):
        estimator = HistGradientBoostingClassifier(max_iter=30, early_stopping=False).fit(
            features, labels
        )

    # when the trees are flattened and scored with numpy
    raw = _Forest.from_sklearn(estimator).raw(features)

    # then the log-odds equal scikit-learn's
    np.testing.assert_array_equal(raw, estimator.decision_function(features))


def test_save_then_load_gives_identical_predictions(world, fitted, tmp_path: Path) -> None:
    # given a fitted model and rows to score
    labelled, _ = world
    rows = ReturnHistory.stream(labelled)[-50:]
    path = tmp_path / "return-risk.npz"

    # when it is saved and loaded
    fitted.save(path)
    loaded = ReturnRiskModel.load(path)

    # then predictions, reasons and the fit report are unchanged
    np.testing.assert_array_equal(loaded.predict_features(rows), fitted.predict_features(rows))
    assert [loaded.explain_features(row) for row in rows] == [
        fitted.explain_features(row) for row in rows
    ]
    assert loaded.report == fitted.report
    assert loaded.history_config == fitted.history_config


def test_load_refuses_other_files(tmp_path: Path) -> None:
    # given an npz that Rapport did not write
    path = tmp_path / "other.npz"
    np.savez(path, header=np.array('{"format": "something-else", "version": 1}'))

    # when / then loading it is refused
    with pytest.raises(ValueError, match=r"not a rapport\.return_risk v3 file"):
        ReturnRiskModel.load(path)


def test_explain_names_a_serial_returner_first(world, fitted) -> None:
    # given the training history plus a customer who returned all six past orders
    labelled, _ = world
    history = fitted.new_history()
    past = [item for item in labelled if item.basket.placed_at < SPLIT]
    past += [
        LabelledBasket(basket(f"R{day}", "returner", day, ("HOME-1", "home", 1, 900)), True)
        for day in (10, 40, 70, 100, 130, 160)
    ]
    for item in sorted(past, key=lambda item: item.basket.placed_at):
        history.record(item)
    risky = basket("R-next", "returner", 245, ("HOME-2", "home", 1, 900))

    # when the new basket is explained
    reasons = fitted.explain(risky, history)
    probability = fitted.predict_proba(risky, history)

    # then the customer's record is the first reason, and the risk is high
    assert reasons[0] == "6 past orders with their 30 days closed, 6 returned"
    assert len(reasons) <= 3
    assert probability > 0.5


def test_a_basket_below_the_shops_rate_is_called_low_risk_not_raised(world, fitted) -> None:
    # given the training history plus a customer who kept all six past orders
    labelled, _ = world
    history = fitted.new_history()
    past = [item for item in labelled if item.basket.placed_at < SPLIT]
    past += [
        LabelledBasket(basket(f"K{day}", "keeper", day, ("HOME-1", "home", 1, 900)), False)
        for day in (10, 40, 70, 100, 130, 160)
    ]
    for item in sorted(past, key=lambda item: item.basket.placed_at):
        history.record(item)
    safe = basket("K-next", "keeper", 245, ("HOME-2", "home", 1, 900))
    shop_rate = sum(item.returned for item in past) / len(past)
    probability = fitted.predict_proba(safe, history)
    assert probability < shop_rate

    # when the basket is explained against the shop's rate
    reasons = fitted.explain(safe, history, base_rate=shop_rate)

    # then it is said to be low risk, with both figures, and every other reason says it keeps
    # the risk low: none reads as raising it
    assert reasons[0] == f"low risk: {probability:.1%} against the shop's {shop_rate:.1%}"
    assert 2 <= len(reasons) <= 3
    assert all(reason.startswith("keeps it low: ") for reason in reasons[1:])
    assert "keeps it low: 6 past orders with their 30 days closed, none returned" in reasons
    # and a basket above the rate is still explained by what raises it
    assert fitted.explain(safe, history, base_rate=probability / 2) == fitted.explain(safe, history)


def test_the_customer_reason_never_calls_open_or_returned_orders_kept() -> None:
    # given a customer with one order whose 30 days have closed, kept, then three orders
    # today whose every unit came back within the hour
    history = ReturnHistory()
    history.record(LabelledBasket(basket("K1", "cleo", 0), False))
    for number in range(3):
        placed = basket(f"R{number}", "cleo", 100 + number / 100, ("SHIRT-1", "apparel", 3, 2500))
        history.record(LabelledBasket(placed, True, returned_at=placed.placed_at + HOUR))

    # when her next basket is described
    row = history.features(basket("N1", "cleo", 101))

    # then the reason counts the closed order and the returns already made, and says "kept"
    # of nothing
    assert reason_for("customer", row) == (
        "1 past order with its 30 days closed, none returned; 3 returned recently"
    )


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ((), "2 past orders, all within their 30 days, none returned yet"),
        ((0,), "2 past orders, all within their 30 days; 1 returned already"),
    ],
)
def test_orders_all_within_their_30_days_are_not_judged(
    returns: tuple[int, ...], expected: str
) -> None:
    history = ReturnHistory()
    for number in range(2):
        placed = basket(f"O{number}", "dan", number)
        came_back = number in returns
        history.record(
            LabelledBasket(
                placed, came_back, returned_at=placed.placed_at + HOUR if came_back else None
            )
        )
    assert reason_for("customer", history.features(basket("N", "dan", 3))) == expected


def test_closed_orders_and_those_still_open_are_told_apart() -> None:
    history = ReturnHistory()
    history.record(LabelledBasket(basket("O1", "eve", 0), True))
    history.record(LabelledBasket(basket("O2", "eve", 1), False))
    history.record(LabelledBasket(basket("O3", "eve", 50), False))
    row = history.features(basket("N", "eve", 60))
    assert reason_for("customer", row) == (
        "2 past orders with their 30 days closed, 1 returned; 1 more within their 30 days"
    )


def test_money_reasons_use_the_currencys_decimals() -> None:
    # given a shop selling in EUR, where a customer's past orders were 8.00 EUR mugs
    history = ReturnHistory()
    history.record(LabelledBasket(basket("B1", "ann", 0), False))
    history.record(LabelledBasket(basket("B2", "ann", 5), False))

    # when the same numbers come in KRW, in EUR, and in JPY
    def described(currency: str, price: int) -> list[str]:
        row = history.features(
            replace(basket("N", "ann", 10, ("MUG-1", "mugs", 1, price)), currency=currency)
        )
        return [reason_for(group, row) for group in ("price", "value", "discount")]

    # then KRW 15,000 is 15,000 KRW, not set against EUR amounts, and EUR 15000 is 150.00
    assert described("KRW", 15000) == [
        "unit prices up to 15,000 KRW (not compared with prices in EUR)",
        "basket over 10,000 KRW (not compared with amounts in EUR)",
        "products never sold in KRW before",
    ]
    assert described("EUR", 15000) == [
        "unit prices up to 150.00 EUR",
        "basket over 100 EUR (18.8x their usual)",
        "prices at or above the usual price",
    ]
    assert described("JPY", 1500)[:2] == [
        "unit prices up to 1,500 JPY (not compared with prices in EUR)",
        "basket over 1,000 JPY (not compared with amounts in EUR)",
    ]


def test_a_shop_in_yen_reads_yen_without_decimals() -> None:
    history = ReturnHistory()
    history.record(LabelledBasket(replace(basket("B1", "ann", 0), currency="JPY"), False))
    row = history.features(
        replace(basket("N", "ann", 1, ("MUG-1", "mugs", 2, 1500)), currency="JPY")
    )
    assert reason_for("price", row) == "unit prices up to 1,500 JPY"
    assert reason_for("value", row) == "basket over 3,000 JPY (3.8x their usual)"


@pytest.mark.parametrize(
    ("major", "expected"),
    [(312.4, "300"), (1234.0, "1,000"), (55.0, "50"), (2.5, "2"), (0.4, "0")],
)
def test_basket_value_is_rounded_down_to_a_round_figure(major: float, expected: str) -> None:
    assert round_down(major) == expected


GIFT_CARD = Offer(
    "gift_card", "gift card instead of refund", uptake=0.5, avoided_share=1.0, cost_minor=200
)
PICK_UP = Offer("pick_up", "pick-up in store", uptake=0.25, avoided_share=0.5, cost_basis_points=50)


def test_incentive_offers_the_largest_positive_saving() -> None:
    # given a 40% risk on a 100.00 basket and a 15.00 return cost
    # when an offer is suggested
    found = suggest_incentive(0.4, 10_000, return_cost_minor=1_500, offers=[PICK_UP, GIFT_CARD])

    # then the gift card wins: 0.4 * 1500 * 1.0 * 0.5 - 200 = 100 (pick-up: 75 - 50 = 25)
    assert found is not None
    assert (found.offer.name, found.expected_saving_minor) == ("gift_card", 100)


def test_incentive_stays_silent_when_nothing_saves_money() -> None:
    # given a 10% risk, where the gift card saves 75 - 200 and pick-up 18.75 - 50
    # when / then nothing is offered
    assert (
        suggest_incentive(0.1, 10_000, return_cost_minor=1_500, offers=[GIFT_CARD, PICK_UP]) is None
    )
    # and a saving of exactly zero is not worth an offer either
    break_even = replace(GIFT_CARD, cost_minor=300)
    assert suggest_incentive(0.4, 10_000, return_cost_minor=1_500, offers=[break_even]) is None


def test_records_reject_impossible_values() -> None:
    # given / when / then naive times, empty baskets and foreign returned SKUs are refused
    with pytest.raises(ValueError, match="timezone-aware"):
        Basket("B1", "ann", datetime(2024, 1, 1), (BasketLine("A", "c", 1, 100),))  # noqa: DTZ001
    with pytest.raises(ValueError, match="no lines"):
        Basket("B1", "ann", START, ())
    with pytest.raises(ValueError, match="not in the basket"):
        LabelledBasket(basket("B1", "ann", 0), returned=True, returned_skus=frozenset({"OTHER"}))
