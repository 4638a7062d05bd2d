"""The blend's weights, chosen at each training for the retailer it serves.

Training carves a validation window from the end of the history (``HORIZON_DAYS``, longer
when that holds under a tenth of the purchases), fits every part on what came before, and
asks, for a sample of the customers who bought in the window, how well each part alone and
each weighing of the parts finds what they went on to buy (Recall@20). It does so twice:
with repeats allowed (a home page, an email) and for items new to the customer (a
``discover`` placement, ``exclude_purchased``). Each protocol starts from its best single part
or an even mix of every part, and a coordinate ascent only keeps changes that find clearly more;
the blend served is never one that scored below its best part on that window; the exact
figures (the served scoring, not the shortcut the search uses) are kept with the model version
and drawn on the admin page.

The search is cheap because it never ranks the whole catalogue: each customer's candidates
are the union of every part's top ``CANDIDATES`` items (a blend's top 20 is, in practice,
among them), held as one dense customers x candidates x parts array.
"""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy import sparse

from rapport.recommend.algorithms import HABIT_POWER, PARTS, PROTOCOLS, SEASON, Blend
from rapport.recommend.interactions import IntArray, Interactions, largest_per_row

HORIZON_DAYS = 28.0
MIN_WINDOW_SHARE = 0.1  # the window grows until it holds this share of the purchases
# Fewer customers to score, or a catalogue a top 20 nearly covers, measure nothing: the
# weights given are kept.
MIN_CUSTOMERS = 50
MIN_ITEMS = 2 * 20
SAMPLE = 1000  # validation customers of the last window (half as many of the one before)
CANDIDATES = 100  # per part, per customer
TOP = 20  # Recall@TOP is what the search maximises
WEIGHTS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
# The in-season factor's power (0: not at all), chosen with the weights.
SEASON_POWERS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
# The customer's own items are weighed by recency and by how often anyone buys the item again:
# both are chosen with the weights (each pair is one more column of the search).
OWN_HALF_LIVES = (14.0, 60.0, 365.0)
OWN_REPEAT_POWERS = (0.0, 0.5, 1.0)
ROUNDS = 2
# A weighing replaces the current one only when it finds this share more (and the mix of every
# part is kept over the best single part unless that part finds this share more).
MIN_GAIN = 0.01
# ... and the paired (same customers) gain is this many standard errors above nothing: a mean
# gain that a few customers make is the draw of customers, and does not carry to the next weeks.
GAIN_Z = 1.96
_CHUNK = 256

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Window:
    """Purchases before ``cutoff`` (same indexes as the full history), and per sampled
    customer the distinct items they bought from ``cutoff`` on."""

    train: Interactions
    cutoff: float
    days: float
    users: IntArray
    targets: list[IntArray]


@dataclass
class ProtocolResult:
    users: int
    weights: dict[str, float]
    parts: dict[str, float]  # Recall@20 of each part alone
    served: float  # Recall@20 of the weights chosen, scored as serving scores
    fallback: str | None = None  # the single part served when the blend scored below it

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "weights": self.weights,
            "parts": {k: round(float(v), 4) for k, v in self.parts.items()},
            "served": round(float(self.served), 4),
            "best_part": max(self.parts, key=lambda k: self.parts[k]) if self.parts else None,
            "fallback": self.fallback,
        }


@dataclass
class Tuning:
    """What training serves (``params`` for :class:`Blend`) and why (``report``)."""

    params: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)


