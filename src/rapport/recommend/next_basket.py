"""Next-basket baselines from the literature: TIFU-KNN and UP-CF@r.

Both read a customer's history as a sequence of baskets (one basket: a customer's purchases of
one calendar day, as :class:`~rapport.recommend.interactions.Interactions` counts them), and
both are among the strongest repeat-aware methods in Li, Jullien, Ariannezhad and de Rijke, "A
Next Basket Recommendation Reality Check", ACM Transactions on Information Systems 2023.

**TIFU-KNN** -- Haoji Hu, Xiangnan He, Jinyang Gao and Zhi-Li Zhang, "Modeling Personalized
Item Frequency Information for Next-basket Recommendation", SIGIR 2020. A customer's baskets,
oldest first, are cut into groups of ``group_size`` (m) consecutive baskets, counted from the
newest end (so the oldest group holds the remainder when the count does not divide). Each
basket is a binary item vector; a group's vector is the average of its baskets, each weighted
``within_decay`` (r_b) to the power of how many baskets of its group came after it; the
customer's vector is the average of the group vectors, each weighted ``group_decay`` (r_g) to
the power of how many groups came after it. The prediction is ``alpha * own vector + (1 -
alpha) * mean of the neighbours' vectors`` over the ``neighbours`` (k) nearest other customers
by Euclidean distance between vectors, as the paper's kNN does (``metric="cosine"`` takes the
most cosine-similar instead). ``alpha`` = 1 is the customer's own decayed frequency alone.

**UP-CF@r** -- Guglielmo Faggioli, Mirko Polato and Fabio Aiolli, "Recency Aware
Collaborative Filtering for Next Basket Recommendation", UMAP 2020. The recency-aware
user-wise popularity of item i for customer v is the share of v's last ``recency`` (r) baskets
that hold i (divided by r, or by the number of baskets when v has fewer). Customers are
compared by asymmetric cosine over the sets of items they ever bought, ``|I_u & I_v| /
(|I_u|^alpha * |I_v|^(1 - alpha))`` (``alpha`` = 0.5 is the cosine; 1 is the share of u's items
that v also bought), raised to the locality power ``q`` (a large q: only the closest customers
count). The score of i for u sums, over every customer v, ``similarity(u, v)^q *
popularity(v, i)``; u is among them with similarity 1, so the score is u's own recent
popularity plus the collaborative part. For speed only the ``neighbours`` most similar other
customers are kept (a top-k cut the paper does not make; with a large q the rest weigh little).

Both score a chunk of customers with sparse products against every known customer: one dense
(chunk x customers) block at a time, never a customers x customers matrix. Neighbours are
looked up only for the customers scored.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import numpy.typing as npt
from scipy import sparse

from rapport.recommend.base import Recommender, State
from rapport.recommend.interactions import (
    FloatArray,
    IntArray,
    Interactions,
    day_keys,
    dense_row,
    largest_per_row,
    row_entries,
    rows,
    weighted_rows,
)

_CHUNK = 1024


def basket_positions(data: Interactions) -> tuple[IntArray, IntArray]:
    """For each purchase line, its basket's place counted from the customer's newest basket
    (0 = the newest), and for each customer the number of baskets."""
    n_users = data.shape[0]
    if not len(data.day):
        return np.zeros(0, np.int64), np.zeros(n_users, np.int64)
    keys, span = day_keys(data.user, data.day)
    unique, inverse = np.unique(keys, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    # ``unique`` is sorted by customer, then day: a basket's place among its customer's.
    owner = unique // span
    counts = np.bincount(owner, minlength=n_users).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    from_start = np.arange(len(unique)) - first[owner]
    from_end = counts[owner] - 1 - from_start
    return from_end[inverse].astype(np.int64), counts


def _csr_state(prefix: str, matrix: sparse.csr_matrix) -> State:
    return {
        f"{prefix}_data": matrix.data.astype(np.float32),
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def _csr_loaded(prefix: str, state: State) -> sparse.csr_matrix:
    return sparse.csr_matrix(
        (state[f"{prefix}_data"], state[f"{prefix}_indices"], state[f"{prefix}_indptr"]),
        shape=tuple(int(n) for n in state[f"{prefix}_shape"]),
        dtype=np.float32,
    )


def _matrix(data: Interactions, values: npt.NDArray[np.float64]) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(
        (values.astype(np.float32), (data.user, data.item)), shape=data.shape, dtype=np.float32
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def _squared_norms(matrix: sparse.csr_matrix) -> FloatArray:
    return np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float32).ravel()


def _known(users: IntArray, n_known: int) -> npt.NDArray[np.bool_]:
    return (users >= 0) & (users < n_known)


def _top_columns(values: FloatArray, keep: int) -> IntArray:
    """Per row, the columns of the ``keep`` largest values (in no order)."""
    keep = min(keep, values.shape[1])
    if keep <= 0:
        return np.zeros((values.shape[0], 0), dtype=np.int64)
    if keep == values.shape[1]:
        return np.tile(np.arange(keep, dtype=np.int64), (values.shape[0], 1))
    if values.size and values.min() >= 0:
        return largest_per_row(values, keep)
    cut = values.shape[1] - keep
    return np.argpartition(values, cut, axis=1)[:, cut:].astype(np.int64)


class TIFUKNN(Recommender):
    """Temporal item frequency with user-kNN (Hu et al., SIGIR 2020); see the module doc."""

    name = "tifu_knn"

    def __init__(
        self,
        group_size: int = 7,
        within_decay: float = 0.9,
        group_decay: float = 0.7,
        neighbours: int = 300,
        alpha: float = 0.7,
        metric: str = "euclidean",
    ) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"metric must be 'euclidean' or 'cosine', not {metric!r}")
        super().__init__(
            group_size=group_size,
            within_decay=within_decay,
            group_decay=group_decay,
            neighbours=neighbours,
            alpha=alpha,
            metric=metric,
        )
        self.vectors = sparse.csr_matrix((0, 0), dtype=np.float32)
        self.norms: FloatArray = np.zeros(0, dtype=np.float32)

    def _key(self) -> str:
        p = self.params
        return f"tifu:{p['group_size']}:{p['within_decay']}:{p['group_decay']}"

    def user_vectors(self, data: Interactions) -> sparse.csr_matrix:
        """Every customer's time-decayed item frequency vector (kept with ``data``)."""
        key = self._key()
        if key not in data._cache:
            size = int(self.params["group_size"])
            from_end, counts = basket_positions(data)
            n = counts[data.user]
            groups = -(-n // size)
            group = from_end // size
            # The oldest group holds what is left over; all others hold ``size`` baskets.
            in_group = np.where(group == groups - 1, n - size * (groups - 1), size)
            weights = (
                np.power(float(self.params["within_decay"]), from_end % size)
                / in_group
                * np.power(float(self.params["group_decay"]), group)
                / groups
            )
            data._cache[key] = _matrix(data, weights)
        return data._cache[key]

    def fit(self, data: Interactions) -> Self:
        self.vectors = self.user_vectors(data)
        self._compute_norms()
        return self

    def prepare(self, data: Interactions) -> None:
        self.user_vectors(data)

    def _compute_norms(self) -> None:
        squared = _squared_norms(self.vectors)
        self.norms = squared if self.params["metric"] == "euclidean" else np.sqrt(squared)

    def _closeness(self, dots: FloatArray, own: FloatArray, users: IntArray) -> FloatArray:
        """Higher is nearer: minus the squared distance, or the cosine. Each customer's own
        column is ruled out (a customer is not their own neighbour): minus infinity, or a
        cosine of 0 (which :meth:`_neighbour_weights` never counts)."""
        if self.params["metric"] == "euclidean":
            # In place: the block is a chunk of customers by every known customer.
            closeness = dots
            closeness *= 2.0
            closeness -= own[:, None]
            closeness -= self.norms[None, :]
        else:
            scale = own[:, None] * self.norms[None, :]
            closeness = np.divide(dots, scale, out=np.zeros_like(dots), where=scale > 0)
        closeness = closeness.astype(np.float32, copy=False)
        known = _known(users, len(self.norms))
        closeness[np.flatnonzero(known), users[known]] = (
            -np.inf if self.params["metric"] == "euclidean" else 0.0
        )
        return closeness

    def _neighbour_weights(self, closeness: FloatArray, keep: int) -> tuple[IntArray, FloatArray]:
        """The ``keep`` nearest customers per row and their weights in the mean, 1/k each. By
        cosine, customers who share no item are no neighbours (weight 0): they would be picked
        at random among equals."""
        chosen = _top_columns(closeness, keep)
        weights = np.full(chosen.shape, 1.0 / keep, dtype=np.float32)
        if self.params["metric"] == "cosine":
            weights[np.take_along_axis(closeness, chosen, axis=1) <= 0] = 0.0
        return chosen, weights

    def _neighbours(self, query: sparse.csr_matrix, users: IntArray) -> tuple[IntArray, FloatArray]:
        """Each query row's nearest other customers and their weights (serving one customer
        and scoring many take the same path, so they pick the same neighbours)."""
        own = _squared_norms(query)
        if self.params["metric"] == "cosine":
            own = np.sqrt(own)
        dots = np.asarray((query @ self.vectors.T).toarray(), dtype=np.float32)
        closeness = self._closeness(dots, own, users)
        return self._neighbour_weights(closeness, self._keep())

    def _keep(self) -> int:
        # Only other customers (never oneself) can be neighbours.
        return min(int(self.params["neighbours"]), len(self.norms) - 1)

    def _neighbour_mean(self, query: sparse.csr_matrix, users: IntArray) -> FloatArray:
        chosen, weights = self._neighbours(query, users)
        picks = sparse.csr_matrix(
            (weights.ravel(), chosen.ravel(), np.arange(0, chosen.size + 1, chosen.shape[1])),
            shape=(len(users), len(self.norms)),
        )
        return np.asarray((picks @ self.vectors).toarray(), dtype=np.float32)

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        alpha = float(self.params["alpha"])
        result = np.zeros((len(users), data.shape[1]), dtype=np.float32)
        own_vectors = self.user_vectors(data)
        for start in range(0, len(users), _CHUNK):
            chunk = users[start : start + _CHUNK]
            query = rows(own_vectors, chunk)
            part = alpha * query.toarray()
            if alpha < 1.0 and self._keep() > 0:
                part += (1.0 - alpha) * self._neighbour_mean(query, chunk)
            result[start : start + len(chunk)] = part
        return result

    def scores_one(self, data: Interactions, user: int) -> FloatArray:
        alpha = float(self.params["alpha"])
        own_vectors = self.user_vectors(data)
        result: FloatArray = (alpha * dense_row(own_vectors, user)).astype(np.float32)
        if alpha >= 1.0 or self._keep() <= 0:
            return result
        users = np.asarray([user], np.int64)
        chosen, weights = self._neighbours(rows(own_vectors, users), users)
        mean = weighted_rows(self.vectors, chosen[0], weights[0])
        result += ((1.0 - alpha) * mean).astype(np.float32)
        return result

    def state(self) -> State:
        return _csr_state("vectors", self.vectors)

    def load_state(self, state: State) -> None:
        self.vectors = _csr_loaded("vectors", state)
        self._compute_norms()


class UPCF(Recommender):
    """Recency-aware user-wise popularity with user-based CF (Faggioli et al., UMAP 2020); see
    the module doc."""

    name = "up_cf"

    def __init__(
        self, recency: int = 5, alpha: float = 0.5, q: float = 5.0, neighbours: int = 300
    ) -> None:
        super().__init__(recency=recency, alpha=alpha, q=q, neighbours=neighbours)
        self.popularity = sparse.csr_matrix((0, 0), dtype=np.float32)
        self.bought = sparse.csr_matrix((0, 0), dtype=np.float32)
        self.sizes: FloatArray = np.zeros(0, dtype=np.float32)

    def recent_popularity(self, data: Interactions) -> sparse.csr_matrix:
        """Share of each customer's last ``recency`` baskets holding each item (kept with
        ``data``)."""
        recency = int(self.params["recency"])
        key = f"upcf:{recency}"
        if key not in data._cache:
            from_end, counts = basket_positions(data)
            window = np.minimum(counts[data.user], recency).astype(np.float64)
            weights = np.where(from_end < recency, 1.0 / np.maximum(window, 1.0), 0.0)
            data._cache[key] = _matrix(data, weights)
        return data._cache[key]

    def fit(self, data: Interactions) -> Self:
        self.popularity = self.recent_popularity(data)
        self.bought = data.binary()
        self.sizes = np.asarray(self.bought.getnnz(axis=1), dtype=np.float32)
        return self

    def prepare(self, data: Interactions) -> None:
        self.recent_popularity(data)
        data.binary()

    def similarity(self, overlap: FloatArray, own_size: FloatArray) -> FloatArray:
        """Asymmetric cosine from the counts of shared items (rows: the customers scored,
        columns: every known customer)."""
        alpha = float(self.params["alpha"])
        scale = np.power(own_size, alpha)[:, None] * np.power(self.sizes, 1.0 - alpha)[None, :]
        similarity: FloatArray = np.divide(
            overlap, scale, out=np.zeros_like(overlap), where=scale > 0
        ).astype(np.float32)
        return similarity

    def _weights(self, overlap: FloatArray, own_size: FloatArray, users: IntArray) -> FloatArray:
        """Neighbour weights ``similarity^q``: the ``neighbours`` most similar other customers
        per row, zero elsewhere (oneself counts apart, with weight 1)."""
        similarity = self.similarity(overlap, own_size)
        known = _known(users, len(self.sizes))
        similarity[np.flatnonzero(known), users[known]] = 0.0
        keep = min(int(self.params["neighbours"]), similarity.shape[1])
        weights = np.zeros_like(similarity)
        if keep > 0:
            chosen = _top_columns(similarity, keep)
            picked = np.take_along_axis(similarity, chosen, axis=1)
            np.put_along_axis(weights, chosen, np.power(picked, float(self.params["q"])), axis=1)
        return weights

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        result = np.zeros((len(users), data.shape[1]), dtype=np.float32)
        own_popularity = self.recent_popularity(data)
        bought = data.binary()
        for start in range(0, len(users), _CHUNK):
            chunk = users[start : start + _CHUNK]
            query = rows(bought, chunk)
            own_size = np.asarray(query.getnnz(axis=1), dtype=np.float32)
            overlap = np.asarray((query @ self.bought.T).toarray(), dtype=np.float32)
            weights = sparse.csr_matrix(self._weights(overlap, own_size, chunk))
            part = rows(own_popularity, chunk).toarray() + (weights @ self.popularity).toarray()
            result[start : start + len(chunk)] = part
        return result

    def scores_one(self, data: Interactions, user: int) -> FloatArray:
        own = dense_row(self.recent_popularity(data), user)
        items, _ = row_entries(data.binary(), user)
        indicator = np.zeros(data.shape[1], dtype=np.float32)
        indicator[items] = 1.0
        overlap = np.asarray(self.bought @ indicator, dtype=np.float32)[None, :]
        weights = self._weights(
            overlap, np.asarray([len(items)], np.float32), np.asarray([user], np.int64)
        )[0]
        chosen = np.flatnonzero(weights)
        result: FloatArray = own + weighted_rows(self.popularity, chosen, weights[chosen])
        return result

    def state(self) -> State:
        return {**_csr_state("popularity", self.popularity), **_csr_state("bought", self.bought)}

    def load_state(self, state: State) -> None:
        self.popularity = _csr_loaded("popularity", state)
        self.bought = _csr_loaded("bought", state)
        self.sizes = np.asarray(self.bought.getnnz(axis=1), dtype=np.float32)


NEXT_BASKET: dict[str, type[Recommender]] = {model.name: model for model in (TIFUKNN, UPCF)}
