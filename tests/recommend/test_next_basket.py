"""TIFU-KNN and UP-CF@r on histories small enough to work out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.recommend.base import Recommender
from rapport.recommend.interactions import Interactions
from rapport.recommend.next_basket import NEXT_BASKET, TIFUKNN, UPCF, basket_positions

from .factories import shop_interactions as shop

Basket = tuple[str, float, list[str]]


def history(baskets: list[Basket]) -> Interactions:
    """Interactions from (customer, day, items) baskets."""
    customers, items, days = [], [], []
    for customer, day, skus in baskets:
        for sku in skus:
            customers.append(customer)
            items.append(sku)
            days.append(day)
    return Interactions.from_purchases(customers, items, days, end=max(days) + 1)


def score(model: Recommender, data: Interactions, customer: str, item: str) -> float:
    row = model.scores(data, np.asarray([data.users.index(customer)]))[0]
    return float(row[data.items.index(item)])


MODELS = [
    TIFUKNN(neighbours=3),
    TIFUKNN(neighbours=3, metric="cosine", group_size=2),
    UPCF(recency=3, neighbours=4),
    UPCF(recency=1, alpha=0.9, q=2.0, neighbours=100),
]


@pytest.fixture(params=range(len(MODELS)), ids=lambda i: f"{MODELS[i].name}-{i}")
def model(request: pytest.FixtureRequest) -> Recommender:
    chosen = MODELS[request.param]
    return type(chosen)(**chosen.params)


def test_baskets_are_counted_from_the_newest() -> None:
    data = history([("a", 1.2, ["x"]), ("a", 1.7, ["y"]), ("a", 3.0, ["x"]), ("b", 2.0, ["x"])])
    from_end, counts = basket_positions(data)
    places = {
        (data.users[u], data.items[i], int(d)): int(p)
        for u, i, d, p in zip(data.user, data.item, data.day, from_end, strict=True)
    }
    # Two purchases on day 1 are one basket, older than day 3's.
    assert places == {("a", "x", 1): 1, ("a", "y", 1): 1, ("a", "x", 3): 0, ("b", "x", 2): 0}
    assert counts.tolist() == [2, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.floats(0.0, 40.0), st.sampled_from("xyz")),
        min_size=1,
        max_size=40,
    )
)
def test_a_basket_is_a_customer_day_counted_from_their_newest(
    lines: list[tuple[str, float, str]],
) -> None:
    data = history([(customer, day, [item]) for customer, day, item in lines])
    from_end, counts = basket_positions(data)
    days: dict[int, set[int]] = {}
    for user, day in zip(data.user.tolist(), data.day.tolist(), strict=True):
        days.setdefault(user, set()).add(int(day // 1))
    for user, day, place in zip(data.user.tolist(), data.day.tolist(), from_end, strict=True):
        newer = [d for d in days[user] if d > int(day // 1)]
        assert place == len(newer)
    assert counts.tolist() == [len(days.get(user, ())) for user in range(len(data.users))]


def test_tifu_ranks_a_recent_item_above_an_old_one_bought_as_often() -> None:
    data = history(
        [
            ("a", 1, ["old"]),
            ("a", 2, ["old"]),
            ("a", 3, ["new"]),
            ("a", 4, ["new"]),
            ("b", 1, ["other"]),
        ]
    )
    model = TIFUKNN(group_size=2, within_decay=0.5, group_decay=0.5, alpha=1.0).fit(data)
    # Two groups of two baskets: the newer group weighs 1, the older 0.5; within a group the
    # newer basket weighs 1, the older 0.5; both levels are averages.
    assert score(model, data, "a", "new") == pytest.approx((1 + 0.5) / 2 * 1 / 2)
    assert score(model, data, "a", "old") == pytest.approx((1 + 0.5) / 2 * 0.5 / 2)


def test_tifu_oldest_group_holds_the_remainder() -> None:
    data = history([("a", 1, ["x"]), ("a", 2, ["y"]), ("a", 3, ["z"])])
    model = TIFUKNN(group_size=2, within_decay=0.5, group_decay=0.25, alpha=1.0).fit(data)
    # Groups: [day 1] and [day 2, day 3].
    assert score(model, data, "a", "x") == pytest.approx(1.0 * 0.25 / 2)
    assert score(model, data, "a", "y") == pytest.approx(0.5 / 2 * 1 / 2)
    assert score(model, data, "a", "z") == pytest.approx(1.0 / 2 * 1 / 2)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_tifu_brings_the_nearest_customers_items_to_a_customer(metric: str) -> None:
    data = history(
        [
            ("a", 1, ["x", "y"]),
            ("b", 1, ["x", "y", "z"]),
            ("c", 1, ["v", "w"]),
            ("d", 1, ["v", "w", "u"]),
        ]
    )
    mixed = TIFUKNN(neighbours=1, alpha=0.6, metric=metric).fit(data)
    # b is a's nearest other customer (a itself never counts): z reaches a, u does not.
    assert score(mixed, data, "a", "z") == pytest.approx(0.4)
    assert score(mixed, data, "a", "u") == 0.0
    assert score(mixed, data, "a", "x") == pytest.approx(0.6 + 0.4)
    own_only = TIFUKNN(neighbours=1, alpha=1.0, metric=metric).fit(data)
    assert score(own_only, data, "a", "z") == 0.0


def test_up_cf_counts_only_the_last_r_baskets() -> None:
    data = history([("a", 1, ["x"]), ("a", 2, ["x"]), ("a", 3, ["y"]), ("b", 1, ["q"])])
    last = UPCF(recency=1, neighbours=0).fit(data)
    assert score(last, data, "a", "y") == pytest.approx(1.0)
    assert score(last, data, "a", "x") == 0.0
    # Fewer baskets than r: shares of the baskets there are.
    all_three = UPCF(recency=5, neighbours=0).fit(data)
    assert score(all_three, data, "a", "x") == pytest.approx(2 / 3)
    assert score(all_three, data, "a", "y") == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("alpha", "a_from_b", "b_from_a"),
    [(1.0, 2 / 3, 2 / 4), (0.0, 2 / 4, 2 / 3), (0.5, 2 / np.sqrt(12), 2 / np.sqrt(12))],
)
def test_up_cf_similarity_is_the_asymmetric_cosine(
    alpha: float, a_from_b: float, b_from_a: float
) -> None:
    # a bought 3 items, b bought 4; they share 2. One basket each: popularity 1 per item.
    data = history([("a", 1, ["1", "2", "5"]), ("b", 1, ["1", "2", "3", "4"])])
    model = UPCF(recency=3, alpha=alpha, q=2.0, neighbours=5).fit(data)
    # What only b bought reaches a with weight sim(a, b)^q, and the other way round.
    assert score(model, data, "a", "3") == pytest.approx(a_from_b**2)
    assert score(model, data, "b", "5") == pytest.approx(b_from_a**2)
    # A customer counts themself with similarity 1: their own recent popularity, plus b's.
    assert score(model, data, "a", "1") == pytest.approx(1.0 + a_from_b**2)


def test_up_cf_keeps_only_the_closest_neighbours() -> None:
    data = history(
        [("a", 1, ["x", "y"]), ("b", 1, ["x", "y", "near"]), ("c", 1, ["x", "far", "f2"])]
    )
    model = UPCF(recency=3, alpha=0.5, q=1.0, neighbours=1).fit(data)
    assert score(model, data, "a", "near") > 0
    assert score(model, data, "a", "far") == 0.0


def test_every_next_basket_model_is_registered() -> None:
    assert set(NEXT_BASKET) == {"tifu_knn", "up_cf"}
    with pytest.raises(ValueError, match="metric"):
        TIFUKNN(metric="manhattan")


def test_scores_one_is_the_row_of_scores(model: Recommender) -> None:
    data = shop()
    model.fit(data)
    everyone = model.scores(data, np.arange(len(data.users)))
    assert everyone.shape == data.shape
    assert np.isfinite(everyone).all()
    for user in range(len(data.users)):
        np.testing.assert_allclose(model.scores_one(data, user), everyone[user], atol=1e-6)


def test_neighbours_bring_items_new_to_the_customer(model: Recommender) -> None:
    data = shop()
    model.fit(data)
    users = np.asarray([data.users.index(c) for c in ("c7", "c8", "c10")])
    scores = model.scores(data, users)
    # Only what each customer never bought, as the new-items evaluation asks.
    scores[data.binary()[users].nonzero()] = -np.inf
    best = [data.items[int(i)] for i in scores.argmax(axis=1)]
    # The wine buyers who never bought coffee get it from the wine buyers who do; the pasta
    # buyers get the sofa one of them bought.
    assert best == ["G-COFFEE", "G-COFFEE", "H-SOFA"]
    assert (scores.max(axis=1) > 0).all()


def test_saved_in_an_npz_and_loaded_scores_the_same(model: Recommender, tmp_path: Path) -> None:
    data = shop()
    model.fit(data)
    np.savez(tmp_path / "model.npz", **model.state())
    with np.load(tmp_path / "model.npz") as saved:
        restored = type(model).restored(model.params, dict(saved))
    users = np.arange(len(data.users))
    np.testing.assert_array_equal(restored.scores(data, users), model.scores(data, users))
    np.testing.assert_array_equal(restored.scores_one(data, 3), model.scores_one(data, 3))


def test_trains_the_same_twice(model: Recommender) -> None:
    data = shop()
    first = type(model)(**model.params).fit(data).state()
    second = type(model)(**model.params).fit(shop()).state()
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_never_recommends_an_excluded_item(model: Recommender) -> None:
    data = shop()
    model.fit(data)
    excluded = np.asarray([data.items.index("W-CHIANTI"), data.items.index("G-COFFEE")])
    ranked = model.recommend(data, 0, 5, exclude=excluded)
    assert ranked
    assert not {i for i, _ in ranked} & set(excluded.tolist())
