"""The one interface every recommendation algorithm implements: fit, recommend, similar, save,
load. Serving, training, evaluation and the shared contract test only ever use this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from rapport.recommend.interactions import FloatArray, IntArray, Interactions

State = dict[str, npt.NDArray[Any]]


class Recommender(ABC):
    """A candidate model. ``scores`` is the only method an algorithm must really think about;
    ranking, exclusion and persistence are shared."""

    name: ClassVar[str]

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params

    @abstractmethod
    def fit(self, data: Interactions) -> Self:
        """Learn from purchase history."""

    @abstractmethod
    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        """A (len(users), items) matrix of preference scores; higher is better. ``data`` is the
        history the customers are scored on (the training history, or a newer one with the
        same indexes)."""

    def scores_one(self, data: Interactions, user: int) -> FloatArray:
        """One customer's row of :meth:`scores`, as a vector. Serving asks for one customer at
        a time; models override it where a single row is cheaper computed directly."""
        row: FloatArray = self.scores(data, np.asarray([user], dtype=np.int64))[0]
        return row

    def prepare(self, data: Interactions) -> None:  # noqa: B027 (optional, not abstract)
        """Build what scoring customers of ``data`` reads from it (kept with ``data``), so
        that serving's first request after a model loads is as fast as the rest, and
        concurrent first requests do not each build it. Nothing to build by default."""

    def similar(self, item: int, count: int) -> list[tuple[int, float]]:
        """Items most like ``item``; models that know nothing of item-to-item return none."""
        return []

    @abstractmethod
    def state(self) -> State:
        """Learnt arrays, to be saved in the model file."""

    @abstractmethod
    def load_state(self, state: State) -> None:
        """Restore what ``state`` returned."""

    def recommend(
        self,
        data: Interactions,
        user: int,
        count: int,
        *,
        exclude: IntArray | None = None,
    ) -> list[tuple[int, float]]:
        """The ``count`` best items for one customer, best first, never one in ``exclude``."""
        row = self.scores(data, np.asarray([user], dtype=np.int64))[0]
        return top_items(row, count, exclude=exclude)

    @classmethod
    def restored(cls, params: dict[str, Any], state: State) -> Self:
        model = cls(**params)
        model.load_state(state)
        return model


def top_items(
    row: FloatArray, count: int, *, exclude: IntArray | None = None
) -> list[tuple[int, float]]:
    """Indexes of the highest scores, best first (ties broken by index, so results are stable);
    excluded and non-finite entries never appear."""
    scores = row.astype(np.float64, copy=True)
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    candidates = np.flatnonzero(np.isfinite(scores))
    if len(candidates) > count:
        part = np.argpartition(-scores[candidates], count - 1)[:count]
        candidates = candidates[part]
    order = np.lexsort((candidates, -scores[candidates]))
    return [(int(candidates[i]), float(scores[candidates[i]])) for i in order]
