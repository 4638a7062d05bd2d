"""Offline evaluation: train on the past, predict each customer's next-period items.

Recall@k counts the share of a customer's next-period items found in their top k; NDCG@10
rewards finding them near the top; coverage@10 is the share of the catalogue that appears in
anyone's top 10. ``new_only`` asks only for items the customer never bought before (and never
recommends one they did)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rapport.recommend.base import Recommender
from rapport.recommend.interactions import IntArray, Interactions

CUTOFFS = (10, 20)
_CHUNK = 1024


@dataclass(frozen=True)
class Purchases:
    """Raw purchase lines, before indexing: customer, item and day (days since the epoch)."""

    customers: npt.NDArray[Any]
    items: npt.NDArray[Any]
    days: npt.NDArray[np.float64]

    def before(self, day: float) -> Purchases:
        keep = self.days < day
        return Purchases(self.customers[keep], self.items[keep], self.days[keep])

    def between(self, start: float, stop: float) -> Purchases:
        keep = (self.days >= start) & (self.days < stop)
        return Purchases(self.customers[keep], self.items[keep], self.days[keep])

    def interactions(self, *, end: float) -> Interactions:
        return Interactions.from_purchases(self.customers, self.items, self.days, end=end)


@dataclass(frozen=True)
class Split:
    """Training history and, per customer known to it, the item indexes to predict."""

    train: Interactions
    users: IntArray
    targets: list[npt.NDArray[np.int64]]
    target_sizes: npt.NDArray[np.int64]
    new_only: bool


def split(purchases: Purchases, *, cutoff: float, stop: float, new_only: bool) -> Split:
    """Train on purchases before ``cutoff``; each customer seen in training must predict their
    distinct items bought in [cutoff, stop). Items unknown to training stay in the targets (a
    model cannot find them, and that counts against it)."""
    train = purchases.before(cutoff).interactions(end=cutoff)
    test = purchases.between(cutoff, stop)
    user_index = {name: i for i, name in enumerate(train.users)}
    item_index = {name: i for i, name in enumerate(train.items)}
    seen = train.binary()
    wanted: dict[int, set[int]] = {}
    unknown: dict[str, int] = {}
    for customer, item in zip(test.customers.tolist(), test.items.tolist(), strict=True):
        user = user_index.get(customer)
        if user is None:
            continue
        # Unknown items get distinct negative codes: unfindable, but still counted.
        code = item_index.get(item)
        if code is None:
            code = unknown.setdefault(item, -1 - len(unknown))
        if new_only and code >= 0 and seen[user, code]:
            continue
        wanted.setdefault(user, set()).add(code)
    users = np.asarray(sorted(wanted), dtype=np.int64)
    targets = [np.asarray(sorted(wanted[int(u)]), dtype=np.int64) for u in users]
    return Split(
        train=train,
        users=users,
        targets=targets,
        target_sizes=np.asarray([len(t) for t in targets], dtype=np.int64),
        new_only=new_only,
    )


def evaluate(model: Recommender, data: Split, *, users: IntArray | None = None) -> dict[str, float]:
    """Recall@10, Recall@20, NDCG@10 (means over customers) and coverage@10."""
    return _measured(model, data, users)[0]


def recall_each(
    model: Recommender, data: Split, *, users: IntArray | None = None
) -> npt.NDArray[np.float64]:
    """Each customer's Recall@20 (in the order of ``data.users``, or ``users``): for paired
    comparisons between models on the same customers."""
    return _measured(model, data, users)[1]


def recall_of_ranking(ranked: Sequence[int], target: npt.NDArray[np.int64], k: int = 20) -> float:
    """The share of ``target`` found in the first ``k`` of ``ranked``."""
    return float(np.isin(np.asarray(ranked[:k], dtype=np.int64), target).sum() / len(target))


def _measured(
    model: Recommender, data: Split, users: IntArray | None
) -> tuple[dict[str, float], npt.NDArray[np.float64]]:
    chosen = np.arange(len(data.users)) if users is None else users
    top = min(max(CUTOFFS), data.train.shape[1])
    seen = data.train.binary()
    hits = dict.fromkeys(CUTOFFS, 0.0)
    each = np.zeros(len(chosen), dtype=np.float64)
    ndcg = 0.0
    shown: set[int] = set()
    discounts = 1.0 / np.log2(np.arange(2, max(CUTOFFS) + 2))
    for start in range(0, len(chosen), _CHUNK):
        rows = chosen[start : start + _CHUNK]
        users_chunk = data.users[rows]
        scores = model.scores(data.train, users_chunk).astype(np.float32, copy=False)
        if data.new_only:
            history = seen[users_chunk]
            scores[history.nonzero()] = -np.inf
        best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        ranked = np.take_along_axis(best, order, axis=1)
        for offset, row in enumerate(rows):
            target = data.targets[row]
            found = np.isin(ranked[offset], target)
            for k in CUTOFFS:
                hits[k] += found[:k].sum() / len(target)
            each[start + offset] = found[: max(CUTOFFS)].sum() / len(target)
            ideal = discounts[: min(len(target), 10)].sum()
            shown_here = found[:10]
            ndcg += float((shown_here * discounts[: len(shown_here)]).sum() / ideal)
            shown.update(ranked[offset, :10].tolist())
    count = max(len(chosen), 1)
    means = {
        "recall@10": hits[10] / count,
        "recall@20": hits[20] / count,
        "ndcg@10": ndcg / count,
        "coverage@10": len(shown) / max(data.train.shape[1], 1),
    }
    return means, each


def paired_interval(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], *, confidence: float = 0.95
) -> tuple[float, float, float]:
    """The mean of ``a - b`` over the same customers and its ``confidence`` interval (a paired
    t interval: customers are many and independent)."""
    from scipy import stats

    difference = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mean = float(difference.mean()) if len(difference) else 0.0
    if len(difference) < 2:
        return mean, mean, mean
    half = float(
        stats.t.ppf(0.5 + confidence / 2, len(difference) - 1)
        * difference.std(ddof=1)
        / np.sqrt(len(difference))
    )
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Tuned:
    model: Recommender
    params: dict[str, Any]
    validation: dict[str, float]


def grid(**choices: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the given parameter choices."""
    names = list(choices)
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*choices.values())
    ]


def tune(
    build: Callable[..., Recommender],
    candidates: Iterable[dict[str, Any]],
    validation: Split,
    *,
    metric: str = "recall@20",
    sample: int | None = 4000,
    seed: int = 0,
) -> Tuned:
    """The parameters that score best on ``metric`` over (a fixed sample of) the validation
    customers."""
    users = _sample(validation, sample, seed)
    best: Tuned | None = None
    for params in candidates:
        model = build(**params).fit(validation.train)
        result = evaluate(model, validation, users=users)
        if best is None or result[metric] > best.validation[metric]:
            best = Tuned(model=model, params=dict(params), validation=result)
    assert best is not None, "tune needs at least one candidate"
    return best


def _sample(validation: Split, sample: int | None, seed: int) -> IntArray | None:
    if sample is None or len(validation.users) <= sample:
        return None
    chosen = np.random.default_rng(seed).choice(len(validation.users), sample, replace=False)
    return np.sort(chosen)