def validation_window(
    data: Interactions, *, horizon_days: float = HORIZON_DAYS, sample: int = SAMPLE, seed: int = 0
) -> Window | None:
    """The last ``horizon_days`` (longer while they hold under a tenth of the purchases) as
    the window to predict; ``None`` when too few customers bought both before and in it."""
    if not len(data.day) or len(data.items) < MIN_ITEMS:
        return None
    days, cutoff = _window_span(data, horizon_days)
    before = data.day < cutoff
    train = Interactions(
        users=data.users,
        items=data.items,
        user=data.user[before],
        item=data.item[before],
        day=data.day[before],
        end=cutoff,
    )
    known = np.zeros(len(data.users), dtype=bool)
    known[train.user] = True
    after = ~before & known[data.user]
    users = np.unique(data.user[after])
    if len(users) < MIN_CUSTOMERS:
        return None
    order = np.argsort(data.user[after], kind="stable")
    items_sorted = data.item[after][order]
    bounds = np.searchsorted(data.user[after][order], users)
    bounds = np.append(bounds, len(order))
    targets = [np.unique(items_sorted[bounds[k] : bounds[k + 1]]) for k in range(len(users))]
    if len(users) > sample:
        chosen = np.sort(np.random.default_rng(seed).choice(len(users), sample, replace=False))
        users = users[chosen]
        targets = [targets[k] for k in chosen]
    return Window(train=train, cutoff=cutoff, days=days, users=users, targets=targets)


def _window_span(data: Interactions, horizon_days: float) -> tuple[float, float]:
    """The validation window's length in days and the day it starts."""
    ordered = np.sort(data.day)
    tenth_from_end = float(ordered[-max(int(len(ordered) * MIN_WINDOW_SHARE), 1)])
    days = max(horizon_days, math.ceil(data.end - tenth_from_end))
    return days, data.end - days


def why_unmeasured(data: Interactions, *, horizon_days: float = HORIZON_DAYS) -> str:
    """Why :func:`validation_window` finds no window in ``data``, in a retailer's words."""
    if not len(data.day):
        return "there are no purchases yet"
    if len(data.items) < MIN_ITEMS:
        return (
            f"only {len(data.items):,} products have been bought;"
            f" at least {MIN_ITEMS} are needed to measure"
        )
    days, cutoff = _window_span(data, horizon_days)
    before = data.day < cutoff
    returning = np.intersect1d(np.unique(data.user[before]), np.unique(data.user[~before]))
    one = "customer" if len(returning) == 1 else "customers"
    return (
        f"only {len(returning):,} {one} bought both in the last {days:g} days and before them;"
        f" at least {MIN_CUSTOMERS} are needed to measure"
    )


