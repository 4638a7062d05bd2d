"""Return risk before the sale: how likely is something in this basket to come back, and why.

The pieces, in the order they are used:

- plain records (:class:`BasketLine`, :class:`Basket`, :class:`LabelledBasket`) that the orders
  domain builds from its tables and importers build from CSV files;
- :class:`ReturnHistory`, a streaming feature builder that walks baskets in time order and
  describes each one using only what was known when it was placed;
- :class:`ReturnRiskModel`, a calibrated gradient-boosted classifier over those features, with
  :meth:`ReturnRiskModel.explain` for short human-readable reasons;
- :class:`HistoryBaseline`, the customer's own smoothed past return rate, to beat;
- :func:`suggest_incentive`, which turns a risk into an offer only where it pays.

A basket's return label is only *known* once its label window (30 days by default) has closed:
until then "not returned yet" is not the same as "kept". The history therefore counts a past
basket's label only from ``placed_at + label_window`` on, for the customer, the SKUs and the
categories alike. That one rule is what keeps features free of the future.

Saved models are ``.npz`` files of plain arrays plus a JSON header, read with
``allow_pickle=False``: loading never runs code from the file, and serving needs numpy only.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MODEL_FORMAT: Final = "rapport.return_risk"
MODEL_VERSION: Final = 1


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasketLine:
    """One line of a basket: a SKU, its category, how many and at what unit price.

    Parameters
    ----------
    sku : str
        Product identifier.
    category : str
        Category name used for category return rates (any stable label works).
    quantity : int
        Units on the line, at least 1.
    unit_price_minor : int
        Price per unit in minor units of the basket's currency, at least 0.
    """

    sku: str
    category: str
    quantity: int
    unit_price_minor: int

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity} for {self.sku}")
        if self.unit_price_minor < 0:
            raise ValueError(f"unit_price_minor must not be negative for {self.sku}")

    @property
    def value_minor(self) -> int:
        """Line value in minor units."""
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True, slots=True)
class Basket:
    """A basket as it stands before it is bought.

    Parameters
    ----------
    basket_id : str
        Unique identifier (an order or invoice number once bought).
    customer_id : str
        The customer it belongs to.
    placed_at : datetime
        When it is (or was) placed; must be timezone-aware.
    lines : tuple of BasketLine
        At least one line.
    channel : str, default "web"
        Sales channel, such as ``"web"``, ``"app"`` or ``"store"``.
    currency : str, default "EUR"
        ISO 4217 code of every ``unit_price_minor`` in the basket (two-decimal currencies).
    """

    basket_id: str
    customer_id: str
    placed_at: datetime
    lines: tuple[BasketLine, ...]
    channel: str = "web"
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if self.placed_at.tzinfo is None:
            raise ValueError(f"placed_at must be timezone-aware for basket {self.basket_id}")
        if not self.lines:
            raise ValueError(f"basket {self.basket_id} has no lines")

    @property
    def value_minor(self) -> int:
        """Basket value in minor units."""
        return sum(line.value_minor for line in self.lines)

    @property
    def units(self) -> int:
        """Units across all lines."""
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class LabelledBasket:
    """A past basket with its outcome.

    Parameters
    ----------
    basket : Basket
        The basket as bought.
    returned : bool
        Whether anything in it came back within the label window.
    returned_skus : frozenset of str, optional
        Which SKUs came back, when known. SKU and category return rates use it; when it is
        empty and ``returned`` is true, every SKU in the basket counts as returned.
    """

    basket: Basket
    returned: bool
    returned_skus: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.returned_skus and not self.returned:
            raise ValueError(f"basket {self.basket.basket_id} has returned SKUs but no return")
        unknown = self.returned_skus - {line.sku for line in self.basket.lines}
        if unknown:
            raise ValueError(f"returned SKUs {sorted(unknown)} are not in the basket")

    def sku_returned(self, sku: str) -> bool:
        """Whether this SKU counts as returned from this basket."""
        return sku in self.returned_skus if self.returned_skus else self.returned


# --- streaming history features ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """How the history smooths and when a label becomes known.

    Parameters
    ----------
    label_window_days : int, default 30
        A basket's label counts only from this many days after it was placed.
    customer_prior_strength : float, default 3.0
        Pseudo-baskets at the overall rate added to a customer's own record.
    item_prior_strength : float, default 10.0
        Pseudo-baskets at the overall line rate added to each SKU's and category's record.
    high_return_factor : float, default 1.5
        A category is "high-return" when its smoothed rate is this many times the overall.
    starting_rate, starting_strength : float, default 0.1 and 10.0
        Prior for the overall rate itself, so the first month (no closed labels yet) still
        has a number to smooth toward; it washes out after a few hundred baskets.
    """

    label_window_days: int = 30
    customer_prior_strength: float = 3.0
    item_prior_strength: float = 10.0
    high_return_factor: float = 1.5
    starting_rate: float = 0.1
    starting_strength: float = 10.0

    @property
    def label_window(self) -> timedelta:
        """The label window as a ``timedelta``."""
        return timedelta(days=self.label_window_days)


@dataclass(slots=True)
class _Tally:
    seen: int = 0
    returned: int = 0

    def rate(self, prior: float, strength: float) -> float:
        return (self.returned + strength * prior) / (self.seen + strength)


@dataclass(slots=True)
class _Customer:
    prior_baskets: int = 0
    last_at: datetime | None = None
    value_total_minor: int = 0
    recent: deque[datetime] = field(default_factory=deque)
    closed: _Tally = field(default_factory=_Tally)


# Feature order of the model's input matrix; BasketFeatures.vector() follows it.
NUMERIC_FEATURES: Final[tuple[str, ...]] = (
    "prior_baskets",
    "closed_baskets",
    "returned_baskets",
    "customer_return_rate",
    "is_new",
    "days_since_previous",
    "baskets_last_30_days",
    "customer_mean_value_minor",
    "value_minor",
    "value_vs_customer_mean",
    "lines",
    "units",
    "max_unit_price_minor",
    "mean_unit_price_minor",
    "sku_rate_max",
    "sku_rate_mean",
    "sku_any_return",
    "sku_known_share",
    "category_rate_max",
    "category_rate_mean",
    "high_return_category_share",
)

# Features that explain() moves together, because one sentence describes them together.
REASON_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "customer": (
        "prior_baskets",
        "closed_baskets",
        "returned_baskets",
        "customer_return_rate",
        "is_new",
    ),
    "recency": ("days_since_previous", "baskets_last_30_days"),
    "value": ("value_minor", "value_vs_customer_mean", "customer_mean_value_minor"),
    "size": ("lines", "units"),
    "price": ("max_unit_price_minor", "mean_unit_price_minor"),
    "items": ("sku_rate_max", "sku_rate_mean", "sku_any_return", "sku_known_share"),
    "categories": ("category_rate_max", "category_rate_mean", "high_return_category_share"),
}


@dataclass(frozen=True, slots=True)
class BasketFeatures:
    """What was known about a basket when it was placed.

    Every count and rate here comes from baskets placed earlier, and every return rate only
    from earlier baskets whose label window had closed. ``None`` means "no history" (a new
    customer has no previous basket); it becomes NaN in :meth:`vector`.
    """

    basket_id: str
    customer_id: str
    placed_at: datetime
    channel: str
    currency: str
    prior_baskets: int
    closed_baskets: int
    returned_baskets: int
    customer_return_rate: float
    is_new: bool
    days_since_previous: float | None
    baskets_last_30_days: int
    customer_mean_value_minor: float | None
    value_minor: int
    value_vs_customer_mean: float | None
    lines: int
    units: int
    max_unit_price_minor: int
    mean_unit_price_minor: float
    sku_rate_max: float
    sku_rate_mean: float
    sku_any_return: float
    sku_known_share: float
    category_rate_max: float
    category_rate_mean: float
    high_return_category_share: float
    overall_rate: float
    top_sku: str | None
    top_sku_rate: float
    top_category: str | None
    top_category_rate: float

    def vector(self) -> tuple[float, ...]:
        """The numeric features in :data:`NUMERIC_FEATURES` order, NaN for "no history"."""
        return tuple(_as_float(getattr(self, name)) for name in NUMERIC_FEATURES)


def _as_float(value: object) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool | int | float):
        return float(value)
    raise TypeError(f"not a numeric feature: {value!r}")


class ReturnHistory:
    """Streaming state of everything known so far: customers, SKUs, categories, labels.

    Feed it baskets in time order: call :meth:`features` for a basket *before* calling
    :meth:`record` for it. Labels wait in a heap keyed by the time their window closes and
    are applied as the clock passes that time, so the whole stream costs O(n log n) for n
    baskets (plus O(lines) per basket) and memory grows with customers and SKUs, not lines.

    Parameters
    ----------
    config : HistoryConfig, optional
        Smoothing and label window; the defaults suit daily retail.

    Notes
    -----
    For serving, rebuild the history from stored orders (with their labels as known now)
    whenever labels change, e.g. nightly; a label recorded for a basket whose window is still
    open stays invisible until the window closes, exactly as in training.
    """

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = config or HistoryConfig()
        self._window = self.config.label_window
        self._now: datetime | None = None
        self._pending: list[tuple[datetime, int, LabelledBasket]] = []
        self._sequence = 0
        self._customers: dict[str, _Customer] = {}
        self._skus: dict[str, _Tally] = {}
        self._categories: dict[str, _Tally] = {}
        self._baskets = _Tally()
        self._sku_lines = _Tally()
        self._category_lines = _Tally()

    @classmethod
    def stream(
        cls, labelled_baskets: Iterable[LabelledBasket], config: HistoryConfig | None = None
    ) -> list[BasketFeatures]:
        """Features for every basket, each from what was known before it.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            Past baskets in any order; basket ids must be unique.
        config : HistoryConfig, optional
            Passed to a fresh history.

        Returns
        -------
        list of BasketFeatures
            In the input order.
        """
        items = list(labelled_baskets)
        ids = {item.basket.basket_id for item in items}
        if len(ids) != len(items):
            raise ValueError("basket ids must be unique")
        order = sorted(
            range(len(items)),
            key=lambda i: (items[i].basket.placed_at, items[i].basket.basket_id),
        )
        history = cls(config)
        found: list[BasketFeatures | None] = [None] * len(items)
        for index in order:
            found[index] = history.features(items[index].basket)
            history.record(items[index])
        return [row for row in found if row is not None]

    @property
    def overall_rate(self) -> float:
        """Share of closed baskets returned, smoothed by the starting prior."""
        return self._baskets.rate(self.config.starting_rate, self.config.starting_strength)

    def customer_record(self, customer_id: str) -> tuple[int, int]:
        """``(closed baskets, returned among them)`` for a customer, as of the last basket seen."""
        customer = self._customers.get(customer_id)
        if customer is None:
            return 0, 0
        return customer.closed.seen, customer.closed.returned

    def record(self, labelled: LabelledBasket) -> None:
        """Add a basket that was placed, with its label; the label counts once its window closes.

        Parameters
        ----------
        labelled : LabelledBasket
            Must not be earlier than the last basket seen.
        """
        basket = labelled.basket
        self._advance(basket.placed_at)
        customer = self._customers.setdefault(basket.customer_id, _Customer())
        customer.prior_baskets += 1
        customer.last_at = basket.placed_at
        customer.value_total_minor += basket.value_minor
        customer.recent.append(basket.placed_at)
        self._sequence += 1
        # The sequence number breaks ties so the heap never compares two LabelledBaskets.
        heapq.heappush(self._pending, (basket.placed_at + self._window, self._sequence, labelled))

    def features(self, basket: Basket) -> BasketFeatures:
        """Describe a basket from what is known at ``basket.placed_at``.

        Parameters
        ----------
        basket : Basket
            Must not be earlier than the last basket seen (the clock only moves forward).

        Returns
        -------
        BasketFeatures
        """
        at = basket.placed_at
        self._advance(at)
        config = self.config
        overall = self.overall_rate
        line_rate = self._sku_lines.rate(config.starting_rate, config.starting_strength)
        category_base = self._category_lines.rate(config.starting_rate, config.starting_strength)
        strength = config.item_prior_strength

        customer = self._customers.get(basket.customer_id) or _Customer()
        while customer.recent and customer.recent[0] <= at - timedelta(days=30):
            customer.recent.popleft()
        closed = customer.closed
        mean_value = (
            customer.value_total_minor / customer.prior_baskets if customer.prior_baskets else None
        )
        value = basket.value_minor
        units = basket.units

        sku_value: dict[str, int] = {}
        category_value: dict[str, int] = {}
        for line in basket.lines:
            sku_value[line.sku] = sku_value.get(line.sku, 0) + line.value_minor
            category_value[line.category] = category_value.get(line.category, 0) + line.value_minor
        sku = _RateSummary.of(sku_value, self._skus, line_rate, strength)
        category = _RateSummary.of(category_value, self._categories, category_base, strength)
        high_return_value = sum(
            amount
            for name, amount in category_value.items()
            if name in category.known
            and category.known[name] >= config.high_return_factor * category_base
        )
        return BasketFeatures(
            basket_id=basket.basket_id,
            customer_id=basket.customer_id,
            placed_at=at,
            channel=basket.channel,
            currency=basket.currency,
            prior_baskets=customer.prior_baskets,
            closed_baskets=closed.seen,
            returned_baskets=closed.returned,
            customer_return_rate=closed.rate(overall, config.customer_prior_strength),
            is_new=customer.prior_baskets == 0,
            days_since_previous=(
                (at - customer.last_at).total_seconds() / 86_400 if customer.last_at else None
            ),
            baskets_last_30_days=len(customer.recent),
            customer_mean_value_minor=mean_value,
            value_minor=value,
            value_vs_customer_mean=value / mean_value if mean_value else None,
            lines=len(basket.lines),
            units=units,
            max_unit_price_minor=max(line.unit_price_minor for line in basket.lines),
            mean_unit_price_minor=value / units,
            sku_rate_max=sku.max_rate,
            sku_rate_mean=sku.mean_rate,
            sku_any_return=sku.any_rate,
            sku_known_share=len(sku.known) / len(sku_value),
            category_rate_max=category.max_rate,
            category_rate_mean=category.mean_rate,
            high_return_category_share=high_return_value / value if value else 0.0,
            overall_rate=overall,
            top_sku=sku.top,
            top_sku_rate=sku.known.get(sku.top, line_rate) if sku.top else line_rate,
            top_category=category.top,
            top_category_rate=(
                category.known.get(category.top, category_base) if category.top else category_base
            ),
        )

    def _advance(self, at: datetime) -> None:
        if self._now is not None and at < self._now:
            raise ValueError(f"baskets must arrive in time order: {at} is before {self._now}")
        self._now = at
        while self._pending and self._pending[0][0] <= at:
            _, _, labelled = heapq.heappop(self._pending)
            self._close(labelled)

    def _close(self, labelled: LabelledBasket) -> None:
        basket = labelled.basket
        self._baskets.seen += 1
        self._baskets.returned += labelled.returned
        closed = self._customers[basket.customer_id].closed
        closed.seen += 1
        closed.returned += labelled.returned
        # A SKU or category that appears on several lines still counts once per basket.
        categories: dict[str, bool] = {}
        for sku in dict.fromkeys(line.sku for line in basket.lines):
            returned = labelled.sku_returned(sku)
            tally = self._skus.setdefault(sku, _Tally())
            tally.seen += 1
            tally.returned += returned
            self._sku_lines.seen += 1
            self._sku_lines.returned += returned
        for line in basket.lines:
            categories[line.category] = categories.get(line.category, False) or (
                labelled.sku_returned(line.sku)
            )
        for name, returned in categories.items():
            tally = self._categories.setdefault(name, _Tally())
            tally.seen += 1
            tally.returned += returned
            self._category_lines.seen += 1
            self._category_lines.returned += returned


@dataclass(frozen=True, slots=True)
class _RateSummary:
    """Smoothed return rates of a basket's SKUs (or categories), summarised."""

    known: dict[str, float]
    max_rate: float
    mean_rate: float
    any_rate: float
    top: str | None

    @classmethod
    def of(
        cls, values: dict[str, int], tallies: dict[str, _Tally], base: float, strength: float
    ) -> _RateSummary:
        rates: dict[str, float] = {}
        known: dict[str, float] = {}
        for name in values:
            tally = tallies.get(name)
            rate = tally.rate(base, strength) if tally else base
            rates[name] = rate
            if tally:
                known[name] = rate
        total = sum(values.values())
        if total:
            mean = sum(rates[name] * amount for name, amount in values.items()) / total
        else:
            mean = sum(rates.values()) / len(rates)
        keep = 1.0
        for rate in rates.values():
            keep *= 1.0 - rate
        # Highest rate first, then name, so the top item is stable across runs.
        top = min(known, key=lambda name: (-known[name], name)) if known else None
        return cls(known, max(rates.values()), mean, 1.0 - keep, top)


