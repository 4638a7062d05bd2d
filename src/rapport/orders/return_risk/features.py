"""Streaming history features: :class:`ReturnHistory` walks baskets in time order and
describes each with only what was known when it was placed (labels count from the close of
their window on)."""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections import deque
from collections.abc import Iterable, Sized
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

DEFAULT_ITEM_STRENGTH: Final = 10.0


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """How the history smooths and when a label becomes known.

    Parameters
    ----------
    label_window_days : int, default 30
        A basket's label counts only from this many days after it was placed.
    customer_prior_strength : float, default 0.5
        Pseudo-baskets at the overall rate added to a customer's own record. Light, because
        the model also sees how many closed baskets the rate rests on: on Online Retail's
        validation window 0.25 to 0.5 ranked best (0.436 PR AUC for the blend against 0.425
        with 3; docs/benchmarks.md).
    item_prior_strength : float or None, default 10.0
        Pseudo-baskets at the overall line rate added to each SKU's, product family's and
        category's record. ``None`` estimates it from the data (empirical Bayes): every 200
        closed baskets, a beta prior is fitted by the method of moments to the closed records
        of the SKUs (families, categories) sold at least twice, and its strength (bounded to
        1..200) is used until the next estimate; 10 until there are 20 such records. Not the
        default: on Online Retail the estimate drifts over time (so a rate means something
        different in training and in use) and scored lower (docs/benchmarks.md).
    high_return_factor : float, default 1.5
        A category is "high-return" when its smoothed rate is this many times the overall.
    starting_rate, starting_strength : float, default 0.1 and 10.0
        Prior for the overall rate itself, so the first month (no closed labels yet) still
        has a number to smooth toward; it washes out after a few hundred baskets.
    discount_threshold : float, default 0.9
        A line is "discounted" when its unit price is below this share of the product's
        usual (mean past) unit price.
    """

    label_window_days: int = 30
    customer_prior_strength: float = 0.5
    item_prior_strength: float | None = DEFAULT_ITEM_STRENGTH
    high_return_factor: float = 1.5
    starting_rate: float = 0.1
    starting_strength: float = 10.0
    discount_threshold: float = 0.9

    @property
    def label_window(self) -> timedelta:
        """The label window as a ``timedelta``."""
        return timedelta(days=self.label_window_days)


@dataclass(frozen=True)
class Replayed:
    """What :meth:`ReturnHistory.replay` keeps of the baskets it recorded."""

    closed_baskets: list[int]  # per basket: the customer's closed baskets before it
    returned_baskets: list[int]  # ... and how many of those came back
    returned: list[bool]  # per basket: whether it came back
    recent: list[BasketFeatures]  # full features of the last baskets asked for
    # Full features of the last baskets placed by ``settled_before`` (whose labels are known),
    # with their labels: the basis for comparing predicted risk with what came back.
    settled: list[BasketFeatures] = field(default_factory=list)
    settled_returned: list[bool] = field(default_factory=list)


@dataclass(slots=True)
class _Tally:
    seen: int = 0
    returned: int = 0

    def rate(self, prior: float, strength: float) -> float:
        return (self.returned + strength * prior) / (self.seen + strength)


STRENGTH_BOUNDS: Final = (1.0, 200.0)
_REESTIMATE_EVERY: Final = 200
_MIN_RECORDS: Final = 20


def prior_strength(tallies: Iterable[_Tally], fallback: float = DEFAULT_ITEM_STRENGTH) -> float:
    """The strength ``a + b`` of a beta prior fitted to binomial records by the method of
    moments: the spread of the observed rates, less what binomial noise alone would give,
    is the spread of the true rates, and a beta with mean ``p`` and variance ``v`` has
    ``a + b = p (1 - p) / v - 1``. Records seen fewer than twice are left out; with fewer
    than 20 left, ``fallback``. A spread no larger than the noise means the items hardly
    differ: the upper bound."""
    kept = [tally for tally in tallies if tally.seen >= 2]
    if len(kept) < _MIN_RECORDS:
        return fallback
    seen = np.array([tally.seen for tally in kept], dtype=np.float64)
    returned = np.array([tally.returned for tally in kept], dtype=np.float64)
    pooled = float(returned.sum() / seen.sum())
    if pooled <= 0.0 or pooled >= 1.0:
        return STRENGTH_BOUNDS[1]
    spread = float(np.mean((returned / seen - pooled) ** 2))
    noise = pooled * (1.0 - pooled) * float(np.mean(1.0 / seen))
    if spread <= noise:
        return STRENGTH_BOUNDS[1]
    strength = pooled * (1.0 - pooled) / (spread - noise) - 1.0
    return float(min(max(strength, STRENGTH_BOUNDS[0]), STRENGTH_BOUNDS[1]))


