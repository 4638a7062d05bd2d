"""The contract every candidate model keeps, and what each one is for."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.recommend.algorithms import (
    ALGORITHMS,
    ALS,
    EASE,
    SEASON_DAYS,
    SEASON_PRIOR,
    Blend,
    ItemKNN,
    PersonalFrequency,
    Popularity,
    _inverse,
    in_season,
)
from rapport.recommend.base import Recommender, top_items
from rapport.recommend.interactions import Interactions, repeat_rate

from .factories import shop_interactions

SMALL = {"als": {"factors": 8, "iterations": 5}}


@pytest.fixture(params=sorted(ALGORITHMS))
def model(request: pytest.FixtureRequest) -> Recommender:
    return ALGORITHMS[request.param](**SMALL.get(request.param, {}))


def test_every_model_scores_every_item_for_every_customer(model: Recommender) -> None:
    data = shop_interactions()
    model.fit(data)
    users = np.arange(len(data.users))
    scores = model.scores(data, users)
    assert scores.shape == data.shape
    assert np.isfinite(scores).all()


def test_every_model_never_recommends_an_excluded_item(model: Recommender) -> None:
    data = shop_interactions()
    model.fit(data)
    excluded = np.asarray([data.items.index("W-CHIANTI"), data.items.index("G-COFFEE")])
    ranked = model.recommend(data, 0, 5, exclude=excluded)
    assert len(ranked) == 5
    assert not {i for i, _ in ranked} & set(excluded.tolist())
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_every_model_saved_and_loaded_scores_the_same(model: Recommender) -> None:
    data = shop_interactions()
    model.fit(data)
    restored = type(model).restored(model.params, model.state())
    users = np.arange(len(data.users))
    np.testing.assert_array_equal(restored.scores(data, users), model.scores(data, users))


def test_every_model_trains_the_same_twice(model: Recommender) -> None:
    data = shop_interactions()
    first = type(model)(**model.params).fit(data).state()
    second = type(model)(**model.params).fit(data).state()
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_popularity_ranks_by_recent_buyers() -> None:
    data = shop_interactions()
    model = Popularity(window_days=30).fit(data)
    best = [data.items[i] for i, _ in model.recommend(data, 0, 2)]
    # Coffee: six buyers in the last 30 days; wine glasses and reds: eight buyers but spread.
    assert best[0] in {"G-COFFEE", "K-GLASS"}


def test_personal_frequency_puts_the_customers_own_staples_first() -> None:
    data = shop_interactions()
    model = PersonalFrequency().fit(data)
    c1 = data.users.index("c1")
    first = data.items[model.recommend(data, c1, 1)[0][0]]
    assert first == "G-COFFEE"  # twelve weekly baskets


def test_repeat_rate_tells_coffee_from_a_sofa() -> None:
    data = shop_interactions()
    rate = repeat_rate(data)
    assert rate[data.items.index("G-COFFEE")] > 0.6
    assert rate[data.items.index("H-SOFA")] < 0.25


@pytest.mark.parametrize("model_type", [ItemKNN, EASE])
def test_neighbours_of_a_red_wine_include_the_corkscrew(model_type: type[Recommender]) -> None:
    data = shop_interactions()
    model = model_type().fit(data)
    near = {data.items[i] for i, _ in model.similar(data.items.index("W-CHIANTI"), 4)}
    assert "K-CORK" in near or "K-GLASS" in near
    assert "G-PASTA" not in near


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 12).flatmap(
        lambda items: st.lists(
            st.lists(st.booleans(), min_size=items, max_size=items), min_size=1, max_size=30
        )
    ),
    st.sampled_from([0.5, 10.0, 500.0]),
)
def test_ease_inverts_any_ridged_gram_matrix(baskets: list[list[bool]], ridge: float) -> None:
    bought = np.asarray(baskets, dtype=np.float32)
    gram = bought.T @ bought + ridge * np.eye(bought.shape[1], dtype=np.float32)
    inverse = _inverse(gram)
    assert inverse.dtype == np.float32
    np.testing.assert_allclose(inverse, inverse.T, atol=1e-6)
    np.testing.assert_allclose(inverse @ gram, np.eye(len(gram)), atol=1e-3)


def test_a_matrix_that_is_not_positive_definite_is_still_inverted() -> None:
    swap = np.asarray([[0.0, 2.0], [2.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(_inverse(swap), [[0.0, 0.5], [0.5, 0.0]])


def test_blend_weights_change_the_ranking_without_refitting() -> None:
    data = shop_interactions()
    model = Blend(own=1.0, knn=0.0, ease=0.0, popular=0.0).fit(data)
    c9 = data.users.index("c9")
    own_only = [data.items[i] for i, _ in model.recommend(data, c9, 3)]
    assert set(own_only[:2]) <= {"G-PASTA", "W-CHABLIS", "H-SOFA"}
    model.params.update(own=0.0, popular=1.0)
    popular_only = [data.items[i] for i, _ in model.recommend(data, c9, 1)]
    assert popular_only == [data.items[int(np.argmax(model.frequency.popularity.popularity))]]


def test_als_scores_customers_it_never_saw_as_zero() -> None:
    data = shop_interactions()
    model = ALS(factors=4, iterations=3).fit(data)
    scores = model.scores(data, np.asarray([len(data.users) + 5]))
    assert not scores.any()


def test_top_items_breaks_ties_by_index_and_skips_non_finite() -> None:
    row = np.asarray([1.0, 3.0, 3.0, -np.inf, 2.0], dtype=np.float32)
    assert top_items(row, 4) == [(1, 3.0), (2, 3.0), (4, 2.0), (0, 1.0)]
    assert top_items(row, 10, exclude=np.asarray([1])) == [(2, 3.0), (4, 2.0), (0, 1.0)]


def test_serving_one_customer_scores_as_the_batch_path_does() -> None:
    # given a blend with every part, fitted on the demo shop's purchases
    data = shop_interactions()
    model = Blend(knn=0.3, ease=0.3, als=0.2, popular=0.1, factors=8).fit(data)
    for user in range(len(data.users)):
        # when one customer's parts are computed straight from the matrices' arrays
        one = model.parts_one(data, user)
        # then every part matches the batch path's, up to float rounding
        batch = model.parts(data, np.asarray([user]))
        assert one.keys() == batch.keys()
        for name, values in one.items():
            np.testing.assert_allclose(values, batch[name][0], rtol=1e-5, atol=1e-7)


def test_every_model_scores_one_customer_as_a_row_of_its_scores(model: Recommender) -> None:
    # serving asks for one customer at a time: the vector is that customer's row of scores
    data = shop_interactions()
    model.fit(data)
    for user in range(len(data.users)):
        np.testing.assert_allclose(
            model.scores_one(data, user),
            model.scores(data, np.asarray([user]))[0],
            rtol=1e-5,
            atol=1e-7,
        )


def _sales(per_item: dict[str, list[float]], end: float = 1000.0) -> Interactions:
    """One purchase (by its own customer) of each item on each of the days given."""
    users, items, days = [], [], []
    for item, when in per_item.items():
        for k, day in enumerate(when):
            users.append(f"{item}-buyer{k}")
            items.append(item)
            days.append(day)
    return Interactions.from_purchases(users, items, days, end=end)


@settings(max_examples=40, deadline=None)
@given(per_day=st.integers(1, 5), weeks=st.integers(4, 20))
def test_an_item_selling_at_its_usual_rate_is_not_in_season(per_day: int, weeks: int) -> None:
    # given an item sold the same number of times every day of the history
    end = 1000.0
    history = [end - day - 1.0 for day in range(7 * weeks) for _ in range(per_day)]
    data = _sales({"steady": history}, end=end)
    # then its in-season factor is 1
    assert in_season(data)[0] == pytest.approx(1.0, rel=1e-5)


def test_what_sells_faster_lately_is_in_season_and_a_single_sale_hardly_counts() -> None:
    end = 1000.0
    usual = [end - day - 1.0 for day in range(84)]  # every day for twelve weeks
    data = _sales(
        {
            "steady": usual,
            "launched": [end - day - 0.5 for day in range(10) for _ in range(3)],
            "over": [day for day in usual if day < end - SEASON_DAYS],
            "once": [end - 1.0],
        },
        end=end,
    )
    factor = dict(zip(data.items, in_season(data).tolist(), strict=True))
    assert factor["steady"] == pytest.approx(1.0)
    # launched ten days ago, three a day: several times its usual rate over the history
    assert factor["launched"] > 3
    # sold until two weeks ago, not since: out of season
    assert factor["over"] < 0.5
    # one sale yesterday: (1 + prior) / (usual + prior), near 1
    assert 1.0 < factor["once"] <= (1 + SEASON_PRIOR) / SEASON_PRIOR


def test_the_season_power_reorders_the_blend_and_is_saved_with_it() -> None:
    end = 1000.0
    # two items bought equally often over the history; one of them only lately
    early = [end - 80.0 + day for day in range(20)]
    late = [end - 1.0 - day for day in range(20)]
    data = _sales({"autumn": early, "winter": late, "x": [end - 50.0]}, end=end)
    # popularity over the whole history: both equally popular
    plain = Blend(own=0.0, knn=0.0, ease=0.0, popular=1.0, window_days=1000.0).fit(data)
    parts = plain.parts(data, np.asarray([0]))
    winter, autumn = data.items.index("winter"), data.items.index("autumn")
    combined = plain.combine(parts)[0]
    assert combined[winter] == pytest.approx(combined[autumn])
    seasonal = plain.reweighed({**plain.params, "season": 1.0})
    boosted = seasonal.combine(parts)[0]
    assert boosted[winter] > 3 * boosted[autumn]
    # the factor and its power travel with the saved model
    restored = Blend.restored(seasonal.params, seasonal.state())
    np.testing.assert_allclose(restored.combine(parts)[0], boosted)
    # a model saved before the factor existed loads without it and serves as it did
    older = {k: v for k, v in plain.state().items() if k != "season"}
    np.testing.assert_allclose(Blend.restored(plain.params, older).combine(parts)[0], combined)


def _habits() -> Interactions:
    """A regular who buys the same two things every week, someone who tries something new
    each time, and twenty ordinary customers between them."""
    users, items, days = [], [], []

    def buy(user: str, item: str, day: float) -> None:
        users.append(user)
        items.append(item)
        days.append(day)

    for week in range(10):
        buy("regular", "milk", 7.0 * week)
        buy("regular", "bread", 7.0 * week)
        buy("explorer", f"novel-{week}", 7.0 * week)
    for k in range(20):
        buy(f"ordinary{k}", "milk", 1.0)
        buy(f"ordinary{k}", f"item-{k}", 2.0)
        buy(f"ordinary{k}", "milk", 30.0)
    buy("newcomer", "bread", 69.0)
    return Interactions.from_purchases(users, items, days, end=70.0)


def test_a_creature_of_habit_gets_more_weight_on_their_own_items_and_an_explorer_less() -> None:
    data = _habits()
    model = PersonalFrequency(habit_power=0.5).fit(data)
    who = {name: data.users.index(name) for name in ("regular", "explorer", "newcomer")}
    factors = model.habit(data, np.asarray(list(who.values()))).tolist()
    habit = dict(zip(who, factors, strict=True))
    # 18 of the regular's 20 purchases were repeats, against 38 of all 91
    assert habit["regular"] > 1.3
    # the explorer never bought anything twice in ten baskets
    assert habit["explorer"] < 0.6
    # one purchase says little yet: near the usual weight
    assert 0.85 < habit["newcomer"] < 1.0
    # the own part's best item carries the factor; at power 0 everyone weighs the same
    own = model.own(data, np.asarray([who["regular"], who["explorer"]]))
    np.testing.assert_allclose(own.max(axis=1), [habit["regular"], habit["explorer"]], rtol=1e-5)
    plain = PersonalFrequency(habit_power=0.0).fit(data)
    np.testing.assert_array_equal(plain.habit(data, np.arange(len(data.users))), 1.0)


def test_the_habit_factor_never_reorders_a_customers_own_items_or_a_lone_ranking() -> None:
    data = shop_interactions()
    users = np.arange(len(data.users))
    with_habit = PersonalFrequency(repeat_power=0.5, habit_power=1.0).fit(data)
    without = PersonalFrequency(repeat_power=0.5, habit_power=0.0).fit(data)
    mine, plain = with_habit.own(data, users), without.own(data, users)
    for user in users:
        bought = plain[user] > 0
        np.testing.assert_array_equal(
            np.argsort(-mine[user][bought], kind="stable"),
            np.argsort(-plain[user][bought], kind="stable"),
        )
    # alone (the top-frequency baseline) it ranks as it did
    for user in users:
        first = [item for item, _ in with_habit.recommend(data, int(user), 5)]
        assert first == [item for item, _ in without.recommend(data, int(user), 5)]


def test_a_model_saved_before_the_habit_factor_loads_and_serves_as_it_did() -> None:
    data = _habits()
    blend = Blend(own=1.0, knn=0.0, ease=0.0, popular=1.0, habit_power=0.5).fit(data)
    older_params = {k: v for k, v in blend.params.items() if k != "habit_power"}
    older_state = {k: v for k, v in blend.state().items() if k != "frequency.usual_habit"}
    older = Blend.restored(older_params, older_state)
    regular = np.asarray([data.users.index("regular")])
    unweighed = Blend(own=1.0, knn=0.0, ease=0.0, popular=1.0, habit_power=0.0).fit(data)
    np.testing.assert_allclose(older.scores(data, regular), unweighed.scores(data, regular))
    # and one saved with it serves with it
    restored = Blend.restored(blend.params, blend.state())
    np.testing.assert_allclose(restored.scores(data, regular), blend.scores(data, regular))
    assert not np.allclose(blend.scores(data, regular), unweighed.scores(data, regular))
