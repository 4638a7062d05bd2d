"""Load the demo retailer: one workflow across every domain.

The generator (:mod:`rapport.demo`) makes a deterministic retailer; this workflow loads it
through each domain's face, in the order the facts depend on each other:

1. stores, products and customers (catalogue, customers), then stock on every shelf;
2. sign-ups, browsing and shop visits through event ingestion, then orders, deliveries and
   returns (orders);
3. the event processors catch up, so profiles, traits and loyalty points follow from the log;
4. the paid side of the loyalty program (plan, rewards, member prices, paying members), points
   expiry and the tier review that is due;
5. surveys, answers, reviews and tickets (feedback);
6. a recommendation model trained on the loaded purchases (recommend).

:func:`load_demo` is the verb. It has two halves, :func:`load_demo_data` (steps 1-5) and
:func:`train_demo_recommendations` (step 6), so that a caller can report between them (the
``rapport demo`` command prints what was loaded while the model trains). Every step is safe to
re-run: the same seed and end date load nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal, Protocol

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


@dataclass(frozen=True)
class DemoLoad:
    """A whole demo load: the data, and the recommendation model trained on it."""

    data: DemoData
    model: recommend.ModelVersion


def demo_window(end: date | None) -> tuple[date, date]:
    """Two years of history ending ``end`` (default: yesterday, so the demo feels current)."""
    last = end or (clock.now().date() - timedelta(days=1))
    return last - timedelta(days=HISTORY_DAYS - 1), last


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
        program = load_demo_loyalty(db, retailer=retailer)
        expired = loyalty.expire_lots(db)
        loyalty.review_due_tiers(db)
        experience = load_demo_feedback(db, retailer=retailer, seed=seed)
    return DemoData(
        seed=seed,
        start=start,
        end=last,
        records=records,
        stock_levels=stock_levels,
        events=ingested,
        orders=placed,
        loyalty=program,
        expired_points=expired.points,
        feedback=experience,
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