@dataclass(slots=True)
class _Customer:
    prior_baskets: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    # Per currency: [value of the baskets in it, how many]. Money is compared only within
    # one currency (a basket in KRW is not set against a usual spend in EUR).
    spent: dict[str, list[int]] = field(default_factory=dict)
    units_total: int = 0
    lines_total: int = 0
    recent: deque[datetime] = field(default_factory=deque)
    closed: _Tally = field(default_factory=_Tally)
    # Returns known so far (in the order they became known), and the SKUs they named with
    # when each was last returned.
    return_times: list[datetime] = field(default_factory=list)
    returned_skus: dict[str, datetime] = field(default_factory=dict)
    # When the customer last bought each SKU.
    bought: dict[str, datetime] = field(default_factory=dict)


@dataclass(slots=True)
class _Product:
    """What is known of one SKU as sold: its usual quantity and price, and its returns."""

    lines: int = 0
    quantity_total: int = 0
    # Per currency: [sum of the lines' unit prices, how many lines].
    prices: dict[str, list[int]] = field(default_factory=dict)
    baskets: int = 0
    return_events: int = 0
    recent_sales: deque[datetime] = field(default_factory=deque)
    recent_returns: deque[datetime] = field(default_factory=deque)


_VARIANT_SUFFIX: Final = re.compile(r"^(.*\d)[A-Za-z]{1,2}$|^(.+)[-_/.][A-Za-z]{1,3}$")


def product_family(sku: str) -> str:
    """The product a SKU is a variant of: the SKU without a short size or colour suffix.

    ``"85123A"`` and ``"85123B"`` (letters after a numeric code, as in Online Retail) are both
    ``"85123"``; ``"TEE-12-XL"`` and ``"TEE-12-M"`` are both ``"TEE-12"``. A SKU without such a
    suffix (``"APP-00012"``) is its own family.
    """
    match = _VARIANT_SUFFIX.match(sku)
    if match is None:
        return sku
    return match.group(1) or match.group(2)


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
    # bracketing: one product several times, or in several variants, in one basket
    "repeated_sku_lines",
    "bracketed_families",
    "bracketed_line_share",
    "quantity_vs_usual_max",
    "units_per_line_vs_customer",
    # the product family's smoothed return rate
    "family_rate_max",
    # price against the product's usual price (discount depth)
    "price_vs_usual_min",
    "price_vs_usual_mean",
    "discounted_line_share",
    # the customer's history beyond closed labels: tenure, returns as they happened, reorders
    "customer_tenure_days",
    "known_returns",
    "returns_last_30_days",
    "returns_last_90_days",
    "days_since_last_return",
    "returned_sku_share",
    "rebought_sku_share",
    "rebought_last_7_days_share",
    # returns of these SKUs by anyone, as they happened
    "sku_returns_last_30_days",
    "sku_recent_return_rate_max",
    "sku_return_event_rate",
    # how many of the basket's SKUs the customer returned before: ever, and in the last 90 days
    "returned_sku_count",
    "returned_sku_count_90_days",
)

