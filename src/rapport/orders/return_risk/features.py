"""Streaming history features: :class:`ReturnHistory` walks baskets in time order and
describes each with only what was known when it was placed (labels count from the close of
their window on)."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from rapport.orders.return_risk.baskets import Basket, LabelledBasket

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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