def tune(
    data: Interactions,
    params: dict[str, Any] | None = None,
    *,
    horizon_days: float = HORIZON_DAYS,
    sample: int = SAMPLE,
) -> Tuning:
    """The blend's parameters for ``data``: ``params`` (the parts' settings) with the weights,
    own-item recency and repeat power chosen on the validation window for both protocols. Too
    little history to measure keeps ``params`` as they are."""
    base = dict(params or {})
    window = validation_window(data, horizon_days=horizon_days, sample=sample)
    if window is None:
        # The defaults serve; the report says which weights, and why nothing was measured.
        defaults = Blend(**base)
        report: dict[str, Any] = {
            "measured": False,
            "reason": why_unmeasured(data, horizon_days=horizon_days),
            **{p: {"weights": defaults.weights(p), "served": None} for p in PROTOCOLS},
        }
        return Tuning(params=base, report=report)
    # The window before it too (when there is history enough): one window's season (its best
    # sellers) does not carry to the next weeks; what holds on two windows more likely does.
    earlier = validation_window(window.train, horizon_days=window.days, sample=sample // 2)
    every_part = {**base, **dict.fromkeys(PARTS, 1.0), "discover": None}
    with ThreadPoolExecutor(1) as pool:
        fitting = pool.submit(Blend(**every_part).fit, earlier.train) if earlier else None
        blend = Blend(**every_part).fit(window.train)
        measured = [(blend, window, _Search.build(blend, window))]
        if fitting is not None and earlier is not None:
            older = fitting.result()
            measured.append((older, earlier, _Search.build(older, earlier)))
    search = _Pooled([one for _, _, one in measured])
    chosen = dict(base)
    report = {
        "measured": True,
        "window_days": round(window.days, 1),
        "train_until_day": round(window.cutoff, 3),
        "earlier_window_days": round(earlier.days, 1) if earlier else None,
    }
    for protocol in PROTOCOLS:
        result, own_setting = search.best(protocol)
        if protocol == "repeat":
            chosen.update(result.weights)
            chosen.update(own_setting)
        else:
            chosen["discover"] = result.weights
        report[protocol] = result
    # The figures as serving scores them: the weights chosen, on the whole catalogue.
    served = dict.fromkeys(PROTOCOLS, 0.0)
    for fitted, measured_window, one in measured:
        final = fitted.reweighed(
            {**every_part, **chosen, **dict.fromkeys(PARTS, 1.0), "discover": None}
        )
        for protocol in PROTOCOLS:
            final.set_weights(protocol, report[protocol].weights)
        users = {p: one.users(p) for p in PROTOCOLS}
        for protocol, recall in served_recall(final, measured_window, users).items():
            served[protocol] += recall * len(users[protocol]) / max(search.count(protocol), 1)
    for protocol in PROTOCOLS:
        result = report[protocol]
        best_part = max(result.parts, key=lambda k: result.parts[k])
        result.served = served[protocol]
        if result.served < result.parts[best_part]:
            # The shortcut misjudged: serve the best part alone, which it measured exactly.
            result.weights = {**{part: float(part == best_part) for part in PARTS}, SEASON: 0.0}
            result.fallback = best_part
            result.served = result.parts[best_part]
            if protocol == "repeat":
                chosen.update(result.weights)
            else:
                chosen["discover"] = result.weights
        report[protocol] = result.as_dict()
    report["own"] = {
        "half_life_days": chosen.get("half_life_days"),
        "repeat_power": chosen.get("repeat_power"),
        # Not searched, but shown with the rest.
        "habit_power": chosen.get("habit_power", HABIT_POWER),
    }
    return Tuning(params=chosen, report=report)


def worth_taking(
    gain: npt.NDArray[np.float64], score: float, min_gain: float = MIN_GAIN, z: float = GAIN_Z
) -> bool:
    """Whether a weighing whose Recall@20 differs by ``gain`` per customer (against the
    current one, scoring ``score``) is clearly better: its mean gain is at least ``min_gain``
    of ``score`` and ``z`` standard errors above nothing. Gains within the sample's noise
    chase the window."""
    if not len(gain):
        return False
    mean = float(gain.mean())
    error = float(gain.std(ddof=1)) / math.sqrt(len(gain)) if len(gain) > 1 else 0.0
    return mean > score * min_gain and mean > z * error


def _mean(each: npt.NDArray[np.float64]) -> float:
    """Recall@20 over the customers from each one's (none: 0)."""
    return float(each.mean()) if len(each) else 0.0


def weighing_bound(blend: Blend, window: Window) -> dict[str, ProtocolResult]:
    """For evaluation only: the weighing of ``blend``'s fitted parts that finds most of what
    the window's own customers bought (no gain too small to take), scored as serving scores.
    Weights chosen before the window can hardly do better with the same parts (the search is
    greedy, so this is an estimate, not a proof); it shows how far weighing can go, and so
    when a goal needs new signals instead."""
    search = _Search.build(blend, window)
    best = {protocol: search.best(protocol, min_gain=0.0, z=0.0) for protocol in PROTOCOLS}
    found = {protocol: result for protocol, (result, _) in best.items()}
    weighed = blend.reweighed({**blend.params, **best["repeat"][1], "discover": None})
    for protocol, result in found.items():
        weighed.set_weights(protocol, result.weights)
    served = served_recall(weighed, window, {p: search.users(p) for p in PROTOCOLS})
    for protocol, result in found.items():
        result.served = served[protocol]
    return found


def served_recall(
    blend: Blend, window: Window, users: dict[str, npt.NDArray[np.int64]]
) -> dict[str, float]:
    """Recall@20 of ``blend`` per protocol over the window's customers at positions
    ``users[protocol]``, ranking the whole catalogue as serving does (new items only: the
    customer's history is never ranked, nor counted as a target)."""
    history = window.train.binary()
    every = functools.reduce(np.union1d, users.values(), np.zeros(0, np.int64))
    wanted = {protocol: set(rows.tolist()) for protocol, rows in users.items()}
    totals = dict.fromkeys(users, 0.0)
    for start in range(0, len(every), _CHUNK):
        rows = every[start : start + _CHUNK]
        customers = window.users[rows]
        parts = blend.parts(window.train, customers)
        for protocol in users:
            scores = blend.combine(parts, protocol).astype(np.float64)
            if protocol == "discover":
                scores[history[customers].nonzero()] = -np.inf
            top = min(TOP, scores.shape[1])
            best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
            for offset, row in enumerate(rows.tolist()):
                if row in wanted[protocol]:
                    target = _targets(window, row, history, protocol)
                    totals[protocol] += np.isin(best[offset], target).sum() / len(target)
    return {p: float(totals[p] / max(len(rows), 1)) for p, rows in users.items()}


def _own_columns(
    blend: Blend, data: Interactions, customers: IntArray, settings: list[dict[str, float]]
) -> list[FloatMatrix]:
    """The customers' own items under each (recency, repeat power) setting: what the blend's
    ``own`` part would be with that setting."""
    return [
        blend.frequency.own(
            data,
            customers,
            repeat_power=setting["repeat_power"],
            half_life_days=setting["half_life_days"],
        )
        for setting in settings
    ]


def _targets(window: Window, row: int, history: Any, protocol: str) -> IntArray:
    target = window.targets[row]
    if protocol == "discover":
        start, stop = history.indptr[window.users[row]], history.indptr[window.users[row] + 1]
        target = np.setdiff1d(target, history.indices[start:stop], assume_unique=True)
    return target


@dataclass(frozen=True)
class _Candidates:
    """One chunk's candidates for one protocol: whose (window position), each column's score,
    the log of the item's in-season factor, whether it was bought; and per customer of the
    chunk the number of targets."""

    owner: IntArray
    values: FloatMatrix
    seasons: FloatMatrix
    hits: npt.NDArray[np.bool_]
    rows: IntArray
    sizes: IntArray


def _own_candidates(own: list[FloatMatrix], seen: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Each customer's own items, or their best ``CANDIDATES`` under any own-item setting
    when they bought more."""
    chosen = seen.copy()
    many = np.flatnonzero(seen.sum(axis=1) > CANDIDATES)
    if len(many):
        best = functools.reduce(np.maximum, [values[many] for values in own])
        chosen[many] = False
        chosen[many[:, None], largest_per_row(best, CANDIDATES)] = True
        chosen[many] &= seen[many]
    return chosen


def _target_matrix(window: Window, n_items: int) -> tuple[sparse.csr_matrix, IntArray]:
    """The window's targets as a customers x items matrix, and per customer how many
    targets are items the training period never saw (findable by nobody, counted still)."""
    lengths = np.asarray([len(t) for t in window.targets], dtype=np.int64)
    items = np.concatenate(window.targets) if len(window.targets) else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(window.targets)), lengths)
    known = items >= 0
    matrix = sparse.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (owner[known], items[known])),
        shape=(len(window.targets), n_items),
    )
    unknown = np.bincount(owner[~known], minlength=len(window.targets))
    return matrix, unknown


class _Measures(Protocol):
    """What the weight search reads: one window's candidates, or several windows' pooled."""

    @property
    def columns(self) -> list[str]: ...

    @property
    def own_settings(self) -> list[dict[str, float]]: ...

    @property
    def rows(self) -> dict[str, npt.NDArray[np.int64]]: ...

    def _recall(self, protocol: str, weights: npt.NDArray[np.float32]) -> float: ...

    def _each_customer(
        self, protocol: str, weights: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]: ...


@dataclass
class _Search:
    """Every sampled customer's candidates and each column's scores for them: the parts,
    and the customer's own items once per (recency, repeat power) setting."""

    columns: list[str]
    own_settings: list[dict[str, float]]
    values: dict[str, FloatMatrix]  # protocol -> customers x candidates x columns
    seasons: dict[str, FloatMatrix]  # protocol -> customers x candidates: log in-season factor
    hits: dict[str, npt.NDArray[np.bool_]]  # protocol -> customers x candidates
    sizes: dict[str, npt.NDArray[np.float64]]  # protocol -> targets per customer
    rows: dict[str, npt.NDArray[np.int64]]  # protocol -> positions in the window
    _boosts: dict[tuple[str, float], FloatMatrix] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, blend: Blend, window: Window) -> _Search:
        own_settings = [
            {"half_life_days": h, "repeat_power": p}
            for h in OWN_HALF_LIVES
            for p in OWN_REPEAT_POWERS
        ]
        others = [p for p in PARTS if p != "own"]
        columns = [f"own@{i}" for i in range(len(own_settings))] + others
        history = window.train.binary()
        wanted, unknown = _target_matrix(window, history.shape[1])
        found: dict[str, list[_Candidates]] = {protocol: [] for protocol in PROTOCOLS}
        log_season = np.log(blend.season).astype(np.float32)
        reach = min(2 * CANDIDATES, history.shape[1])
        keep = min(CANDIDATES, reach)
        for start in range(0, len(window.users), _CHUNK):
            rows = np.arange(start, min(start + _CHUNK, len(window.users)))
            parts = blend.parts(window.train, window.users[rows])
            own = _own_columns(blend, window.train, window.users[rows], own_settings)
            seen = history[window.users[rows]].toarray() > 0
            targets = wanted[rows].toarray() > 0
            # Each part's best items, deep enough that its best CANDIDATES survive once the
            # customer's own items are removed (popularity is the same for everyone).
            deep = {
                part: (
                    np.broadcast_to(largest_per_row(parts[part][:1], reach), (len(rows), reach))
                    if part == "popular"
                    else largest_per_row(np.maximum(parts[part], 0.0), reach)
                )
                for part in others
            }
            every_row = np.arange(len(rows))[:, None]
            for protocol in PROTOCOLS:
                # Each part's best CANDIDATES (never the customer's own items for new ones);
                # for repeats also the customer's own items, best first under any setting.
                chosen = np.zeros(seen.shape, dtype=bool)
                for part, top in deep.items():
                    scores = np.maximum(np.take_along_axis(parts[part], top, axis=1), 0.0)
                    if protocol == "discover":
                        scores[np.take_along_axis(seen, top, axis=1)] = -1.0
                    best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
                    chosen[every_row, np.take_along_axis(top, best, axis=1)] = True
                if protocol == "repeat":
                    chosen |= _own_candidates(own, seen)
                    hit = targets
                else:
                    chosen &= ~seen
                    hit = targets & ~seen
                sizes = hit.sum(axis=1) + unknown[rows]
                chosen &= (sizes > 0)[:, None]
                r, c = np.nonzero(chosen)
                stacked = [values[r, c] for values in own] if protocol == "repeat" else []
                stacked += [parts[part][r, c] for part in others]
                found[protocol].append(
                    _Candidates(
                        rows[r], np.stack(stacked, axis=1), log_season[c], hit[r, c], rows, sizes
                    )
                )
        values, seasons, hits, sizes, positions = {}, {}, {}, {}, {}
        for protocol, pieces in found.items():
            depth = len(columns) if protocol == "repeat" else len(others)
            owner = np.concatenate([p.owner for p in pieces])
            every_size = np.concatenate([p.sizes for p in pieces])
            scored = np.concatenate([p.rows for p in pieces])[every_size > 0]
            # Candidates come row by row (np.nonzero is row-major): each customer's are a run.
            customer = np.searchsorted(scored, owner)
            counts = np.bincount(customer, minlength=len(scored))
            slot = np.arange(len(owner)) - (np.cumsum(counts) - counts)[customer]
            width = max(int(counts.max(initial=0)), 1)
            cube = np.full((len(scored), width, depth), -1.0, dtype=np.float32)
            hit = np.zeros((len(scored), width), dtype=bool)
            season = np.zeros((len(scored), width), dtype=np.float32)
            cube[customer, slot] = np.concatenate([p.values for p in pieces]).reshape(-1, depth)
            hit[customer, slot] = np.concatenate([p.hits for p in pieces])
            season[customer, slot] = np.concatenate([p.seasons for p in pieces])
            values[protocol], seasons[protocol], hits[protocol] = cube, season, hit
            sizes[protocol] = every_size[every_size > 0].astype(np.float64)
            positions[protocol] = scored.astype(np.int64)
        return cls(columns, own_settings, values, seasons, hits, sizes, positions)

    def users(self, protocol: str) -> npt.NDArray[np.int64]:
        return self.rows[protocol]

    def _boost(self, protocol: str, power: float) -> FloatMatrix:
        """Each candidate's in-season factor to ``power`` (the search asks for a few powers
        many times)."""
        key = (protocol, power)
        if key not in self._boosts:
            self._boosts[key] = np.exp(power * self.seasons[protocol]).astype(np.float32)
        return self._boosts[key]

    def count(self, protocol: str) -> int:
        return len(self.rows[protocol])

    def _recall(self: _Measures, protocol: str, weights: npt.NDArray[np.float32]) -> float:
        return _mean(self._each_customer(protocol, weights))

    def _each_customer(
        self, protocol: str, weights: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        cube = self.values[protocol]
        if not len(cube):
            return np.zeros(0, dtype=np.float64)
        # The last weight is the in-season power, the others the columns'. The cube and the
        # weights are finite by construction, yet OpenBLAS's kernels have now and then raised
        # the invalid-value flag on this product (numpy/numpy#24067 is one such case): the
        # flag, not the result, is ignored.
        with np.errstate(invalid="ignore"):
            scores = cube @ weights[:-1]
        if weights[-1]:
            scores *= self._boost(protocol, float(weights[-1]))
        # Padding (-1 in every column) scores below any real candidate whatever the weights.
        scores[cube[:, :, 0] < 0] = -np.inf
        top = min(TOP, scores.shape[1])
        best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        found = np.take_along_axis(self.hits[protocol], best, axis=1).sum(axis=1)
        each: npt.NDArray[np.float64] = found / self.sizes[protocol]
        return each

    def best(
        self: _Measures, protocol: str, min_gain: float = MIN_GAIN, z: float = GAIN_Z
    ) -> tuple[ProtocolResult, dict[str, float]]:
        """The weights with the best Recall@20 on the candidates, each part's own Recall@20,
        and the own-item setting chosen: coordinate ascent from the mix of every part (or from
        the best part alone when it is clearly better), taking only steps that are clearly
        better (:func:`worth_taking` with ``min_gain`` and ``z``), unless the ascent that
        takes every gain ends clearly better than that, by the same rule."""
        columns = (
            self.columns if protocol == "repeat" else [c for c in self.columns if "@" not in c]
        )
        own_columns = [c for c in columns if c.startswith("own@")]

        def vector(weights: dict[str, float], own: str | None) -> npt.NDArray[np.float32]:
            return np.asarray(
                [
                    weights.get("own", 0.0) if column == own else weights.get(column, 0.0)
                    for column in columns
                ]
                + [weights.get(SEASON, 0.0)],
                dtype=np.float32,
            )

        single: dict[str, float] = {}
        for part in (p for p in PARTS if protocol == "repeat" or p != "own"):
            if part == "own":
                own_scores = {
                    c: self._recall(protocol, vector({"own": 1.0}, c)) for c in own_columns
                }
                single["own"] = max(own_scores.values())
            else:
                single[part] = self._recall(protocol, vector({part: 1.0}, None))
        own = (
            max(own_columns, key=lambda c: self._recall(protocol, vector({"own": 1.0}, c)))
            if own_columns
            else None
        )
        axes = [p for p in PARTS if protocol == "repeat" or p != "own"]
        lead = max(single, key=lambda k: single[k])
        weights = {**{part: float(part == lead) for part in PARTS}, SEASON: 0.0}
        # Every part at once is the other start, and kept unless the best part alone finds
        # clearly more: on a window that favours one part by a little (a season's best
        # sellers), a mix is what holds up in the weeks after.
        mixed = {**{part: float(part in axes) for part in PARTS}, SEASON: 0.0}
        mixed_each = self._each_customer(protocol, vector(mixed, own))
        lead_each = self._each_customer(protocol, vector(weights, own))
        mixed_score = _mean(mixed_each)
        if not worth_taking(lead_each - mixed_each, mixed_score, min_gain, z):
            weights = mixed

        def ascend(
            weights: dict[str, float], own: str | None, step_gain: float, step_z: float
        ) -> tuple[dict[str, float], str | None, npt.NDArray[np.float64]]:
            """Coordinate ascent from ``weights``, taking each step that finds ``step_gain``
            more, ``step_z`` standard errors above nothing."""
            current = self._each_customer(protocol, vector(weights, own))
            for _ in range(ROUNDS):
                for part in [*axes, SEASON]:
                    for value in SEASON_POWERS if part == SEASON else WEIGHTS:
                        if value == weights[part]:
                            continue
                        trial = {**weights, part: value}
                        if not any(trial.get(p) for p in PARTS):
                            continue
                        found = self._each_customer(protocol, vector(trial, own))
                        if worth_taking(found - current, _mean(current), step_gain, step_z):
                            current, weights = found, trial
                for column in own_columns:
                    if column == own or not weights["own"]:
                        continue
                    found = self._each_customer(protocol, vector(weights, column))
                    if worth_taking(found - current, _mean(current), step_gain, step_z):
                        current, own = found, column
            return weights, own, current

        start, start_own = weights, own
        weights, own, current = ascend(start, start_own, min_gain, z)
        if min_gain or z:
            # A weighing can be clearly better only as a whole: several parts that each add
            # a little (on Online Retail, the customer's own items, EASE, ALS and the
            # in-season boost beside UP-CF@r). The ascent that takes every gain finds it; it
            # is served only if it is clearly better than the clear steps' choice by the
            # same rule, so what one window's draw of customers rewards is still left out.
            whole, whole_own, found = ascend(start, start_own, 0.0, 0.0)
            if worth_taking(found - current, _mean(current), min_gain, z):
                weights, own, current = whole, whole_own, found
        score = _mean(current)
        setting = self.own_settings[int(own.split("@")[1])] if own else {}
        outcome = ProtocolResult(
            users=len(self.rows[protocol]), weights=weights, parts=single, served=score
        )
        return outcome, setting


@dataclass
class _Pooled:
    """Several windows' searches as one: a weighing's Recall@20 is the mean over every
    window's customers."""

    searches: list[_Search]

    @property
    def columns(self) -> list[str]:
        return self.searches[0].columns

    @property
    def own_settings(self) -> list[dict[str, float]]:
        return self.searches[0].own_settings

    @property
    def rows(self) -> dict[str, npt.NDArray[np.int64]]:
        return {
            p: np.concatenate([one.rows[p] for one in self.searches]) for p in self.searches[0].rows
        }

    def count(self, protocol: str) -> int:
        return sum(one.count(protocol) for one in self.searches)

    def _each_customer(
        self, protocol: str, weights: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float64]:
        return np.concatenate([one._each_customer(protocol, weights) for one in self.searches])

    _recall = _Search._recall
    best = _Search.best