# Features that explain() moves together, because one sentence describes them together.
REASON_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "customer": (
        "prior_baskets",
        "closed_baskets",
        "returned_baskets",
        "customer_return_rate",
        "is_new",
        "customer_tenure_days",
    ),
    "returns": (
        "known_returns",
        "returns_last_30_days",
        "returns_last_90_days",
        "days_since_last_return",
        "returned_sku_share",
        "returned_sku_count",
        "returned_sku_count_90_days",
    ),
    "bracketing": (
        "repeated_sku_lines",
        "bracketed_families",
        "bracketed_line_share",
        "quantity_vs_usual_max",
        "units_per_line_vs_customer",
    ),
    "discount": ("price_vs_usual_min", "price_vs_usual_mean", "discounted_line_share"),
    "repeat": ("rebought_sku_share", "rebought_last_7_days_share"),
    "recency": ("days_since_previous", "baskets_last_30_days"),
    "value": ("value_minor", "value_vs_customer_mean", "customer_mean_value_minor"),
    "size": ("lines", "units"),
    "price": ("max_unit_price_minor", "mean_unit_price_minor"),
    "items": (
        "sku_rate_max",
        "sku_rate_mean",
        "sku_any_return",
        "sku_known_share",
        "family_rate_max",
        "sku_returns_last_30_days",
        "sku_recent_return_rate_max",
        "sku_return_event_rate",
    ),
    "categories": ("category_rate_max", "category_rate_mean", "high_return_category_share"),
}


