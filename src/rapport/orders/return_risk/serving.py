"""Return risk in the product: train the model on the orders Rapport holds, and score a basket
before the sale with the customer's history as it stands now.

The model file is versioned (``return-risk-<timestamp>.npz`` under the data directory) and the
newest one is served; a serving process reloads when a newer file appears, and rebuilds the
history of past baskets at most every few minutes, so answers follow new orders and returns.
"""

from __future__ import annotations

import itertools
import logging
import operator
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, event, func, select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.orders.models import Order, OrderLine, ReturnLine
from rapport.orders.return_risk import (
    Basket,
    BasketFeatures,
    BasketLine,
    HistoryBaseline,
    LabelledBasket,
    ReturnHistory,
    ReturnRiskModel,
    suggest_incentive,
)
from rapport.orders.return_risk.model import MODEL_KINDS, MODEL_LABELS
from rapport.platform import budget, clock
from rapport.platform.db import read_only
from rapport.platform.errors import InvalidInput

log = logging.getLogger(__name__)

LABEL_WINDOW = timedelta(days=30)
_STREAM_ROWS = 2000  # order lines fetched from the database at a time
HISTORY_MAX_AGE_SECONDS = 300.0
MIN_TRAINING_BASKETS = 200


def labelled_baskets(db: Session, *, placed_by: datetime | None = None) -> Iterator[LabelledBasket]:
    """Every customer's past order as a basket, labelled returned when something on it came
    back within 30 days (with the time of its first return); oldest first. With
    ``placed_by``, only the orders placed by then: an order dated later (a clock ahead, an old
    import) has not happened yet, and left in it would put the history's clock past the
    baskets scored now.

    Streamed one basket at a time: what is held at once is the returned orders' labels, not
    every order line. Holding Online Retail's 400,000 lines as objects grew each server
    process by 160 MiB that it kept after the history was built (docs/benchmarks.md)."""
    returned: dict[str, set[str]] = defaultdict(set)
    first_return: dict[str, datetime] = {}
    for order_id, sku, returned_at, placed_at in db.execute(
        select(ReturnLine.order_id, ReturnLine.sku, ReturnLine.returned_at, Order.placed_at)
        .join(Order, Order.order_id == ReturnLine.order_id)
        .where(Order.customer_id.is_not(None))
    ):
        if returned_at - placed_at <= LABEL_WINDOW:
            returned[order_id].add(sku)
            # Never before the order itself, should a clock have drifted.
            when = max(returned_at, placed_at)
            first_return[order_id] = min(first_return.get(order_id, when), when)
    # Plain rows, not ORM objects: building half a million OrderLine instances took most of
    # the time on Online Retail (6.6 s of 12.7 s for the first request that scored a basket).
    # Two cursors in the same order, so that each order's time is read (and converted) once
    # rather than once a line; Core rows straight from the connection, which skip the ORM's
    # row loading (a second of the history's build on Online Retail).
    connection = db.connection()
    with_customer: ColumnElement[bool] = Order.customer_id.is_not(None)
    if placed_by is not None:
        with_customer = and_(with_customer, Order.placed_at <= placed_by)
    in_time_order = (Order.placed_at, Order.order_id)
    orders = connection.execute(
        select(Order.order_id, Order.customer_id, Order.placed_at, Order.channel, Order.currency)
        .where(with_customer)
        .order_by(*in_time_order)
        .execution_options(yield_per=_STREAM_ROWS)
    )
    order_lines = connection.execute(
        select(
            OrderLine.order_id,
            OrderLine.sku,
            OrderLine.category,
            OrderLine.quantity,
            OrderLine.unit_price_minor,
        )
        .join(Order, Order.order_id == OrderLine.order_id)
        .where(with_customer)
        .order_by(*in_time_order, OrderLine.line_no)
        .execution_options(yield_per=_STREAM_ROWS)
    )
    by_order = itertools.groupby(order_lines, key=operator.itemgetter(0))
    next_lines = next(by_order, None)
    for order_id, customer_id, placed_at, channel, currency in orders:
        if next_lines is None or next_lines[0] != order_id:
            continue  # an order without lines
        lines = tuple(
            BasketLine(sku, category or "", quantity, unit_price_minor)
            for _, sku, category, quantity, unit_price_minor in next_lines[1]
        )
        next_lines = next(by_order, None)
        skus = returned.get(order_id, set()) & {line.sku for line in lines}
        yield LabelledBasket(
            basket=Basket(
                basket_id=order_id,
                customer_id=str(customer_id),
                placed_at=placed_at,
                lines=lines,
                channel=channel,
                currency=currency,
            ),
            returned=bool(skus),
            returned_skus=frozenset(skus),
            returned_at=first_return.get(order_id) if skus else None,
        )


