"""Candidate models: popularity, the customer's own favourites, item-to-item neighbours (item-kNN
and EASE), matrix factorisation (`implicit` ALS), and the blend Rapport serves."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.linalg import lapack

from rapport.recommend.base import Recommender, State
from rapport.recommend.interactions import (
    FloatArray,
    IntArray,
    Interactions,
    repeat_rate,
    repeat_share,
    row_entries,
    rows,
    weighted_rows,
)
from rapport.recommend.next_basket import UPCF

# A score for items the customer never bought, small enough never to outrank one they did.
_FILL = 1e-3
# Purchases at the usual repeat share added to each customer's own (PersonalFrequency.habit): a
# customer with two purchases is not a creature of habit on one repeat.
HABIT_PRIOR = 5.0
# The blend's habit factor power: fixed, not searched (docs/recommendations.md, "The habit factor").
HABIT_POWER = 0.5


def _row_normalised(matrix: FloatArray) -> FloatArray:
    """Each row scaled so that its best item scores 1 (rows of zeros stay zero)."""
    top = matrix.max(axis=1, keepdims=True)
    top[top <= 0] = 1.0
    normalised: FloatArray = (matrix / top).astype(np.float32)
    return normalised


def _unit(vector: FloatArray) -> FloatArray:
    top = float(vector.max()) if len(vector) else 0.0
    return (vector / top if top > 0 else vector).astype(np.float32)


class Popularity(Recommender):
    """Items bought by the most customers in the last ``window_days`` days."""

    name = "popularity"

    def __init__(self, window_days: float = 30.0) -> None:
        super().__init__(window_days=window_days)
        self.popularity: FloatArray = np.zeros(0, dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        recent = data.since(self.params["window_days"]).binary()
        # Everything ever bought still outranks nothing, for catalogues with a quiet month.
        overall = data.binary()
        self.popularity = (
            np.asarray(recent.sum(axis=0)).ravel()
            + _FILL * _unit(np.asarray(overall.sum(axis=0)).ravel())
        ).astype(np.float32)
        return self

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        return np.tile(self.popularity, (len(users), 1))

    def state(self) -> State:
        return {"popularity": self.popularity}

    def load_state(self, state: State) -> None:
        self.popularity = state["popularity"].astype(np.float32)


class PersonalFrequency(Recommender):
    """The customer's own most bought items (recent baskets count more, items people come back
    for count more), then what is popular.

    In a blend, each customer's own items also count more the more of a creature of habit
    they are (``habit_power``, :meth:`habit`); alone, that changes nothing, as it scales all of
    one customer's items alike."""

    name = "top_frequency"

    def __init__(
        self,
        half_life_days: float = 60.0,
        repeat_power: float = 0.0,
        window_days: float = 30.0,
        habit_power: float = 0.0,
    ) -> None:
        super().__init__(
            half_life_days=half_life_days,
            repeat_power=repeat_power,
            window_days=window_days,
            habit_power=habit_power,
        )
        self.repeat: FloatArray = np.zeros(0, dtype=np.float32)
        # The share of all purchases that were of an item the customer had bought before.
        self.usual_habit = 0.0
        self.popularity = Popularity(window_days)

    def fit(self, data: Interactions) -> Self:
        self.repeat = repeat_rate(data)
        self.usual_habit = repeat_share(data.counts())
        self.popularity.fit(data)
        return self

    def habit(self, data: Interactions, users: IntArray) -> FloatArray:
        """Per customer, the weight their own items get beside other sources: how much more
        often than the usual customer they buy again what they bought before (their share of
        purchases that were repeats, shrunk toward the usual share by ``HABIT_PRIOR``
        purchases, over the usual share), to ``habit_power``. A regular who buys the same
        things every week gets more of them; someone who tries something new each time gets
        more of what others found. 1 for everyone at power 0, or without a usual share
        (models saved before it)."""
        counts = data.counts()
        known = users < counts.shape[0]
        purchases = np.zeros(len(users), dtype=np.float64)
        distinct = np.zeros(len(users), dtype=np.float64)
        chosen = counts[users[known]]
        purchases[known] = np.asarray(chosen.sum(axis=1)).ravel()
        distinct[known] = np.diff(chosen.indptr)
        return self._habit(purchases, distinct)

    def _habit(
        self, purchases: npt.NDArray[np.float64], distinct: npt.NDArray[np.float64]
    ) -> FloatArray:
        power = float(self.params.get("habit_power", 0.0))
        if not power or self.usual_habit <= 0:
            return np.ones(len(purchases), dtype=np.float32)
        usual = self.usual_habit
        share = (purchases - distinct + HABIT_PRIOR * usual) / (purchases + HABIT_PRIOR)
        factor: FloatArray = np.power(share / usual, power).astype(np.float32)
        return factor

    def own(
        self,
        data: Interactions,
        users: IntArray,
        repeat_power: float | None = None,
        half_life_days: float | None = None,
    ) -> FloatArray:
        """Repeat-aware frequency of the customer's own items, best scaled to the customer's
        habit factor (:meth:`habit`). ``repeat_power`` and ``half_life_days`` override the
        model's own (the weight search tries several)."""
        power = self.params["repeat_power"] if repeat_power is None else repeat_power
        half_life = self.params["half_life_days"] if half_life_days is None else half_life_days
        history = rows(data.recency_weighted(half_life), users).toarray()
        own = _row_normalised(history * np.power(self.repeat, power))
        own *= self.habit(data, users)[:, None]
        return own

    def prepare(self, data: Interactions) -> None:
        data.recency_weighted(self.params["half_life_days"])

    def own_one(self, data: Interactions, user: int, repeat_power: float) -> FloatArray:
        """:meth:`own` for one customer, as a vector, straight from the history's arrays."""
        items, weights = row_entries(data.recency_weighted(self.params["half_life_days"]), user)
        own = np.zeros(data.shape[1], dtype=np.float32)
        own[items] = weights * np.power(self.repeat[items], repeat_power)
        _, baskets = row_entries(data.counts(), user)
        habit = self._habit(np.asarray([baskets.sum()]), np.asarray([len(baskets)], float))[0]
        scaled: FloatArray = _unit(own) * habit
        return scaled

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        own = self.own(data, users)
        bought = own > 0
        ranked: FloatArray = (
            bought * (1.0 + own) + _FILL * _unit(self.popularity.popularity)
        ).astype(np.float32)
        return ranked

    def state(self) -> State:
        return {
            "repeat": self.repeat,
            "usual_habit": np.asarray(self.usual_habit, dtype=np.float64),
            **self.popularity.state(),
        }

    def load_state(self, state: State) -> None:
        self.repeat = state["repeat"].astype(np.float32)
        self.usual_habit = float(state.get("usual_habit", 0.0))
        self.popularity.load_state(state)