# --- baseline ------------------------------------------------------------------------------


class HistoryBaseline:
    """The customer's own past return rate, pulled toward the overall rate.

    The score is the mean of a beta posterior: ``(r + k p) / (n + k)`` for a customer with
    ``r`` returned out of ``n`` closed baskets, overall training rate ``p`` and prior strength
    ``k``. A new customer (``n = 0``) gets exactly ``p``.

    Parameters
    ----------
    prior_strength : float, optional
        ``k``. When omitted, :meth:`fit_features` picks it from a small grid by training
        log-likelihood, so the baseline is as good as it honestly can be.
    """

    STRENGTHS: Final = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)

    def __init__(self, *, prior_strength: float | None = None) -> None:
        self.prior_strength = prior_strength
        self.rate: float | None = None

    def fit(
        self, labelled_baskets: Iterable[LabelledBasket], config: HistoryConfig | None = None
    ) -> HistoryBaseline:
        """Learn the overall rate (and ``k`` if not given) from past baskets.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            Training baskets.
        config : HistoryConfig, optional
            Label window used to decide which past labels a basket may see.

        Returns
        -------
        HistoryBaseline
            ``self``.
        """
        items = list(labelled_baskets)
        rows = ReturnHistory.stream(items, config)
        return self.fit_features(rows, [item.returned for item in items])

    def fit_features(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool]
    ) -> HistoryBaseline:
        """Like :meth:`fit`, from features already built by :class:`ReturnHistory`."""
        if not rows or len(rows) != len(returned):
            raise ValueError("need one label per row and at least one row")
        labels = np.asarray(returned, dtype=np.float64)
        self.rate = float(labels.mean())
        if self.prior_strength is None:
            rate = self.rate
            scores = {
                strength: _log_likelihood(self._score(rows, rate, strength), labels)
                for strength in self.STRENGTHS
            }
            self.prior_strength = max(self.STRENGTHS, key=lambda strength: scores[strength])
        return self

    def predict_proba(self, basket: Basket, history: ReturnHistory) -> float:
        """Probability that something in ``basket`` comes back, from the customer's record."""
        return float(self.predict_features([history.features(basket)])[0])

    def predict_features(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        """Scores for many baskets at once, from their features."""
        if self.rate is None or self.prior_strength is None:
            raise RuntimeError("fit the baseline first")
        return self._score(rows, self.rate, self.prior_strength)

    @staticmethod
    def _score(rows: Sequence[BasketFeatures], rate: float, strength: float) -> FloatArray:
        returned = np.array([row.returned_baskets for row in rows], dtype=np.float64)
        closed = np.array([row.closed_baskets for row in rows], dtype=np.float64)
        return (returned + strength * rate) / (closed + strength)


def _log_likelihood(probabilities: FloatArray, labels: FloatArray) -> float:
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return float(np.sum(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))


# --- model ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoostingParams:
    """One candidate setting for the gradient-boosted trees."""

    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float


# Light tuning: on Online Retail the shallow, heavily regularised settings validate best, so
# the grid spans that neighbourhood rather than deep trees.
DEFAULT_GRID: Final[tuple[BoostingParams, ...]] = (
    BoostingParams(0.05, 200, 15, 40, 1.0),
    BoostingParams(0.05, 150, 7, 100, 1.0),
    BoostingParams(0.03, 400, 7, 100, 1.0),
    BoostingParams(0.03, 300, 7, 200, 1.0),
)


@dataclass(frozen=True, slots=True)
class FitReport:
    """What :meth:`ReturnRiskModel.fit` tried on its validation window and what it chose."""

    rows: int
    positives: int
    validation_start: str | None
    validation_pr_auc: dict[str, float]
    validation_brier: dict[str, float]
    params: BoostingParams
    calibration: str


@dataclass(frozen=True, slots=True)
class _Forest:
    """Gradient-boosted trees flattened into arrays, scored with numpy alone."""

    baseline: float
    feature: IntArray
    threshold: FloatArray
    missing_left: BoolArray
    left: IntArray
    right: IntArray
    is_leaf: BoolArray
    value: FloatArray
    roots: IntArray

    def raw(self, features: FloatArray) -> FloatArray:
        """Sum of leaf values per row: the classifier's log-odds before calibration."""
        count = features.shape[0]
        out = np.empty(count, dtype=np.float64)
        # Walk all trees at once, a chunk of rows at a time, so memory stays small.
        chunk = max(1, 200_000 // max(1, len(self.roots)))
        for start in range(0, count, chunk):
            block = features[start : start + chunk]
            rows = np.arange(block.shape[0])[:, None]
            node = np.broadcast_to(self.roots, (block.shape[0], len(self.roots))).copy()
            leaf = self.is_leaf[node]
            while not leaf.all():
                x = block[rows, self.feature[node]]
                go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
                node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
                leaf = self.is_leaf[node]
            leaves = self.value[node]
            # Add tree by tree, as scikit-learn does, so scores match it to the last bit.
            stacked = np.concatenate([np.full((block.shape[0], 1), self.baseline), leaves], axis=1)
            out[start : start + chunk] = np.cumsum(stacked, axis=1)[:, -1]
        return out

    def arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {
            f"{prefix}baseline": np.array([self.baseline]),
            f"{prefix}feature": self.feature,
            f"{prefix}threshold": self.threshold,
            f"{prefix}missing_left": self.missing_left,
            f"{prefix}left": self.left,
            f"{prefix}right": self.right,
            f"{prefix}is_leaf": self.is_leaf,
            f"{prefix}value": self.value,
            f"{prefix}roots": self.roots,
        }

    @classmethod
    def from_arrays(cls, data: Any, prefix: str) -> _Forest:
        return cls(
            baseline=float(data[f"{prefix}baseline"][0]),
            feature=np.asarray(data[f"{prefix}feature"], dtype=np.int64),
            threshold=np.asarray(data[f"{prefix}threshold"], dtype=np.float64),
            missing_left=np.asarray(data[f"{prefix}missing_left"], dtype=np.bool_),
            left=np.asarray(data[f"{prefix}left"], dtype=np.int64),
            right=np.asarray(data[f"{prefix}right"], dtype=np.int64),
            is_leaf=np.asarray(data[f"{prefix}is_leaf"], dtype=np.bool_),
            value=np.asarray(data[f"{prefix}value"], dtype=np.float64),
            roots=np.asarray(data[f"{prefix}roots"], dtype=np.int64),
        )

    @classmethod
    def from_sklearn(cls, estimator: Any) -> _Forest:
        """Flatten a fitted ``HistGradientBoostingClassifier`` (numeric features only)."""
        parts: dict[str, list[npt.NDArray[Any]]] = {
            name: [] for name in ("feature", "threshold", "missing", "left", "right", "leaf")
        }
        values: list[FloatArray] = []
        roots: list[int] = []
        offset = 0
        for (predictor,) in estimator._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["missing"].append(nodes["missing_go_to_left"].astype(np.bool_))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["leaf"].append(nodes["is_leaf"].astype(np.bool_))
            values.append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        return cls(
            baseline=float(np.asarray(estimator._baseline_prediction).ravel()[0]),
            feature=np.concatenate(parts["feature"]),
            threshold=np.concatenate(parts["threshold"]),
            missing_left=np.concatenate(parts["missing"]),
            left=np.concatenate(parts["left"]),
            right=np.concatenate(parts["right"]),
            is_leaf=np.concatenate(parts["leaf"]),
            value=np.concatenate(values),
            roots=np.asarray(roots, dtype=np.int64),
        )


@dataclass(frozen=True, slots=True)
class _Calibrator:
    """Isotonic (points to interpolate) or sigmoid (``a``, ``b``) map from log-odds."""

    method: str
    x: FloatArray
    y: FloatArray

    def __call__(self, raw: FloatArray) -> FloatArray:
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        a, b = float(self.x[0]), float(self.x[1])
        return 1.0 / (1.0 + np.exp(a * raw + b))

    @classmethod
    def from_sklearn(cls, method: str, calibrator: Any) -> _Calibrator:
        if method == "isotonic":
            return cls(
                method,
                np.asarray(calibrator.X_thresholds_, dtype=np.float64),
                np.asarray(calibrator.y_thresholds_, dtype=np.float64),
            )
        ab = np.array([calibrator.a_, calibrator.b_], dtype=np.float64)
        return cls(method, ab, np.zeros(0, dtype=np.float64))


class ReturnRiskModel:
    """Calibrated gradient-boosted trees over :class:`BasketFeatures`.

    ``fit`` carves the last ``validation_share`` of the training period (by time) off as a
    validation window, picks the boosting settings with the best validation PR AUC, then picks
    isotonic or sigmoid calibration by validation Brier score, and finally refits
    ``CalibratedClassifierCV`` on the whole training period: ``calibration_folds`` boosted
    models, each calibrated on the fold it did not see, averaged.

    Parameters
    ----------
    history_config : HistoryConfig, optional
        Used by :meth:`fit` and :meth:`new_history`; saved with the model.
    grid : sequence of BoostingParams, optional
        Candidate settings; :data:`DEFAULT_GRID` when omitted.
    calibration_folds : int, default 5
    validation_share : float, default 0.2
    threads : int or None, default 1
        OpenMP threads for training. One by default: on tables of a few thousand rows, thread
        start-up costs more than it saves, and on a busy machine spinning threads made fits
        several times slower. ``None`` uses every core. Scoring uses numpy only.
    """

    def __init__(
        self,
        *,
        history_config: HistoryConfig | None = None,
        grid: Sequence[BoostingParams] | None = None,
        calibration_folds: int = 5,
        validation_share: float = 0.2,
        threads: int | None = 1,
    ) -> None:
        self.history_config = history_config or HistoryConfig()
        self.grid = tuple(grid or DEFAULT_GRID)
        self.calibration_folds = calibration_folds
        self.validation_share = validation_share
        self.threads = threads
        self.channels: tuple[str, ...] = ()
        self.reference: FloatArray = np.zeros(0, dtype=np.float64)
        self.report: FitReport | None = None
        self._forests: list[_Forest] = []
        self._calibrators: list[_Calibrator] = []

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column names of the model's input: numeric features, then one column per channel."""
        return (*NUMERIC_FEATURES, *(f"channel={name}" for name in self.channels))

    def new_history(self) -> ReturnHistory:
        """An empty history configured as in training."""
        return ReturnHistory(self.history_config)

    def fit(self, labelled_baskets: Iterable[LabelledBasket], *, seed: int = 0) -> ReturnRiskModel:
        """Build features from past baskets and fit the calibrated model.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            Training baskets, any order.
        seed : int, default 0
            Seeds the boosted trees; the same data and seed give the same model.

        Returns
        -------
        ReturnRiskModel
            ``self``.
        """
        items = list(labelled_baskets)
        rows = ReturnHistory.stream(items, self.history_config)
        return self.fit_features(rows, [item.returned for item in items], seed=seed)

    def fit_features(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool], *, seed: int = 0
    ) -> ReturnRiskModel:
        """Like :meth:`fit`, from features already built by :class:`ReturnHistory`."""
        # threadpoolctl comes with scikit-learn (one of its own requirements).
        from threadpoolctl import threadpool_limits

        if self.threads is None:
            return self._fit(rows, returned, seed=seed)
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return self._fit(rows, returned, seed=seed)

    def _fit(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool], *, seed: int
    ) -> ReturnRiskModel:
        from sklearn.calibration import CalibratedClassifierCV  # type: ignore[import-untyped]
        from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
        from sklearn.metrics import (  # type: ignore[import-untyped]
            average_precision_score,
            brier_score_loss,
        )
        from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]

        if len(rows) != len(returned):
            raise ValueError("need one label per row")
        labels = np.asarray(returned, dtype=np.int64)
        if labels.min(initial=1) == labels.max(initial=0):
            raise ValueError("need both returned and kept baskets to fit")
        self.channels = tuple(sorted({row.channel for row in rows}))
        matrix = self._matrix(rows)
        self.reference = np.nan_to_num(np.nanmedian(matrix, axis=0), nan=0.0)

        def boosted(params: BoostingParams) -> Any:
            # Early stopping would carve its own random split; the grid already chooses
            # the number of trees, so switch it off to keep fits reproducible and comparable.
            return HistGradientBoostingClassifier(
                learning_rate=params.learning_rate,
                max_iter=params.max_iter,
                max_leaf_nodes=params.max_leaf_nodes,
                min_samples_leaf=params.min_samples_leaf,
                l2_regularization=params.l2_regularization,
                early_stopping=False,
                random_state=seed,
            )

        def calibrated(params: BoostingParams, method: str) -> Any:
            # Unshuffled folds over time-ordered rows are contiguous periods: each calibrator
            # sees scores from a model that never trained on that period.
            folds = StratifiedKFold(n_splits=self.calibration_folds, shuffle=False)
            return CalibratedClassifierCV(boosted(params), method=method, cv=folds, ensemble=True)

        times = np.array([row.placed_at.timestamp() for row in rows])
        order = np.argsort(times, kind="stable")
        matrix, labels, times = matrix[order], labels[order], times[order]
        cut = float(np.quantile(times, 1.0 - self.validation_share))
        train, valid = times < cut, times >= cut
        pr_auc: dict[str, float] = {}
        brier: dict[str, float] = {}
        chosen, method = self.grid[0], "sigmoid"
        usable = all(
            part.sum() >= self.calibration_folds and (~part).sum() >= self.calibration_folds
            for part in (labels[train] == 1, labels[valid] == 1)
        )
        if usable:
            for params in self.grid:
                model = boosted(params).fit(matrix[train], labels[train])
                score = model.predict_proba(matrix[valid])[:, 1]
                pr_auc[_params_key(params)] = float(average_precision_score(labels[valid], score))
            chosen = max(self.grid, key=lambda params: pr_auc[_params_key(params)])
            for candidate in ("isotonic", "sigmoid"):
                model = calibrated(chosen, candidate).fit(matrix[train], labels[train])
                score = model.predict_proba(matrix[valid])[:, 1]
                brier[candidate] = float(brier_score_loss(labels[valid], score))
            # Ties go to sigmoid: two parameters overfit a small validation window less.
            method = min(("sigmoid", "isotonic"), key=lambda candidate: brier[candidate])
        final = calibrated(chosen, method).fit(matrix, labels)
        self._forests = [
            _Forest.from_sklearn(part.estimator) for part in final.calibrated_classifiers_
        ]
        self._calibrators = [
            _Calibrator.from_sklearn(method, part.calibrators[0])
            for part in final.calibrated_classifiers_
        ]
        self.report = FitReport(
            rows=len(rows),
            positives=int(labels.sum()),
            validation_start=(
                datetime.fromtimestamp(cut, tz=rows[0].placed_at.tzinfo).isoformat()
                if usable
                else None
            ),
            validation_pr_auc=pr_auc,
            validation_brier=brier,
            params=chosen,
            calibration=method,
        )
        return self

    def predict_proba(self, basket: Basket, history: ReturnHistory) -> float:
        """Probability that something in ``basket`` will be returned.

        Parameters
        ----------
        basket : Basket
            The basket, not yet recorded in ``history``.
        history : ReturnHistory
            Everything known before the basket (see :meth:`new_history`).

        Returns
        -------
        float
            A calibrated probability in [0, 1].
        """
        return float(self.predict_features([history.features(basket)])[0])

    def predict_proba_batch(self, baskets: Sequence[Basket], history: ReturnHistory) -> list[float]:
        """:meth:`predict_proba` for many baskets; they are scored in time order, returned in
        input order, and none of them is recorded in ``history``."""
        order = sorted(
            range(len(baskets)), key=lambda i: (baskets[i].placed_at, baskets[i].basket_id)
        )
        rows: list[BasketFeatures | None] = [None] * len(baskets)
        for index in order:
            rows[index] = history.features(baskets[index])
        return [float(p) for p in self.predict_features([row for row in rows if row is not None])]

    def predict_features(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        """Calibrated probabilities for feature rows."""
        return self._probabilities(self._matrix(rows))

    def explain(self, basket: Basket, history: ReturnHistory, *, top: int = 3) -> list[str]:
        """The reasons that raise this basket's risk most, as short sentences.

        Parameters
        ----------
        basket : Basket
            The basket, not yet recorded in ``history``.
        history : ReturnHistory
            Everything known before the basket.
        top : int, default 3
            At most this many reasons.

        Returns
        -------
        list of str
            Most important first; empty when nothing raises the risk above typical.
        """
        return self.explain_features(history.features(basket), top=top)

    def explain_features(self, row: BasketFeatures, *, top: int = 3) -> list[str]:
        """:meth:`explain` from a feature row.

        Each reason group (customer record, recency, value, size, prices, items, categories,
        channel) is reset in turn to its typical training value; the drop in the model's
        log-odds is that group's contribution. Log-odds rather than calibrated probabilities,
        because isotonic calibration is flat in places and would hide real differences.
        """
        self._check_fitted()
        names = self.feature_names
        groups = {
            name: [names.index(feature) for feature in columns]
            for name, columns in REASON_GROUPS.items()
        }
        if self.channels:
            groups["channel"] = list(range(len(NUMERIC_FEATURES), len(names)))
        base = self._matrix([row])
        what_if = np.repeat(base, len(groups) + 1, axis=0)
        for number, columns in enumerate(groups.values(), start=1):
            what_if[number, columns] = self.reference[columns]
        raw = self._raw(what_if)
        lifts = {name: raw[0] - raw[number] for number, name in enumerate(groups, start=1)}
        ranked = sorted((name for name in groups if lifts[name] > 0.02), key=lambda n: -lifts[n])
        return [_reason(name, row) for name in ranked[:top]]

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (an ``.npz`` of plain arrays), replacing it atomically."""
        self._check_fitted()
        report = self.report
        header = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "features": list(NUMERIC_FEATURES),
            "channels": list(self.channels),
            "history_config": asdict(self.history_config),
            "calibration_folds": self.calibration_folds,
            "validation_share": self.validation_share,
            "calibration": self._calibrators[0].method,
            "folds": len(self._forests),
            "report": _report_json(report) if report else None,
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": np.array(json.dumps(header, sort_keys=True)),
            "reference": self.reference,
        }
        for number, (forest, calibrator) in enumerate(
            zip(self._forests, self._calibrators, strict=True)
        ):
            arrays.update(forest.arrays(f"fold{number}_"))
            arrays[f"fold{number}_calibration_x"] = calibrator.x
            arrays[f"fold{number}_calibration_y"] = calibrator.y
        target = Path(path)
        # Write beside the target and rename, so a serving process swapping models never
        # reads half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez_compressed(file, allow_pickle=False, **arrays)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> ReturnRiskModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ValueError
            When the file is not a Rapport return-risk model of a version this code reads.
        """
        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != MODEL_FORMAT or header.get("version") != MODEL_VERSION:
                raise ValueError(f"{path} is not a {MODEL_FORMAT} v{MODEL_VERSION} file")
            if tuple(header["features"]) != NUMERIC_FEATURES:
                raise ValueError(f"{path} was written for different features")
            model = cls(
                history_config=HistoryConfig(**header["history_config"]),
                calibration_folds=int(header["calibration_folds"]),
                validation_share=float(header["validation_share"]),
            )
            model.channels = tuple(header["channels"])
            model.reference = np.asarray(data["reference"], dtype=np.float64)
            method = str(header["calibration"])
            for number in range(int(header["folds"])):
                model._forests.append(_Forest.from_arrays(data, f"fold{number}_"))
                model._calibrators.append(
                    _Calibrator(
                        method,
                        np.asarray(data[f"fold{number}_calibration_x"], dtype=np.float64),
                        np.asarray(data[f"fold{number}_calibration_y"], dtype=np.float64),
                    )
                )
        report = header.get("report")
        if report:
            model.report = FitReport(**{**report, "params": BoostingParams(**report["params"])})
        return model

    def _check_fitted(self) -> None:
        if not self._forests:
            raise RuntimeError("fit or load the model first")

    def _matrix(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        numeric = np.array([row.vector() for row in rows], dtype=np.float64).reshape(
            len(rows), len(NUMERIC_FEATURES)
        )
        # One-hot rather than categorical splits: the flattened trees then need only "<=".
        channel = np.array(
            [[row.channel == name for name in self.channels] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(self.channels))
        return np.hstack([numeric, channel])

    def _raw(self, matrix: FloatArray) -> FloatArray:
        total = np.zeros(matrix.shape[0], dtype=np.float64)
        for forest in self._forests:
            total += forest.raw(matrix)
        return total / len(self._forests)

    def _probabilities(self, matrix: FloatArray) -> FloatArray:
        self._check_fitted()
        total = np.zeros(matrix.shape[0], dtype=np.float64)
        for forest, calibrator in zip(self._forests, self._calibrators, strict=True):
            total += calibrator(forest.raw(matrix))
        return total / len(self._forests)


def _params_key(params: BoostingParams) -> str:
    return (
        f"lr={params.learning_rate} trees={params.max_iter} leaves={params.max_leaf_nodes} "
        f"min_leaf={params.min_samples_leaf} l2={params.l2_regularization}"
    )


def _report_json(report: FitReport) -> dict[str, Any]:
    return {**asdict(report), "params": asdict(report.params)}


# --- reasons -------------------------------------------------------------------------------


def _money(minor: float, currency: str) -> str:
    return f"{minor / 100:,.2f} {currency}"


def _round_down(major: float) -> str:
    """The largest 1-2-5 step not above ``major``: 312.40 -> "300", 1,234 -> "1,000"."""
    if major < 1:
        return "0"
    power = 10 ** math.floor(math.log10(major))
    step = max(m * power for m in (1, 2, 3, 5) if m * power <= major)
    return f"{step:,.0f}"


def _reason(group: str, row: BasketFeatures) -> str:
    if group == "customer":
        if row.returned_baskets:
            return (
                f"customer returned {row.returned_baskets} of their "
                f"{row.closed_baskets} past orders"
            )
        if row.is_new:
            return "new customer with no past orders"
        if not row.closed_baskets:
            return "customer's past orders are all too recent to judge"
        return f"customer kept all {row.closed_baskets} past orders"
    if group == "recency":
        if row.baskets_last_30_days >= 2:
            return f"{row.baskets_last_30_days} orders in the last 30 days"
        if row.days_since_previous is None:
            return "first order"
        return f"ordered again {row.days_since_previous:.0f} days after the previous order"
    if group == "value":
        text = f"basket over {_round_down(row.value_minor / 100)} {row.currency}"
        if row.value_vs_customer_mean is not None and row.value_vs_customer_mean >= 2:
            text += f" ({row.value_vs_customer_mean:.1f}x their usual)"
        return text
    if group == "size":
        return f"large basket: {row.lines} lines, {row.units} units"
    if group == "price":
        return f"unit prices up to {_money(row.max_unit_price_minor, row.currency)}"
    if group == "items":
        if row.top_sku is None:
            return "items never sold before"
        return f"item {row.top_sku} often comes back ({row.top_sku_rate:.0%} of orders)"
    if group == "categories":
        if row.top_category is None:
            return "categories never sold before"
        rate = f"{row.top_category_rate:.0%}"
        return f"{row.top_category.lower()} items often come back ({rate} of orders)"
    return f"{row.channel} orders come back more often"


# --- incentives ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer that may prevent a return, and what making it costs.

    Parameters
    ----------
    name : str
        Stable identifier, e.g. ``"gift_card_instead_of_refund"``.
    description : str
        What the customer is offered.
    uptake : float
        Assumed share, in [0, 1], of would-be returns the offer prevents when made.
    avoided_share : float
        Share, in [0, 1], of the return's cost avoided when it is prevented (pick-up in store
        saves the carrier leg, not the handling).
    cost_minor : int, default 0
        Fixed expected cost of making the offer, in minor units.
    cost_basis_points : int, default 0
        Expected cost as a share of basket value, in 1/10,000 (500 = 5%).
    """

    name: str
    description: str
    uptake: float
    avoided_share: float
    cost_minor: int = 0
    cost_basis_points: int = 0

    def cost(self, basket_value_minor: int) -> int:
        """Expected cost of making the offer on a basket, in minor units (floored)."""
        return self.cost_minor + basket_value_minor * self.cost_basis_points // 10_000


@dataclass(frozen=True, slots=True)
class IncentiveSuggestion:
    """The offer to make and what it is expected to save, in minor units."""

    offer: Offer
    expected_saving_minor: int


# Illustrative defaults; each retailer configures its own costs and uptakes.
DEFAULT_OFFERS: Final[tuple[Offer, ...]] = (
    Offer(
        "gift_card_instead_of_refund",
        "a gift card worth 105% of any return instead of a refund",
        uptake=0.3,
        avoided_share=1.0,
        cost_basis_points=150,
    ),
    Offer(
        "future_discount",
        "10% off the next order if this one is kept",
        uptake=0.2,
        avoided_share=1.0,
        cost_basis_points=300,
    ),
    Offer(
        "pick_up_in_store",
        "pick-up in store instead of delivery, so fit and size are checked at the counter",
        uptake=0.25,
        avoided_share=0.5,
        cost_minor=100,
    ),
)


def suggest_incentive(
    probability: float,
    basket_value_minor: int,
    *,
    return_cost_minor: int,
    offers: Sequence[Offer] = DEFAULT_OFFERS,
) -> IncentiveSuggestion | None:
    """The offer with the largest positive expected saving, or ``None``.

    For each offer, expected saving = ``probability * return_cost_minor * avoided_share *
    uptake - offer.cost(basket_value_minor)``, rounded half to even to whole minor units.
    Offers with a saving of zero or less are never suggested; ties go to the offer listed
    first, so the answer depends only on the arguments.

    Parameters
    ----------
    probability : float
        Return risk in [0, 1], e.g. from :meth:`ReturnRiskModel.predict_proba`.
    basket_value_minor : int
        Basket value in minor units.
    return_cost_minor : int
        What one return costs the retailer (carriage, handling, write-down), in minor units.
    offers : sequence of Offer, default DEFAULT_OFFERS

    Returns
    -------
    IncentiveSuggestion or None
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {probability}")
    if basket_value_minor < 0 or return_cost_minor < 0:
        raise ValueError("basket value and return cost must not be negative")
    best: IncentiveSuggestion | None = None
    for offer in offers:
        avoided = probability * return_cost_minor * offer.avoided_share * offer.uptake
        saving = round(avoided - offer.cost(basket_value_minor))
        if saving > 0 and (best is None or saving > best.expected_saving_minor):
            best = IncentiveSuggestion(offer, saving)
    return best
