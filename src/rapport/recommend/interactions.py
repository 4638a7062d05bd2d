"""Purchase history as matrices: the one input every candidate model learns from.

A purchase is counted once per basket (a customer's purchases of one day), whatever the
quantity: six bottles of the same wine in one trip say less about taste than six separate trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

SECONDS_PER_DAY = 86_400.0

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


def day_number(moment: datetime) -> float:
    """Days since the epoch (fractions keep the time of day): the time axis of every model."""
    return moment.astimezone(UTC).timestamp() / SECONDS_PER_DAY


@dataclass
class Interactions:
    """Distinct (customer, item, day) purchases, indexed. ``day`` counts days since the epoch
    (fractions keep the time of day); ``end`` is the day training data stops."""

    users: list[str]
    items: list[str]
    user: IntArray
    item: IntArray
    day: npt.NDArray[np.float64]
    end: float
    _cache: dict[str, sparse.csr_matrix] = field(default_factory=dict, repr=False)

    @classmethod
    def from_purchases(
        cls,
        customers: Sequence[str] | npt.NDArray[Any],
        items: Sequence[str] | npt.NDArray[Any],
        days: Sequence[float] | npt.NDArray[np.float64],
        *,
        end: float | None = None,
        item_universe: Sequence[str] | None = None,
    ) -> Interactions:
        """Index raw purchase lines. ``item_universe`` adds catalogue items nobody bought yet,
        so that models can still place them (by attributes) and coverage counts them."""
        day_array = np.asarray(days, dtype=np.float64)
        user_names, user_codes = _factorised(customers)
        item_names, item_codes = _factorised([*items, *(item_universe or [])])
        item_codes = item_codes[: len(items)]
        # One row per (customer, item, calendar day): repeats within a basket count once.
        keys, _ = day_keys(user_codes * len(item_names) + item_codes, day_array)
        _, first = np.unique(keys, return_index=True)
        first.sort()
        return cls(
            users=user_names,
            items=item_names,
            user=user_codes[first].astype(np.int64),
            item=item_codes[first].astype(np.int64),
            day=day_array[first],
            end=float(end if end is not None else (day_array.max() if len(day_array) else 0.0)),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.users), len(self.items)

    def counts(self) -> sparse.csr_matrix:
        """Baskets containing each item, per customer."""
        if "counts" not in self._cache:
            self._cache["counts"] = self._matrix(np.ones(len(self.user), dtype=np.float32))
        return self._cache["counts"]

    def binary(self) -> sparse.csr_matrix:
        """1 where the customer ever bought the item."""
        if "binary" not in self._cache:
            matrix = self.counts().copy()
            matrix.data[:] = 1.0
            self._cache["binary"] = matrix
        return self._cache["binary"]

    def recency_weighted(self, half_life_days: float) -> sparse.csr_matrix:
        """Baskets containing each item, each worth half as much every ``half_life_days``."""
        key = f"recency:{half_life_days}"
        if key not in self._cache:
            age = np.maximum(self.end - self.day, 0.0)
            weights = np.power(0.5, age / half_life_days).astype(np.float32)
            self._cache[key] = self._matrix(weights)
        return self._cache[key]

    def since(self, days: float) -> Interactions:
        """Only the purchases of the last ``days`` days (same indexes)."""
        keep = self.day >= self.end - days
        return Interactions(
            users=self.users,
            items=self.items,
            user=self.user[keep],
            item=self.item[keep],
            day=self.day[keep],
            end=self.end,
        )

    def _matrix(self, values: FloatArray) -> sparse.csr_matrix:
        matrix = sparse.csr_matrix(
            (values, (self.user, self.item)), shape=self.shape, dtype=np.float32
        )
        matrix.sum_duplicates()
        return matrix


def day_keys(codes: IntArray, days: npt.NDArray[np.float64]) -> tuple[IntArray, int]:
    """One integer per (code, calendar day), ordered by code then day, and the number of days
    it spans (``key // span`` is the code again): finding or sorting what a pair of columns
    holds is then one integer sort, where ``np.unique`` over the pair sorts opaque records
    (a second on all of Ta-Feng)."""
    day = np.floor(days).astype(np.int64)
    if not len(day):
        return np.zeros(0, dtype=np.int64), 1
    first = int(day.min())
    span = int(day.max()) - first + 1
    keys: IntArray = np.asarray(codes, dtype=np.int64) * span + (day - first)
    return keys, span


def _factorised(values: Sequence[Any] | npt.NDArray[Any]) -> tuple[list[str], IntArray]:
    """The distinct values as sorted strings, and each value's index among them (a dict
    pass, then a sort of the distinct values only: sorting every line's string is slow)."""
    codes: dict[str, int] = {}
    first_seen = np.fromiter(
        (codes.setdefault(str(v), len(codes)) for v in values), dtype=np.int64, count=len(values)
    )
    names = sorted(codes)
    position = np.empty(len(names), dtype=np.int64)
    position[[codes[name] for name in names]] = np.arange(len(names))
    return names, position[first_seen] if len(first_seen) else first_seen


def rows(matrix: sparse.csr_matrix, users: IntArray) -> sparse.csr_matrix:
    """The rows of ``users``; one row is sliced, which is far cheaper than fancy indexing (the
    serving path asks for one customer at a time)."""
    if len(users) == 1:
        user = int(users[0])
        return matrix[user : user + 1]
    return matrix[users]


def row_entries(matrix: sparse.csr_matrix, row: int) -> tuple[IntArray, FloatArray]:
    """One CSR row's columns and values, as views: no matrix is built (which costs scipy
    tens of microseconds of Python each time)."""
    start, stop = matrix.indptr[row], matrix.indptr[row + 1]
    return matrix.indices[start:stop], matrix.data[start:stop]


def dense_row(matrix: sparse.csr_matrix, row: int) -> FloatArray:
    """One CSR row as a dense vector, straight from its arrays (``getrow().toarray()`` builds
    two scipy matrices first)."""
    columns, values = row_entries(matrix, row)
    dense = np.zeros(matrix.shape[1], dtype=np.float32)
    dense[columns] = values
    return dense


def weighted_rows(matrix: sparse.csr_matrix, chosen: IntArray, weights: FloatArray) -> FloatArray:
    """``sum_k weights[k] * matrix[chosen[k]]`` as a dense vector: the one-row sparse product
    ``history @ matrix`` computed straight from the CSR arrays."""
    starts = matrix.indptr[chosen]
    lengths = matrix.indptr[chosen + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(matrix.shape[1], dtype=np.float32)
    # Positions in matrix.data of every entry of the chosen rows, row after row.
    ends = np.cumsum(lengths)
    positions = np.repeat(starts - (ends - lengths), lengths) + np.arange(total)
    values = matrix.data[positions] * np.repeat(weights, lengths)
    summed = np.bincount(matrix.indices[positions], weights=values, minlength=matrix.shape[1])
    return summed.astype(np.float32)


def buyers_per_item(matrix: sparse.csr_matrix) -> FloatArray:
    """How many customers bought each item (column non-zeros)."""
    return np.asarray(matrix.getnnz(axis=0), dtype=np.float32)


def repeat_rate(data: Interactions, *, prior_weight: float = 5.0) -> FloatArray:
    """Share of an item's buyers who bought it again on another day, shrunk towards the overall
    share for items with few buyers: groceries come back, a sofa does not."""
    counts = data.counts()
    buyers = buyers_per_item(counts)
    repeaters = np.asarray((counts >= 2).sum(axis=0), dtype=np.float32).ravel()
    overall = float(repeaters.sum() / max(buyers.sum(), 1.0))
    return ((repeaters + prior_weight * overall) / (buyers + prior_weight)).astype(np.float32)


def repeat_share(counts: sparse.csr_matrix) -> float:
    """The share of purchases (a customer's basket holding an item) that were of an item the
    customer had bought in an earlier basket; ``counts`` as :meth:`Interactions.counts`."""
    purchases = float(counts.sum())
    return (purchases - counts.nnz) / purchases if purchases else 0.0


def largest_per_row(values: npt.NDArray[np.float32], keep: int) -> IntArray:
    """Per row, the columns of the ``keep`` largest of ``values`` (never negative), in no
    order. Most values are usually zero (customers who share nothing, items no part scores),
    and selecting among many equal values is slow (ten times slower on Ta-Feng): each row's
    best are looked for among its non-zero columns, and zeros fill the rest."""
    keep = min(keep, values.shape[1])
    chosen = np.empty((values.shape[0], keep), dtype=np.int64)
    for r, row in enumerate(values):
        nonzero = np.flatnonzero(row)
        if len(nonzero) >= keep:
            cut = len(nonzero) - keep
            chosen[r] = nonzero[np.argpartition(row[nonzero], cut)[cut:]]
        else:
            zeros = np.flatnonzero(row == 0)[: keep - len(nonzero)]
            chosen[r] = np.concatenate([nonzero, zeros])
    return chosen