class _Neighbourhood(Recommender):
    """Shared by models that score an item by its similarity to what the customer bought:
    ``similarity[i, j]`` says how much buying ``i`` predicts ``j``."""

    def __init__(self, half_life_days: float = 90.0, **params: Any) -> None:
        super().__init__(half_life_days=half_life_days, **params)
        self.similarity = sparse.csr_matrix((0, 0), dtype=np.float32)

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        history = rows(data.recency_weighted(self.params["half_life_days"]), users)
        return np.asarray((history @ self.similarity).toarray(), dtype=np.float32)

    def prepare(self, data: Interactions) -> None:
        data.recency_weighted(self.params["half_life_days"])

    def scores_one(self, data: Interactions, user: int) -> FloatArray:
        """``scores`` for one customer, as a vector, without building sparse matrices."""
        items, weights = row_entries(data.recency_weighted(self.params["half_life_days"]), user)
        return weighted_rows(self.similarity, items, weights)

    def similar(self, item: int, count: int) -> list[tuple[int, float]]:
        neighbours, similarity = row_entries(self.similarity, item)
        order = np.lexsort((neighbours, -similarity))[:count]
        return [(int(neighbours[i]), float(similarity[i])) for i in order if similarity[i] > 0]

    def state(self) -> State:
        s = self.similarity.tocsr()
        return {
            "similarity_data": s.data,
            "similarity_indices": s.indices,
            "similarity_indptr": s.indptr,
            "similarity_shape": np.asarray(s.shape, dtype=np.int64),
        }

    def load_state(self, state: State) -> None:
        self.similarity = sparse.csr_matrix(
            (
                state["similarity_data"],
                state["similarity_indices"],
                state["similarity_indptr"],
            ),
            shape=tuple(int(n) for n in state["similarity_shape"]),
        )