@dataclass(frozen=True, slots=True)
class BasketFeatures:
    """What was known about a basket when it was placed.

    Every count and rate here comes from baskets placed earlier, and every return rate only
    from earlier baskets whose label window had closed. The one exception is a return that
    has already *happened* (``LabelledBasket.returned_at`` before this basket): the features
    in the ``returns`` and SKU-event groups see it from then on, because a retailer knows
    of a return the moment it is made. They never see that an open basket was kept. ``None``
    means "no history" (a new customer has no previous basket); it becomes NaN in
    :meth:`vector`.

    Money is compared only within one currency. Amounts (``value_minor``, the unit prices,
    ``customer_mean_value_minor``) are in minor units of ``shop_currency``, the currency most
    earlier baskets were in, and ``None`` for a basket in another (15,000 KRW is not 150.00
    EUR); ratios (``value_vs_customer_mean``, ``price_vs_usual_*``) set the basket against the
    customer's baskets and the products' prices in the basket's own currency, ``None`` where
    there were none.
    """

    basket_id: str
    customer_id: str
    placed_at: datetime
    channel: str
    currency: str
    # The currency whose amounts are money features (the shop's: the most common so far), and
    # the basket's own amounts in its currency, for the reasons.
    shop_currency: str
    basket_value_minor: int
    basket_max_unit_price_minor: int
    prior_baskets: int
    closed_baskets: int
    returned_baskets: int
    customer_return_rate: float
    is_new: bool
    days_since_previous: float | None
    baskets_last_30_days: int
    customer_mean_value_minor: float | None
    value_minor: int | None
    value_vs_customer_mean: float | None
    lines: int
    units: int
    max_unit_price_minor: int | None
    mean_unit_price_minor: float | None
    sku_rate_max: float
    sku_rate_mean: float
    sku_any_return: float
    sku_known_share: float
    category_rate_max: float
    category_rate_mean: float
    high_return_category_share: float
    repeated_sku_lines: int
    bracketed_families: int
    bracketed_line_share: float
    quantity_vs_usual_max: float | None
    units_per_line_vs_customer: float | None
    family_rate_max: float
    price_vs_usual_min: float | None
    price_vs_usual_mean: float | None
    discounted_line_share: float | None
    customer_tenure_days: float | None
    known_returns: int
    returns_last_30_days: int
    returns_last_90_days: int
    days_since_last_return: float | None
    returned_sku_share: float
    rebought_sku_share: float
    rebought_last_7_days_share: float
    sku_returns_last_30_days: int
    sku_recent_return_rate_max: float
    sku_return_event_rate: float
    returned_sku_count: int
    returned_sku_count_90_days: int
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
    are applied as the clock passes that time; returns that happened (``returned_at``) wait in
    a second heap and become known once the clock is past them. The whole stream costs
    O(n log n) for n baskets (plus O(lines) per basket) and memory grows with customers, SKUs
    and the SKUs each customer bought, not with lines.

    Parameters
    ----------
    config : HistoryConfig, optional
        Smoothing and label window; the defaults suit daily retail.

    Notes
    -----
    For serving, rebuild the history from stored orders (with their labels as known now)
    whenever labels change, e.g. nightly; a label recorded for a basket whose window is still
    open stays out of every return *rate* until the window closes, exactly as in training.
    """

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = config or HistoryConfig()
        self._window = self.config.label_window
        self._now: datetime | None = None
        self._pending: list[tuple[datetime, int, LabelledBasket]] = []
        # (known from, strictly after?, sequence, customer, SKUs) of each return
        self._returns: list[tuple[datetime, bool, int, str, frozenset[str]]] = []
        self._sequence = 0
        self._customers: dict[str, _Customer] = {}
        self._skus: dict[str, _Tally] = {}
        self._categories: dict[str, _Tally] = {}
        self._families: dict[str, _Tally] = {}
        self._products: dict[str, _Product] = {}
        self._baskets = _Tally()
        self._sku_lines = _Tally()
        self._category_lines = _Tally()
        self._family_lines = _Tally()
        # Baskets per currency, and the most common one: the shop's currency, the only one
        # whose amounts the money features give as amounts.
        self._currency_baskets: dict[str, int] = {}
        self._shop_currency: str | None = None
        fixed = self.config.item_prior_strength
        start = DEFAULT_ITEM_STRENGTH if fixed is None else fixed
        self._strength = {"sku": start, "family": start, "category": start}

    @property
    def item_strengths(self) -> dict[str, float]:
        """The prior strengths in use for SKU, product family and category return rates."""
        return dict(self._strength)

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
        described, _ = cls.describe((items[index] for index in order), config)
        found: list[BasketFeatures | None] = [None] * len(items)
        for index, row in zip(order, described, strict=True):
            found[index] = row
        return [row for row in found if row is not None]

    @classmethod
    def describe(
        cls, labelled_baskets: Iterable[LabelledBasket], config: HistoryConfig | None = None
    ) -> tuple[list[BasketFeatures], list[bool]]:
        """Features and labels of baskets given in time order, read once (a stream from the
        database is never held whole: only the features are kept).

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            In time order (``ValueError`` otherwise).
        config : HistoryConfig, optional
            Passed to a fresh history.

        Returns
        -------
        tuple of (list of BasketFeatures, list of bool)
            Each basket described from what was known before it, and whether it came back.
        """
        history = cls(config)
        rows: list[BasketFeatures] = []
        labels: list[bool] = []
        for item in labelled_baskets:
            rows.append(history.features(item.basket))
            history.record(item)
            labels.append(item.returned)
        return rows, labels

    def replay(
        self,
        labelled_baskets: Iterable[LabelledBasket],
        *,
        recent: int = 0,
        expected: int | None = None,
        settled_before: datetime | None = None,
        settled_expected: int = 0,
    ) -> Replayed:
        """Record past baskets, oldest first, keeping only what serving needs: each basket's
        customer record just before it (what :class:`HistoryBaseline` learns from), its label,
        and the full features of the last ``recent`` baskets (the orders page's risk bands)
        and, with ``settled_before``, of the last ``recent`` placed by then (whose labels are
        final: the page compares predicted risk with what came back on those, because a
        recent basket not returned *yet* may still come back). Full features for every basket
        cost twice the time of recording them.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            In time order, none earlier than the last basket seen; read once, so a stream
            from the database is never held whole.
        recent : int, default 0
        expected : int, optional
            How many baskets the iterable holds, when it is not a sequence: features are
            worked out from basket ``expected - recent`` on, and the last ``recent`` kept (a
            stream that turns out longer still gives the last ones; a shorter one, fewer).
        settled_before : datetime, optional
            Also describe the last ``recent`` baskets placed by then (:attr:`Replayed.settled`).
        settled_expected : int, default 0
            How many baskets were placed by ``settled_before``, counted as ``expected`` is.

        Returns
        -------
        Replayed
        """
        if expected is None:
            expected = len(labelled_baskets) if isinstance(labelled_baskets, Sized) else 0
        closed: list[int] = []
        returned: list[int] = []
        labels: list[bool] = []
        rows: deque[BasketFeatures] = deque(maxlen=max(recent, 0))
        settled: deque[tuple[BasketFeatures, bool]] = deque(maxlen=max(recent, 0))
        first_recent = expected - recent
        first_settled = settled_expected - recent
        for index, labelled in enumerate(labelled_baskets):
            basket = labelled.basket
            is_recent = recent and index >= first_recent
            is_settled = (
                recent
                and settled_before is not None
                and index >= first_settled
                and basket.placed_at <= settled_before
            )
            if is_recent or is_settled:
                row = self.features(basket)
                if is_recent:
                    rows.append(row)
                if is_settled:
                    settled.append((row, labelled.returned))
                closed.append(row.closed_baskets)
                returned.append(row.returned_baskets)
            else:
                self._advance(basket.placed_at)
                seen, came_back = self.customer_record(basket.customer_id)
                closed.append(seen)
                returned.append(came_back)
            labels.append(labelled.returned)
            self.record(labelled)
        return Replayed(
            closed,
            returned,
            labels,
            list(rows),
            settled=[row for row, _ in settled],
            settled_returned=[came_back for _, came_back in settled],
        )

    @property
    def latest(self) -> datetime | None:
        """The time of the last basket recorded or described: the next must not be earlier."""
        return self._now

    @property
    def shop_currency(self) -> str | None:
        """The currency most baskets recorded so far are in (the first to reach that count on
        a tie); ``None`` before any. Money features give amounts only in it."""
        return self._shop_currency

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
        at = basket.placed_at
        self._advance(at)
        customer = self._customers.setdefault(basket.customer_id, _Customer())
        customer.prior_baskets += 1
        if customer.first_at is None:
            customer.first_at = at
        customer.last_at = at
        spent = customer.spent.setdefault(basket.currency, [0, 0])
        spent[0] += basket.value_minor
        spent[1] += 1
        count = self._currency_baskets.get(basket.currency, 0) + 1
        self._currency_baskets[basket.currency] = count
        shop = self._shop_currency
        if shop is None or (shop != basket.currency and count > self._currency_baskets[shop]):
            self._shop_currency = basket.currency
        customer.units_total += basket.units
        customer.lines_total += len(basket.lines)
        customer.recent.append(at)
        horizon = at - timedelta(days=30)
        for line in basket.lines:
            product = self._products.setdefault(line.sku, _Product())
            product.lines += 1
            product.quantity_total += line.quantity
            prices = product.prices.setdefault(basket.currency, [0, 0])
            prices[0] += line.unit_price_minor
            prices[1] += 1
        for sku in dict.fromkeys(line.sku for line in basket.lines):
            customer.bought[sku] = at
            product = self._products[sku]
            product.baskets += 1
            product.recent_sales.append(at)
            while product.recent_sales[0] <= horizon:
                product.recent_sales.popleft()
        self._sequence += 1
        # The sequence number breaks ties so the heap never compares two LabelledBaskets.
        closes = at + self._window
        heapq.heappush(self._pending, (closes, self._sequence, labelled))
        if labelled.returned:
            skus = frozenset(
                sku for sku in (line.sku for line in basket.lines) if labelled.sku_returned(sku)
            )
            # A return with a known time is known just after it; one without, at the close.
            if labelled.returned_at is not None and labelled.returned_at < closes:
                known = (labelled.returned_at, True)
            else:
                known = (closes, False)
            heapq.heappush(self._returns, (*known, self._sequence, basket.customer_id, skus))

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
        family_base = self._family_lines.rate(config.starting_rate, config.starting_strength)
        strength = self._strength["sku"]

        customer = self._customers.get(basket.customer_id) or _Customer()
        while customer.recent and customer.recent[0] <= at - timedelta(days=30):
            customer.recent.popleft()
        closed = customer.closed
        # Amounts are features only in the shop's currency (the model learnt them in it); a
        # basket in another is compared only with the customer's baskets and the products'
        # prices in its own currency, never as if it were the same money.
        shop_currency = self.shop_currency or basket.currency
        in_shop_currency = basket.currency == shop_currency
        mean_value = _mean(customer.spent.get(shop_currency))
        usual_value = _mean(customer.spent.get(basket.currency))
        value = basket.value_minor
        units = basket.units

        sku_value: dict[str, int] = {}
        sku_lines: dict[str, int] = {}
        category_value: dict[str, int] = {}
        family_skus: dict[str, set[str]] = {}
        for line in basket.lines:
            sku_value[line.sku] = sku_value.get(line.sku, 0) + line.value_minor
            sku_lines[line.sku] = sku_lines.get(line.sku, 0) + 1
            category_value[line.category] = category_value.get(line.category, 0) + line.value_minor
            family_skus.setdefault(product_family(line.sku), set()).add(line.sku)
        sku = _RateSummary.of(sku_value, self._skus, line_rate, strength)
        category = _RateSummary.of(
            category_value, self._categories, category_base, self._strength["category"]
        )
        family_rate_max = max(
            (
                self._families[name].rate(family_base, self._strength["family"])
                if name in self._families
                else family_base
            )
            for name in family_skus
        )
        high_return_value = sum(
            amount
            for name, amount in category_value.items()
            if name in category.known
            and category.known[name] >= config.high_return_factor * category_base
        )

        # Bracketing: the same SKU on several lines, several variants of one product, or far
        # more of a product than it usually sells in.
        bracketed = {
            sku_name for skus in family_skus.values() if len(skus) > 1 for sku_name in skus
        } | {name for name, count in sku_lines.items() if count > 1}
        quantity_ratios: list[float] = []
        price_ratios: list[float] = []
        for line in basket.lines:
            product = self._products.get(line.sku)
            if product is None or not product.lines:
                continue
            quantity_ratios.append(line.quantity * product.lines / product.quantity_total)
            prices = product.prices.get(basket.currency)
            if prices and prices[0]:
                price_ratios.append(line.unit_price_minor * prices[1] / prices[0])
        usual_units = customer.units_total / customer.lines_total if customer.lines_total else None

        # Returns as they happened (not only closed labels), and reorders.
        times = customer.return_times
        distinct = len(sku_value)
        rebought = [customer.bought.get(name) for name in sku_value]
        week_ago = at - timedelta(days=7)
        horizon = at - timedelta(days=30)
        quarter_ago = at - timedelta(days=90)
        # When the customer last returned each of the basket's SKUs that they returned before.
        returned_before = [
            customer.returned_skus[name] for name in sku_value if name in customer.returned_skus
        ]
        recent_returns = 0
        recent_rate_max = 0.0
        events = 0
        sold = 0
        for name in sku_value:
            product = self._products.get(name)
            if product is None:
                recent_rate_max = max(recent_rate_max, line_rate)
                continue
            while product.recent_returns and product.recent_returns[0] <= horizon:
                product.recent_returns.popleft()
            while product.recent_sales and product.recent_sales[0] <= horizon:
                product.recent_sales.popleft()
            recent_returns += len(product.recent_returns)
            recent_rate_max = max(
                recent_rate_max,
                (len(product.recent_returns) + strength * line_rate)
                / (len(product.recent_sales) + strength),
            )
            events += product.return_events
            sold += product.baskets

        return BasketFeatures(
            basket_id=basket.basket_id,
            customer_id=basket.customer_id,
            placed_at=at,
            channel=basket.channel,
            currency=basket.currency,
            shop_currency=shop_currency,
            basket_value_minor=value,
            basket_max_unit_price_minor=max(line.unit_price_minor for line in basket.lines),
            prior_baskets=customer.prior_baskets,
            closed_baskets=closed.seen,
            returned_baskets=closed.returned,
            customer_return_rate=closed.rate(overall, config.customer_prior_strength),
            is_new=customer.prior_baskets == 0,
            days_since_previous=_days(at, customer.last_at),
            baskets_last_30_days=len(customer.recent),
            customer_mean_value_minor=mean_value,
            value_minor=value if in_shop_currency else None,
            value_vs_customer_mean=value / usual_value if usual_value else None,
            lines=len(basket.lines),
            units=units,
            max_unit_price_minor=(
                max(line.unit_price_minor for line in basket.lines) if in_shop_currency else None
            ),
            mean_unit_price_minor=value / units if in_shop_currency else None,
            sku_rate_max=sku.max_rate,
            sku_rate_mean=sku.mean_rate,
            sku_any_return=sku.any_rate,
            sku_known_share=len(sku.known) / len(sku_value),
            category_rate_max=category.max_rate,
            category_rate_mean=category.mean_rate,
            high_return_category_share=high_return_value / value if value else 0.0,
            repeated_sku_lines=sum(1 for count in sku_lines.values() if count > 1),
            bracketed_families=sum(1 for skus in family_skus.values() if len(skus) > 1),
            bracketed_line_share=(
                sum(1 for line in basket.lines if line.sku in bracketed) / len(basket.lines)
            ),
            quantity_vs_usual_max=max(quantity_ratios) if quantity_ratios else None,
            units_per_line_vs_customer=(
                units / len(basket.lines) / usual_units if usual_units else None
            ),
            family_rate_max=family_rate_max,
            price_vs_usual_min=min(price_ratios) if price_ratios else None,
            price_vs_usual_mean=sum(price_ratios) / len(price_ratios) if price_ratios else None,
            discounted_line_share=(
                sum(1 for ratio in price_ratios if ratio < config.discount_threshold)
                / len(price_ratios)
                if price_ratios
                else None
            ),
            customer_tenure_days=_days(at, customer.first_at),
            known_returns=len(times),
            returns_last_30_days=len(times) - bisect.bisect_right(times, horizon),
            returns_last_90_days=len(times) - bisect.bisect_right(times, quarter_ago),
            days_since_last_return=_days(at, times[-1] if times else None),
            returned_sku_share=len(returned_before) / distinct,
            rebought_sku_share=sum(1 for when in rebought if when is not None) / distinct,
            rebought_last_7_days_share=(
                sum(1 for when in rebought if when is not None and when > week_ago) / distinct
            ),
            sku_returns_last_30_days=recent_returns,
            sku_recent_return_rate_max=recent_rate_max,
            sku_return_event_rate=(events + strength * line_rate) / (sold + strength),
            returned_sku_count=len(returned_before),
            returned_sku_count_90_days=sum(1 for when in returned_before if when > quarter_ago),
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
        # A return with a known time is known only strictly after it (a basket placed in the
        # same instant may not see it); one known at its window's close, from the close on.
        while self._returns and (
            self._returns[0][0] < at or (self._returns[0][0] == at and not self._returns[0][1])
        ):
            when, _, _, customer_id, skus = heapq.heappop(self._returns)
            customer = self._customers[customer_id]
            customer.return_times.append(when)
            customer.returned_skus.update(dict.fromkeys(skus, when))
            for name in skus:
                product = self._products[name]
                product.return_events += 1
                product.recent_returns.append(when)

    def _close(self, labelled: LabelledBasket) -> None:
        basket = labelled.basket
        self._baskets.seen += 1
        self._baskets.returned += labelled.returned
        closed = self._customers[basket.customer_id].closed
        closed.seen += 1
        closed.returned += labelled.returned
        # A SKU, family or category that appears on several lines still counts once per basket.
        categories: dict[str, bool] = {}
        families: dict[str, bool] = {}
        for sku in dict.fromkeys(line.sku for line in basket.lines):
            returned = labelled.sku_returned(sku)
            tally = self._skus.setdefault(sku, _Tally())
            tally.seen += 1
            tally.returned += returned
            self._sku_lines.seen += 1
            self._sku_lines.returned += returned
            family = product_family(sku)
            families[family] = families.get(family, False) or returned
        for line in basket.lines:
            categories[line.category] = categories.get(line.category, False) or (
                labelled.sku_returned(line.sku)
            )
        for tallies, base, outcomes in (
            (self._categories, self._category_lines, categories),
            (self._families, self._family_lines, families),
        ):
            for name, returned in outcomes.items():
                tally = tallies.setdefault(name, _Tally())
                tally.seen += 1
                tally.returned += returned
                base.seen += 1
                base.returned += returned
        if self.config.item_prior_strength is None and self._baskets.seen % _REESTIMATE_EVERY == 0:
            self._strength = {
                "sku": prior_strength(self._skus.values()),
                "family": prior_strength(self._families.values()),
                "category": prior_strength(self._categories.values()),
            }


def _mean(spent: list[int] | None) -> float | None:
    """The mean basket value of ``[total, baskets]``, ``None`` for none."""
    return spent[0] / spent[1] if spent else None


def _days(at: datetime, since: datetime | None) -> float | None:
    return (at - since).total_seconds() / 86_400 if since is not None else None


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
