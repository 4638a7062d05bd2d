"""Load the demo retailer: one workflow across every domain.

The generator (:mod:`rapport.demo`) makes a deterministic retailer; this workflow loads it
through each domain's face, in the order the facts depend on each other:

1. stores, products and customers (catalogue, customers), then stock on every shelf;
2. sign-ups, browsing and shop visits through event ingestion, then orders, deliveries and
   returns (orders);
3. the event processors catch up, so profiles, traits and loyalty points follow from the log;
4. the paid side of the loyalty program (plan, rewards, member prices, paying members);
5. surveys, answers, reviews and tickets (feedback), and the processors catch up again (points
   for verified reviews); then members spending points and the nightly expiry runs replayed
   through the two years, and the tier review that is due;
6. a recommendation model trained on the loaded purchases (recommend).

:func:`load_demo` is the verb. It has two halves, :func:`load_demo_data` (steps 1-5) and
:func:`train_demo_recommendations` (step 6), so that a caller can report between them (the
``rapport demo`` command prints what was loaded while the model trains). Every step is safe to
re-run: the same seed and end date load nothing twice.

History is dated as it happened, not on the load day: customers join on their sign-up day,
the earning processor runs with the platform clock at each fact's time (so an order's points
are posted when it was placed, a return's reversal when it came back), paying members join at
an order in the last year, points are spent and expire on their own dates
(:mod:`rapport.demo.points_history`), and survey answers and tickets carry their moments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy.orm import Session

from rapport.demo.feedback_loader import FeedbackSummary, load_demo_feedback
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import (
    LoadStep,
    LoadSummary,
    LoyaltySummary,
    load_demo_activity,
    load_demo_loyalty,
    load_demo_orders,
    load_demo_stock,
)
from rapport.demo.loader import load_demo as load_demo_records
from rapport.demo.points_history import PointsHistory, load_points_history
from rapport.events import service as events
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings
from rapport.recommend import service as recommend

DemoStep = Literal[LoadStep, "profiles"]
"""The steps a progress display shows, in the order they begin."""

HISTORY_DAYS = 730
"""Two years of history."""


class DemoProgress(Protocol):
    """What a caller sees of a demo load (the CLI draws each step as a progress bar)."""

    def begin(self, step: DemoStep, total: int | None) -> None:
        """A step is announced; ``total`` is how many units it will advance, if known."""

    def advance(self, step: DemoStep, count: int) -> None:
        """``count`` more units of ``step`` are loaded."""

    def resize(self, step: DemoStep, total: int) -> None:
        """``step`` turned out another size than announced: ``total`` units in all."""


class _Silent:
    def begin(self, step: DemoStep, total: int | None) -> None:
        pass

    def resize(self, step: DemoStep, total: int) -> None:
        pass

    def advance(self, step: DemoStep, count: int) -> None:
        pass


@dataclass(frozen=True)
class DemoData:
    """What one load of the demo retailer's data added (zeros where a re-run found it there)."""

    seed: int
    start: date
    end: date
    records: LoadSummary
    stock_levels: int
    events: int
    orders: int
    loyalty: LoyaltySummary
    expired_points: int
    feedback: FeedbackSummary
    points: PointsHistory


@dataclass(frozen=True)
class DemoLoad:
    """A whole demo load: the data, and the recommendation model trained on it."""

    data: DemoData
    model: recommend.ModelVersion


def demo_window(end: date | None) -> tuple[date, date]:
    """Two years of history ending ``end`` (default: yesterday, so the demo feels current)."""
    last = end or (clock.now().date() - timedelta(days=1))
    return last - timedelta(days=HISTORY_DAYS - 1), last


_Handler = Callable[[Session, list[events.LoggedEvent]], None]

EARNING_PROCESSOR = "loyalty.earning"
"""The processor that posts points; the demo runs it with the clock at each fact's time."""

DATED_FACTS = frozenset(
    {
        "order_placed",
        "order_returned",
        "delivery_late",
        "delivery_failed",
        "preference_shared",
        "review_verified",
        "customers_merged",
    }
)
"""The facts the earning processor turns into ledger movements: each is handed to it alone,
with the clock at the fact's time (the events between two of them ride along)."""