def keep_top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """The ``keep`` largest entries of each row (ties to the lower column), the rest dropped."""
    matrix = matrix.tocsr()
    data, indices, indptr = [], [], [0]
    for row in range(matrix.shape[0]):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        values, columns = matrix.data[start:stop], matrix.indices[start:stop]
        if len(values) > keep:
            chosen = np.lexsort((columns, -values))[:keep]
            values, columns = values[chosen], columns[chosen]
        data.append(values)
        indices.append(columns)
        indptr.append(indptr[-1] + len(values))
    return sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int32),
            np.asarray(indptr),
        ),
        shape=matrix.shape,
        dtype=np.float32,
    )


def _top_per_row_dense(matrix: npt.NDArray[np.float32], keep: int) -> sparse.coo_matrix:
    """The ``keep`` largest positive entries of each row of a dense matrix, as COO."""
    keep = min(keep, matrix.shape[1])
    columns = np.argpartition(-matrix, keep - 1, axis=1)[:, :keep]
    values = np.take_along_axis(matrix, columns, axis=1)
    rows = np.repeat(np.arange(matrix.shape[0]), keep)
    positive = values.ravel() > 0
    return sparse.coo_matrix(
        (values.ravel()[positive], (rows[positive], columns.ravel()[positive])),
        shape=matrix.shape,
    )


class ItemKNN(_Neighbourhood):
    """Item-to-item cosine similarity over who bought what, shrunk for items with few buyers,
    ``neighbours`` kept per item. ``self_weight`` is how much an item counts as similar to
    itself: above zero, what the customer already buys ranks among the neighbours."""

    name = "item_knn"

    def __init__(
        self,
        neighbours: int = 100,
        shrink: float = 10.0,
        half_life_days: float = 90.0,
        self_weight: float = 0.0,
    ) -> None:
        super().__init__(
            half_life_days, neighbours=neighbours, shrink=shrink, self_weight=self_weight
        )

    def fit(self, data: Interactions) -> Self:
        bought = data.binary()
        co = (bought.T @ bought).tocsr().astype(np.float32)
        buyers = np.sqrt(np.asarray(bought.sum(axis=0)).ravel()).astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        coo.data = coo.data / (buyers[coo.row] * buyers[coo.col] + self.params["shrink"])
        similarity = keep_top_per_row(coo.tocsr(), int(self.params["neighbours"]))
        if self.params["self_weight"]:
            similarity = (
                similarity
                + sparse.identity(similarity.shape[0], np.float32, format="csr")
                * float(self.params["self_weight"])
            ).tocsr()
        self.similarity = similarity
        return self