def _basket_count(db: Session, *, placed_by: datetime | None = None) -> int:
    """How many baskets :func:`labelled_baskets` yields (orders with a customer and a line),
    or how many of them were placed by ``placed_by``."""
    with_lines = select(OrderLine.order_id).where(OrderLine.order_id == Order.order_id).exists()
    query = select(func.count()).select_from(Order)
    query = query.where(Order.customer_id.is_not(None), with_lines)
    if placed_by is not None:
        query = query.where(Order.placed_at <= placed_by)
    return int(db.scalar(query) or 0)


def models_directory(data_dir: Path) -> Path:
    return data_dir / "models"


def train_return_risk(
    db: Session, *, data_dir: Path, seed: int = 0, model: ReturnRiskModel | None = None
) -> Path | None:
    """Fit the model (``model``, or one with default tuning) on baskets whose label window
    has closed and write a new model file. Returns its path, or ``None`` when there is too
    little history to learn from."""
    cutoff = clock.now() - LABEL_WINDOW
    model = model or ReturnRiskModel()
    # Read without SQLite's write lock (reading every order takes seconds on a large shop,
    # and the shop's writes must not wait for it), and end the read before the long fit.
    read_only(db)
    # Oldest first: the baskets whose label window has closed come before all the others.
    closed = itertools.takewhile(lambda item: item.basket.placed_at <= cutoff, labelled_baskets(db))
    rows, returned = ReturnHistory.describe(closed, model.history_config)
    db.rollback()
    if len(rows) < MIN_TRAINING_BASKETS or not any(returned):
        return None
    model.fit_features(rows, returned, seed=seed)
    directory = models_directory(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"return-risk-{clock.now():%Y%m%dT%H%M%S}.npz"
    model.save(path)  # written to a temporary file and renamed: readers never see half a file
    return path


def latest_model_path(data_dir: Path) -> Path | None:
    files = sorted(models_directory(data_dir).glob("return-risk-*.npz"))
    return files[-1] if files else None


def _load_latest(data_dir: Path) -> tuple[Path | None, ReturnRiskModel | None]:
    """The newest model file and the model in it; ``(path, None)`` when that file was
    written by an older Rapport (other features) and waits for the next training."""
    path = latest_model_path(data_dir)
    if path is None:
        return None, None
    try:
        return path, ReturnRiskModel.load(path)
    except (ValueError, KeyError):
        return path, None


def model_summary(model: ReturnRiskModel) -> dict[str, Any]:
    """Which model won at training and the validation figures of every candidate."""
    report = model.report
    summary: dict[str, Any] = {
        "kind": model.kind,
        "label": model.kind_label,
        "validation_start": None,
        "validation_rows": 0,
        "validation_positives": 0,
        "candidates": [],
    }
    if report is None:
        return summary
    summary.update(
        validation_start=report.validation_start,
        validation_rows=report.validation_rows,
        validation_positives=report.validation_positives,
        candidates=[
            {
                "kind": name,
                "label": MODEL_LABELS[name],
                "pr_auc": round(report.candidate_pr_auc[name], 3),
                "brier": round(report.candidate_brier.get(name, float("nan")), 4),
                "chosen": name == model.kind,
            }
            # In the order training tries them (a saved report comes back sorted by name).
            for name in MODEL_KINDS
            if name in report.candidate_pr_auc
        ],
    )
    return summary


@dataclass(frozen=True)
class _Scorer:
    model_path: Path | None
    model: ReturnRiskModel | None
    baseline: HistoryBaseline
    history: ReturnHistory
    built_at: float
    # The orders page's risk bands: the last RECENT_BASKETS baskets, each described from what
    # was known before it; and the last RECENT_BASKETS placed by ``settled_before`` (their
    # return window closed when the history was built), with whether each came back.
    recent: list[BasketFeatures]
    settled: list[BasketFeatures]
    settled_returned: list[bool]
    settled_before: datetime


RECENT_BASKETS = 500
# A band's returned share is shown from this many orders on: 1 of 2 reads as "50%".
MIN_BAND_ORDERS = 10
_cache: dict[str, _Scorer] = {}
_lock = threading.Lock()  # guards the cache, and each history while it answers
_build_lock = threading.Lock()  # one history built at a time, outside requests when possible
_building: dict[str, threading.Event] = {}  # data dir -> set when its build ends


def _build(db: Session, data_dir: Path) -> _Scorer:
    """The newest model with the history of every past basket, built from the database."""
    path, model = _load_latest(data_dir)
    history = model.new_history() if model else ReturnHistory()
    now = clock.now()
    settled_before = now - LABEL_WINDOW
    replayed = history.replay(
        labelled_baskets(db, placed_by=now),
        recent=RECENT_BASKETS,
        expected=_basket_count(db, placed_by=now),
        settled_before=settled_before,
        settled_expected=_basket_count(db, placed_by=settled_before),
    )
    db.rollback()  # read-only: let writers in while the scorer is put together
    baseline = HistoryBaseline()
    labels = replayed.returned
    if any(labels):
        baseline.fit_counts(replayed.closed_baskets, replayed.returned_baskets, labels)
    return _Scorer(
        model_path=path,
        model=model,
        baseline=baseline,
        history=history,
        built_at=time.monotonic(),
        recent=replayed.recent,
        settled=replayed.settled,
        settled_returned=replayed.settled_returned,
        settled_before=settled_before,
    )


def _scorer(db: Session, data_dir: Path) -> _Scorer:
    """The newest model with a history of past baskets at most a few minutes old.

    Only the first requests after a server starts wait for the history (2.7 s for Online
    Retail's 19,776 orders), and no longer than their time budget. Once it is older than
    ``HISTORY_MAX_AGE_SECONDS``, requests keep answering with it while a thread builds the
    next from its own connection; a newly trained model with the same history settings is
    swapped in at once, the history kept."""
    found = _built_scorer(db, data_dir)
    return found if found is not None else _first_history(db, data_dir, str(data_dir))


class HistoryLoading(budget.OutOfTime):
    """This process is still reading the order history for the first time."""

    def __init__(self) -> None:
        super().__init__(
            "Return risk is still reading the order history (the first basket scored "
            "since the server started); retry in a few seconds."
        )


def _scorer_now(db: Session, data_dir: Path) -> _Scorer:
    """:func:`_scorer` without waiting for a first history: it is started, and
    :class:`HistoryLoading` raised, unless the session can only build it in place."""
    found = _built_scorer(db, data_dir)
    if found is not None:
        return found
    if _build_in_background(db, data_dir, str(data_dir)) is not None:
        raise HistoryLoading()
    return _build_in_place(db, data_dir, str(data_dir), replace_current=False)


def _built_scorer(db: Session, data_dir: Path) -> _Scorer | None:
    """This process's history with the newest model (a stale one is rebuilt behind the
    scenes), or ``None`` before its first is built."""
    key = str(data_dir)
    path = latest_model_path(data_dir)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached.model_path != path:
            cached = _with_latest_model(cached, data_dir)
            if cached is None:
                del _cache[key]
            else:
                _cache[key] = cached
    if cached is None:
        return None
    stale = time.monotonic() - cached.built_at >= HISTORY_MAX_AGE_SECONDS
    if stale and _build_in_background(db, data_dir, key) is None:
        cached = _build_in_place(db, data_dir, key, replace_current=True)
    return cached


def _with_latest_model(cached: _Scorer, data_dir: Path) -> _Scorer | None:
    """``cached`` with the newest model, when its history suits it (else ``None``: build)."""
    path, model = _load_latest(data_dir)
    config = model.history_config if model is not None else cached.history.config
    if config != cached.history.config:
        return None
    return replace(cached, model_path=path, model=model)


def _first_history(db: Session, data_dir: Path, key: str) -> _Scorer:
    """Wait for the history being built, within the request's time budget: past it, the
    request answers 503 with Retry-After while the build goes on for the next one."""
    done = _build_in_background(db, data_dir, key)
    if done is not None:
        left = budget.remaining()
        if not done.wait(timeout=None if left is None else max(left, 0.0)):
            raise HistoryLoading()
        with _lock:
            found = _cache.get(key)
        if found is not None:
            return found
    # A session bound to one connection, or a build that failed (its error surfaces here).
    return _build_in_place(db, data_dir, key, replace_current=False)


def _build_in_place(db: Session, data_dir: Path, key: str, *, replace_current: bool) -> _Scorer:
    with _build_lock:
        with _lock:
            found = None if replace_current else _cache.get(key)
        if found is None:
            found = _build(db, data_dir)
            with _lock:
                _cache[key] = found
        return found


def start_history(db: Session, *, data_dir: Path) -> bool:
    """Start reading the order history into this process in the background when a model has
    been trained, so that the first basket scored after a server starts does not wait for it
    (``rapport serve`` calls this as it starts). Whether a build was started or is under way;
    ``False`` with no model, a history already built, or a session bound to one connection."""
    if latest_model_path(data_dir) is None:
        return False
    with _lock:
        if str(data_dir) in _cache:
            return False
    return _build_in_background(db, data_dir, str(data_dir)) is not None


def _build_in_background(db: Session, data_dir: Path, key: str) -> threading.Event | None:
    """Start building the history in a thread with its own read-only connection, or join
    the build under way; the event is set when it ends. ``None`` for a session bound to one
    connection (a script's transaction, a test's), which has no engine to open another from."""
    engine = db.get_bind()
    if not isinstance(engine, Engine):
        return None
    with _lock:
        under_way = _building.get(key)
        if under_way is not None:
            return under_way
        done = _building[key] = threading.Event()

    def build() -> None:
        try:
            with _build_lock, Session(bind=engine) as session:
                read_only(session)  # on SQLite, a reader that never holds the writer lock
                fresh = _build(session, data_dir)
            with _lock:
                _cache[key] = fresh
        except Exception:
            # The history in use stays; the next request that finds it stale tries again.
            log.exception("building the return-risk history failed")
        finally:
            with _lock:
                del _building[key]
            done.set()

    threading.Thread(target=build, name=f"return-risk-history {key}", daemon=True).start()
    return done


def forget_cached_models() -> None:
    with _lock:
        _cache.clear()


def history_changed(db: Session) -> None:
    """Past orders changed hands in ``db``'s transaction (a merge): once it commits, this
    process's history is stale, so the next basket scored starts the next build (and, where
    the session cannot build in the background, builds it first). Other processes read the
    change with their next build, at most ``HISTORY_MAX_AGE_SECONDS`` later."""

    def mark_stale(session: Session) -> None:
        with _lock:
            for key, cached in _cache.items():
                _cache[key] = replace(cached, built_at=float("-inf"))

    event.listen(db, "after_commit", mark_stale, once=True)


@dataclass(frozen=True)
class RiskLine:
    sku: str
    quantity: int
    unit_price_minor: int


def assess_return_risk(
    db: Session,
    *,
    customer_id: str | None,
    lines: Sequence[RiskLine],
    channel: str,
    currency: str,
    return_cost_minor: int,
    data_dir: Path,
    wait: bool = True,
) -> dict[str, Any]:
    """The probability that something in this basket comes back, the top reasons, and an
    offer where one pays for itself. ``customer_id`` is a Rapport id or the retailer's customer
    number, resolved as every endpoint resolves one (a merged profile is scored as the one it
    went into; unknown and erased are 404 naming ``customer_id``); ``None`` is a guest's
    basket, scored as a new customer's.

    Before this process has read the order history, the call waits for it within the
    request's time budget; with ``wait=False`` (a panel beside other content) it raises
    :class:`HistoryLoading` at once instead, and the history is read for the next call."""
    # No customer id in the history is empty: a guest has no past baskets.
    scored_as = "" if customer_id is None else customers.resolve_customer_ref(db, ref=customer_id)
    products = catalog.get_products(db, skus=[line.sku for line in lines])
    for index, line in enumerate(lines):
        if line.sku not in products:
            raise InvalidInput(f"Unknown SKU {line.sku!r}", field=f"lines.{index}.sku")
    basket = Basket(
        basket_id="pending",
        customer_id=scored_as,
        placed_at=clock.now(),
        lines=tuple(
            BasketLine(
                sku=line.sku,
                category=products[line.sku].category_path,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
            )
            for line in lines
        ),
        channel=channel,
        currency=currency,
    )
    scorer = _scorer(db, data_dir) if wait else _scorer_now(db, data_dir)
    with _lock:  # the shared history moves its clock forward as it answers
        latest = scorer.history.latest
        if latest is not None and latest > basket.placed_at:
            # The history holds nothing placed after it was built, but a clock set back
            # since (or a basket scored in the same instant) must not make the basket older
            # than the history: it is scored as of the history's moment.
            basket = replace(basket, placed_at=latest)
        baseline_probability = (
            scorer.baseline.predict_proba(basket, scorer.history)
            if scorer.baseline.rate is not None
            else None
        )
        if scorer.model is not None:
            probability = scorer.model.predict_proba(basket, scorer.history)
            reasons = scorer.model.explain(basket, scorer.history, base_rate=scorer.baseline.rate)
            source = scorer.model_path.name if scorer.model_path else "model"
        else:
            probability = baseline_probability if baseline_probability is not None else 0.0
            reasons = ["no model trained yet: the customer's own past return rate is used"]
            source = "history_baseline"
    suggestion = suggest_incentive(
        probability, basket.value_minor, return_cost_minor=return_cost_minor
    )
    return {
        "probability": round(probability, 4),
        "baseline_probability": round(baseline_probability, 4)
        if baseline_probability is not None
        else None,
        "reasons": reasons,
        "model": source,
        "incentive": (
            {
                "offer": suggestion.offer.name,
                "description": suggestion.offer.description,
                "expected_saving_minor": suggestion.expected_saving_minor,
            }
            if suggestion
            else None
        ),
    }


def recent_risk_distribution(db: Session, *, data_dir: Path, last: int = 500) -> dict[str, Any]:
    """How the current model scored the ``last`` baskets, each from what was known before it
    (counts per 10-point band), and the share that came back per band among the ``last``
    baskets whose 30 days to come back had passed when the history was built (``settled``
    of them, placed by ``settled_before``; ``judged`` per band, the share ``None`` below
    ``MIN_BAND_ORDERS``): a basket of last week not returned *yet* would count as kept and
    make the model look too cautious. Also which model won at training with every
    candidate's validation figures (``summary``). ``None`` fields when no model is trained
    yet (or only one from an older Rapport), and also, with ``loading`` true, while this
    process reads the order history the first time (a page does not wait)."""
    if not 0 < last <= RECENT_BASKETS:
        raise ValueError(f"last must be 1 to {RECENT_BASKETS}, got {last}")
    nothing: dict[str, Any] = {
        "model": None,
        "summary": None,
        "bands": [],
        "counts": [],
        "returned_share": [],
        "judged": [],
        "settled": 0,
        "settled_before": None,
        "loading": False,
    }
    if latest_model_path(data_dir) is None:
        return nothing
    try:
        scorer = _scorer_now(db, data_dir)
    except HistoryLoading:
        # A page does not wait for the history: it says so, and a reload shows the bands.
        return {**nothing, "loading": True}
    model = scorer.model
    if model is None or scorer.model_path is None:
        return nothing

    def bands(rows: list[BasketFeatures]) -> list[int]:
        if not rows:
            return []
        return [min(int(float(score) * 10), 9) for score in model.predict_features(rows)]

    # Kept when the history was built (each basket from what was known before it), so the
    # page does not walk every past order again.
    counts = [0] * 10
    for band in bands(scorer.recent[-last:]):
        counts[band] += 1
    settled, outcomes = scorer.settled[-last:], scorer.settled_returned[-last:]
    judged = [0] * 10
    returned = [0] * 10
    for band, came_back in zip(bands(settled), outcomes, strict=True):
        judged[band] += 1
        returned[band] += came_back
    return {
        "model": scorer.model_path.name,
        "loading": False,
        "summary": model_summary(model),
        "bands": [f"{10 * b}-{10 * b + 10}%" for b in range(10)],
        "counts": counts,
        "returned_share": [
            round(r / n, 3) if n >= MIN_BAND_ORDERS else None
            for r, n in zip(returned, judged, strict=True)
        ],
        "judged": judged,
        "settled": len(settled),
        "settled_before": scorer.settled_before,
    }