@contextmanager
def earning_at_fact_time(latest: datetime) -> Iterator[None]:
    """While the demo's two years go through the processors, the earning processor sees the
    platform clock at each fact's time (never later than ``latest``, the load's moment), so
    the ledger's movements are dated when their orders, returns and late parcels happened,
    as if the processor had kept up all along. Restored on leaving."""
    replaced = [p for p in events.registered_processors() if p.name == EARNING_PROCESSOR]
    originals = [(p, p.handle) for p in replaced]

    def dated(handle: _Handler) -> _Handler:
        def handle_at_fact_time(db: Session, batch: list[events.LoggedEvent]) -> None:
            begin = 0
            for index in range(1, len(batch) + 1):
                if index < len(batch) and batch[index].type not in DATED_FACTS:
                    continue
                at = min(clock.as_utc(batch[begin].occurred_at), latest)
                clock.set_clock(clock.FrozenClock(at))
                try:
                    handle(db, batch[begin:index])
                finally:
                    clock.reset_clock()
                begin = index

        return handle_at_fact_time

    for proc, handle in originals:
        proc.handle = dated(handle)
    try:
        yield
    finally:
        for proc, handle in originals:
            proc.handle = handle


def load_demo_data(
    *,
    customers: int,
    seed: int,
    end: date | None = None,
    progress: DemoProgress | None = None,
    database_url: str | None = None,
) -> DemoData:
    """Generate the demo retailer (``customers`` customers, two years ending ``end``) and load
    its stores, products, customers, activity, orders, loyalty program and feedback.

    Event processors must be registered first (:func:`rapport.domains.load_tasks`): profiles,
    traits and points come from them."""
    shown = progress or _Silent()
    start, last = demo_window(end)
    now = clock.now()
    retailer = DemoRetailer(seed=seed, customers=customers, start=start, end=last)
    with open_session(database_url) as db:
        shown.begin("stores", None)
        shown.begin("products", None)
        shown.begin("customers", customers)
        shown.begin("activity", customers)
        shown.begin("orders", customers)
        records = load_demo_records(db, retailer=retailer, progress=shown.advance)
        stock_levels = load_demo_stock(db, retailer=retailer)
        ingested = load_demo_activity(db, retailer=retailer, progress=shown.advance)
        placed = load_demo_orders(db, retailer=retailer, progress=shown.advance)
        # Units: events each processor reads, summed over processors (what run_processors
        # counts). Processors log events of their own (points earned ...): the total grows.
        total = sum(events.processor_lag(db).values())
        db.rollback()
        shown.begin("profiles", total)
        done = 0
        with earning_at_fact_time(now):
            while handled := events.run_processors(database_url=database_url, max_batches=4):
                done += handled
                shown.advance("profiles", handled)
                remaining = sum(events.processor_lag(db).values())
                db.rollback()
                if done + remaining > total:
                    total = done + remaining
                    shown.resize("profiles", total)
        if done != total:  # positions left unused (rolled back) are no events to read
            shown.resize("profiles", done)
        program = load_demo_loyalty(db, retailer=retailer, until=now)
        experience = load_demo_feedback(db, retailer=retailer, seed=seed)
        # Points for verified reviews and apologies are in the log by now: posted at their
        # own dates before members spend and lots expire through the two years.
        db.commit()  # the processors write in sessions of their own
        with earning_at_fact_time(now):
            while events.run_processors(database_url=database_url, max_batches=4):
                pass
        points = load_points_history(db, retailer=retailer, seed=seed, until=now)
        loyalty.review_due_tiers(db)
    return DemoData(
        seed=seed,
        start=start,
        end=last,
        records=records,
        stock_levels=stock_levels,
        events=ingested,
        orders=placed,
        loyalty=program,
        expired_points=points.expired_points,
        feedback=experience,
        points=points,
    )


def train_demo_recommendations(
    *, data_dir: Path | None = None, database_url: str | None = None
) -> recommend.ModelVersion:
    """Train and publish a recommendation model on everything loaded so far, and fit customer
    lifetime value (``orders.fit_customer_value``) on the same history."""
    with open_session(database_url) as db:
        model = recommend.train_model(
            db, data_dir=data_dir or get_settings().data_dir, trained_by="demo"
        )
        orders.fit_customer_value(db)
        return model


def load_demo(
    *,
    customers: int,
    seed: int,
    end: date | None = None,
    progress: DemoProgress | None = None,
    database_url: str | None = None,
    data_dir: Path | None = None,
) -> DemoLoad:
    """Load the demo retailer's data (:func:`load_demo_data`), then train recommendations on it
    (:func:`train_demo_recommendations`)."""
    data = load_demo_data(
        customers=customers, seed=seed, end=end, progress=progress, database_url=database_url
    )
    model = train_demo_recommendations(data_dir=data_dir, database_url=database_url)
    return DemoLoad(data=data, model=model)