def _inverse(gram: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The inverse of a Gram matrix with a ridge on its diagonal. The ridge makes it positive
    definite, so a Cholesky inverse serves: a quarter of LU's time (0.5 s against 2.2 s for
    Ta-Feng's 3,000 items), in single precision, which the ridge keeps well conditioned."""
    factorise, invert = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, failed = factorise(gram, lower=False, clean=False)
    if not failed:
        upper, failed = invert(factor, lower=False)
    if failed:  # not positive definite after all (no ridge): LU does not need it to be
        inverse: npt.NDArray[np.float32] = np.linalg.inv(gram)
        return inverse
    # potri fills the upper triangle only.
    symmetric: npt.NDArray[np.float32] = np.triu(upper) + np.triu(upper, 1).T
    return symmetric


class EASE(_Neighbourhood):
    """Embarrassingly shallow autoencoder (Steck, 2019): a closed-form item-to-item weight
    matrix, learnt over the ``max_items`` items with the most buyers (the inverse is cubic)."""

    name = "ease"

    def __init__(
        self,
        l2: float = 500.0,
        max_items: int = 3000,
        keep: int = 200,
        half_life_days: float = 90.0,
    ) -> None:
        super().__init__(half_life_days, l2=l2, max_items=max_items, keep=keep)

    def fit(self, data: Interactions) -> Self:
        bought = data.binary()
        buyers = np.asarray(bought.sum(axis=0)).ravel()
        # Items nobody bought have nothing to learn (and would only grow the inverse).
        bought_items = np.flatnonzero(buyers > 0)
        ranked = bought_items[np.argsort(-buyers[bought_items], kind="stable")]
        chosen = np.sort(ranked[: int(self.params["max_items"])])
        n_items = data.shape[1]
        if not len(chosen):
            self.similarity = sparse.csr_matrix((n_items, n_items), dtype=np.float32)
            return self
        sub = bought[:, chosen]
        gram = (sub.T @ sub).toarray().astype(np.float32)
        gram[np.diag_indices_from(gram)] += self.params["l2"]
        inverse = _inverse(gram)
        weights = (-inverse / np.diag(inverse)).astype(np.float32, copy=False)
        np.fill_diagonal(weights, 0.0)
        # Keep the strongest positive links per item: the full matrix is dense, mostly noise.
        local = _top_per_row_dense(weights, int(self.params["keep"]))
        self.similarity = sparse.csr_matrix(
            (local.data, (chosen[local.row], chosen[local.col])),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        return self


class ALS(Recommender):
    """Matrix factorisation for implicit feedback (Hu, Koren & Volinsky), as `implicit` does it."""

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 10,
        seed: int = 7,
    ) -> None:
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            seed=seed,
        )
        self.user_factors: FloatArray = np.zeros((0, factors), dtype=np.float32)
        self.item_factors: FloatArray = np.zeros((0, factors), dtype=np.float32)

    def fit(self, data: Interactions) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit wants BLAS on one thread (its own threads do the work); it checks, and
        # warns, when the model is made, so the limit is set before.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=int(self.params["factors"]),
                regularization=float(self.params["regularization"]),
                alpha=float(self.params["alpha"]),
                iterations=int(self.params["iterations"]),
                random_state=int(self.params["seed"]),
                # One thread gives the same factors for the same seed, run after run.
                num_threads=1,
            )
            model.fit(data.counts(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        known = users < len(self.user_factors)
        result = np.zeros((len(users), len(self.item_factors)), dtype=np.float32)
        result[known] = self.user_factors[users[known]] @ self.item_factors.T
        return result

    def scores_one(self, data: Interactions, user: int) -> FloatArray:
        if user >= len(self.user_factors):
            return np.zeros(len(self.item_factors), dtype=np.float32)
        scores: FloatArray = self.user_factors[user] @ self.item_factors.T
        return scores

    def similar(self, item: int, count: int) -> list[tuple[int, float]]:
        norms = np.linalg.norm(self.item_factors, axis=1) + 1e-9
        cosine = (self.item_factors @ self.item_factors[item]) / (norms * norms[item])
        cosine[item] = -np.inf
        order = np.argsort(-cosine, kind="stable")[:count]
        return [(int(i), float(cosine[i])) for i in order]

    def state(self) -> State:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def load_state(self, state: State) -> None:
        self.user_factors = state["user_factors"].astype(np.float32)
        self.item_factors = state["item_factors"].astype(np.float32)


# The placements a blend is weighed for: "repeat" may show what the customer bought before
# (a home page, an email), "discover" only what they have not (``exclude_purchased``).
PROTOCOLS = ("repeat", "discover")
# The candidate sources a blend weighs; ``own`` (the customer's own purchases) counts for
# nothing when only new items may be shown.
PARTS = ("own", "knn", "ease", "als", "popular", "upcf")
# Not a part but tuned with the parts' weights: the power of each item's in-season factor
# (:func:`in_season`) that multiplies the weighted sum; 0 leaves it out.
SEASON = "season"
WEIGHED = (*PARTS, SEASON)
SEASON_DAYS = 14.0
# Purchases added to both the recent and the usual count: an item sold a handful of times
# is not in season on one sale.
SEASON_PRIOR = 5.0


def in_season(
    data: Interactions, days: float = SEASON_DAYS, prior: float = SEASON_PRIOR
) -> FloatArray:
    """How much faster each item sold in the last ``days`` than it usually does over the whole
    history (1: as usual, 3: three times its usual rate): what is coming into season, or
    being launched, now. Both counts get ``prior`` purchases, so the factor moves away from 1
    only as far as the sales seen support."""
    items = data.shape[1]
    if not len(data.day):
        return np.ones(items, dtype=np.float32)
    recent = np.bincount(data.item[data.day >= data.end - days], minlength=items)
    overall = np.bincount(data.item, minlength=items)
    span = max(data.end - float(data.day.min()), days)
    usual = overall * (days / span)
    return ((recent + prior) / (usual + prior)).astype(np.float32)


# Settings that change what a part learns (the rest only change how parts are read).
_REFIT_PARAMS = (
    "window_days",
    "neighbours",
    "shrink",
    "l2",
    "max_items",
    "factors",
    "regularization",
    "alpha",
    "upcf_recency",
    "upcf_alpha",
    "upcf_q",
    "upcf_neighbours",
)


class Blend(Recommender):
    """Rapport's recommender: the customer's own repeat-aware favourites, items that go with
    what they bought (item-kNN and EASE neighbours), optionally matrix factorisation, what
    customers like them bought lately (UP-CF@r), and what is popular now; each scaled per
    customer so the best is 1 (their own items: to their habit factor, ``habit_power``,
    :meth:`PersonalFrequency.habit`), then weighted; the sum is multiplied by each item's
    in-season factor to the power ``season`` (0: not at all). The weights are the ``own`` ...
    ``upcf`` and ``season`` parameters for the repeat protocol and ``discover`` (a weight per
    part, and ``season``) for new items; training tunes both (``rapport.recommend.tuning``).
    Parts weighted zero in both are not fitted (nor saved)."""

    name = "rapport"

    def __init__(
        self,
        own: float = 1.0,
        knn: float = 0.3,
        ease: float = 0.3,
        als: float = 0.0,
        popular: float = 0.1,
        half_life_days: float = 60.0,
        repeat_power: float = 0.5,
        habit_power: float = HABIT_POWER,
        window_days: float = 30.0,
        neighbours: int = 100,
        shrink: float = 10.0,
        neighbour_half_life_days: float = 90.0,
        ease_half_life_days: float = 90.0,
        l2: float = 500.0,
        max_items: int = 3000,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        upcf: float = 0.0,
        upcf_recency: int = 1000,
        upcf_alpha: float = 0.75,
        upcf_q: float = 5.0,
        upcf_neighbours: int = 300,
        season: float = 0.0,
        discover: dict[str, float] | None = None,
    ) -> None:
        super().__init__(
            own=own,
            knn=knn,
            ease=ease,
            als=als,
            popular=popular,
            half_life_days=half_life_days,
            repeat_power=repeat_power,
            habit_power=habit_power,
            window_days=window_days,
            neighbours=neighbours,
            shrink=shrink,
            neighbour_half_life_days=neighbour_half_life_days,
            ease_half_life_days=ease_half_life_days,
            l2=l2,
            max_items=max_items,
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            upcf=upcf,
            upcf_recency=upcf_recency,
            upcf_alpha=upcf_alpha,
            upcf_q=upcf_q,
            upcf_neighbours=upcf_neighbours,
            season=season,
            discover=dict(discover) if discover is not None else None,
        )
        self.season: FloatArray = np.ones(0, dtype=np.float32)
        self.frequency = PersonalFrequency(half_life_days, repeat_power, window_days, habit_power)
        self.knn = ItemKNN(neighbours, shrink, neighbour_half_life_days)
        self.ease = EASE(l2, max_items, half_life_days=ease_half_life_days)
        self.als = ALS(factors, regularization, alpha)
        self.upcf = UPCF(upcf_recency, upcf_alpha, upcf_q, upcf_neighbours)

    def weights(self, protocol: str = "repeat") -> dict[str, float]:
        """How much each part counts for ``protocol``, and the in-season power. Without tuned
        discovery weights, new items are weighed as repeats are, less the customer's own
        items."""
        repeat = {name: float(self.params.get(name, 0.0)) for name in WEIGHED}
        if protocol == "repeat":
            return repeat
        tuned = self.params.get("discover")
        if tuned is None:
            return {**repeat, "own": 0.0}
        return {name: float(tuned.get(name, 0.0)) for name in WEIGHED}

    def set_weights(self, protocol: str, weights: dict[str, float]) -> None:
        """Re-weigh without refitting (parts weighted zero when fitted stay unfitted)."""
        if protocol == "repeat":
            self.params.update({name: float(weights.get(name, 0.0)) for name in WEIGHED})
        else:
            self.params["discover"] = {name: float(weights.get(name, 0.0)) for name in WEIGHED}

    def reweighed(self, params: dict[str, Any]) -> Blend:
        """A blend with ``params`` (new weights, and own-item settings) that keeps this one's
        fitted parts: ``params`` may change only what needs no refit."""
        blend = Blend(**params)
        for name in self._optional_parts():
            setattr(blend, name, getattr(self, name))
        blend.frequency.repeat = self.frequency.repeat
        blend.frequency.usual_habit = self.frequency.usual_habit
        blend.frequency.popularity = self.frequency.popularity
        blend.season = self.season
        if any(blend.params[k] != self.params[k] for k in _REFIT_PARAMS):
            raise ValueError("reweighed() cannot change settings that need a refit")
        return blend

    def _optional_parts(self) -> dict[str, Recommender]:
        return {"knn": self.knn, "ease": self.ease, "als": self.als, "upcf": self.upcf}

    def _used(self) -> dict[str, Recommender]:
        """The optional parts some protocol weighs, and item-kNN always (its item-to-item links
        explain picks and give complements where the catalogue has no categories): the ones
        fitted, saved and scored."""
        weighed = {
            part for protocol in PROTOCOLS for part, w in self.weights(protocol).items() if w
        }
        return {
            name: model
            for name, model in self._optional_parts().items()
            if name in weighed or name == "knn"
        }

    def fit(self, data: Interactions) -> Self:
        self.frequency.fit(data)
        self.season = in_season(data)
        for model in self._used().values():
            model.fit(data)
        return self

    def prepare(self, data: Interactions) -> None:
        self.frequency.prepare(data)
        for model in self._used().values():
            model.prepare(data)

    def parts(self, data: Interactions, users: IntArray) -> dict[str, FloatArray]:
        """Each candidate source's scores, scaled per customer (best = 1)."""
        parts = {
            "own": self.frequency.own(data, users, self.params["repeat_power"]),
            "popular": np.tile(_unit(self.frequency.popularity.popularity), (len(users), 1)),
        }
        for name, model in self._used().items():
            parts[name] = _row_normalised(np.maximum(model.scores(data, users), 0.0))
        return parts

    def parts_one(self, data: Interactions, user: int) -> dict[str, FloatArray]:
        """:meth:`parts` for one customer, as vectors: the serving path asks for one customer
        at a time, and building scipy matrices for one row cost more than the arithmetic. The
        same values up to float rounding."""
        parts = {
            "own": self.frequency.own_one(data, user, self.params["repeat_power"]),
            "popular": _unit(self.frequency.popularity.popularity),
        }
        for name, model in self._used().items():
            parts[name] = _unit(np.maximum(model.scores_one(data, user), 0.0))
        return parts

    def combine(self, parts: dict[str, FloatArray], protocol: str = "repeat") -> FloatArray:
        total = np.zeros_like(parts["popular"])
        for name, weight in self.weights(protocol).items():
            if weight and name in parts:
                total += weight * parts[name]
        boost = self.season_boost(protocol)
        return total if boost is None else (total * boost).astype(np.float32)

    def season_boost(self, protocol: str) -> FloatArray | None:
        """Each item's in-season factor to the protocol's power, which multiplies its weighted
        score; ``None`` where the protocol leaves the boost out."""
        power = self.weights(protocol)[SEASON]
        if not power or not len(self.season):
            return None
        boost: FloatArray = np.power(self.season, power)
        return boost

    def scores(self, data: Interactions, users: IntArray) -> FloatArray:
        return self.combine(self.parts(data, users))

    def similar(self, item: int, count: int) -> list[tuple[int, float]]:
        return self.knn.similar(item, count)

    def state(self) -> State:
        state = {f"frequency.{k}": v for k, v in self.frequency.state().items()}
        state["season"] = self.season
        for name, model in self._used().items():
            state.update({f"{name}.{k}": v for k, v in model.state().items()})
        return state

    def load_state(self, state: State) -> None:
        def part(prefix: str) -> State:
            return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}

        self.frequency.load_state(part("frequency."))
        # Models saved before the in-season factor served without it (their power is 0).
        items = len(self.frequency.repeat)
        self.season = state.get("season", np.ones(items)).astype(np.float32)
        for name, model in self._used().items():
            model.load_state(part(f"{name}."))


ALGORITHMS: dict[str, type[Recommender]] = {
    model.name: model for model in (Popularity, PersonalFrequency, ItemKNN, EASE, ALS, Blend)
}
