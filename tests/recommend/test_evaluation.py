"""Offline metrics on answer sets worked out by hand."""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np

from rapport.recommend.base import Recommender, State
from rapport.recommend.evaluation import Purchases, evaluate, split
from rapport.recommend.interactions import FloatArray, IntArray, Interactions


class FixedOrder(Recommender):
    """Scores items by a fixed order, the same for everyone."""

    name = "fixed"

    def __init__(self, order: list[str]) -> None:
        super().__init__(order=order)

    def fit(self, data: Interactions) -> Self:
        return self

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        ranking = np.zeros(len(data.items), dtype=np.float32)
        for rank, sku in enumerate(self.params["order"]):
            ranking[data.items.index(sku)] = len(self.params["order"]) - rank
        return np.tile(ranking, (len(users), 1))

    def state(self) -> State:
        return {}

    def load_state(self, state: State) -> None:
        pass


def history(rows: list[tuple[str, str, float]]) -> Purchases:
    customers, items, days = zip(*rows, strict=True)
    return Purchases(np.asarray(customers), np.asarray(items), np.asarray(days, dtype=float))


# Days 0-9 train, 10-19 test. "a" bought x and y before, then y and z; "b" bought x, then w
# (an item training never saw); "c" bought only in training (no target, not evaluated).
ROWS = [
    ("a", "x", 1.0),
    ("a", "y", 2.0),
    ("b", "x", 3.0),
    ("c", "q", 4.0),
    ("a", "y", 11.0),
    ("a", "z", 12.0),
    ("b", "w", 13.0),
    ("d", "x", 14.0),  # unknown customer: not evaluated
]


def test_split_keeps_customers_known_to_training_with_their_distinct_next_items() -> None:
    data = split(history(ROWS), cutoff=10.0, stop=20.0, new_only=False)
    users = [data.train.users[u] for u in data.users]
    assert users == ["a", "b"]
    targets = {u: set(t.tolist()) for u, t in zip(users, data.targets, strict=True)}
    assert {data.train.items[i] for i in targets["a"] if i >= 0} == {"y"}
    # z and w were never bought in training: they stay as targets no model can find.
    assert len(targets["a"]) == 2
    assert len(targets["b"]) == 1
    assert min(targets["b"]) < 0


def test_new_only_drops_items_the_customer_bought_before() -> None:
    data = split(history(ROWS), cutoff=10.0, stop=20.0, new_only=True)
    a = data.users.tolist().index(data.train.users.index("a"))
    assert len(data.targets[a]) == 1  # only z (y was bought before)


def test_recall_and_ndcg_for_a_known_ranking() -> None:
    data = split(history(ROWS), cutoff=10.0, stop=20.0, new_only=False)
    # Ranking: y, q, x. For a (targets y, z): y at rank 1 -> recall 1/2, DCG 1, IDCG 1 + 1/log2(3).
    # For b (target w, unknown): nothing found.
    result: dict[str, Any] = evaluate(FixedOrder(["y", "q", "x"]), data)
    assert math.isclose(result["recall@10"], (0.5 + 0.0) / 2)
    assert math.isclose(result["recall@20"], (0.5 + 0.0) / 2)
    assert math.isclose(result["ndcg@10"], (1.0 / (1.0 + 1.0 / math.log2(3)) + 0.0) / 2)
    # Three training items (x, y, q), all shown in someone's top 10.
    assert math.isclose(result["coverage@10"], 1.0)


def test_new_only_evaluation_never_counts_an_item_already_bought() -> None:
    data = split(history(ROWS), cutoff=10.0, stop=20.0, new_only=True)
    # y and x are a's own: they are masked, so nothing of a's new target (z, unknown) is found.
    result = evaluate(FixedOrder(["y", "x", "q"]), data)
    assert result["recall@20"] == 0.0
