"""The demo load as one workflow (rapport.flows.demo): a small generated retailer is loaded
through every domain's face, its processors catch up, a recommendation model is trained on it,
and loading it again adds nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.domains import load_tasks
from rapport.flows.demo import DemoStep, demo_window, load_demo, load_demo_data
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.db import open_session
from rapport.recommend import service as recommend
from tests.conftest import migrated_database

CUSTOMERS = 30
SEED = 5
END = date(2025, 6, 30)

load_tasks()  # profiles, traits and points come from the processors


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty migrated database of its own: the workflow opens and commits its own sessions."""
    url, remove = migrated_database(backend, tmp_path)
    yield url
    remove()


class RecordedProgress:
    def __init__(self) -> None:
        self.begun: list[tuple[DemoStep, int | None]] = []
        self.advanced: dict[DemoStep, int] = {}
        self.totals: dict[DemoStep, int | None] = {}

    def begin(self, step: DemoStep, total: int | None) -> None:
        self.begun.append((step, total))
        self.totals[step] = total

    def resize(self, step: DemoStep, total: int) -> None:
        self.totals[step] = total

    def advance(self, step: DemoStep, count: int) -> None:
        self.advanced[step] = self.advanced.get(step, 0) + count


def test_the_demo_loads_every_domain_once_and_trains_on_it(fresh_url: str, tmp_path: Path) -> None:
    # given a small demo retailer, as the generator makes it for this seed and window
    start, last = demo_window(END)
    retailer = DemoRetailer(seed=SEED, customers=CUSTOMERS, start=start, end=last)
    histories = list(retailer.histories())
    progress = RecordedProgress()
    # when the workflow loads it
    first = load_demo(
        customers=CUSTOMERS,
        seed=SEED,
        end=END,
        progress=progress,
        database_url=fresh_url,
        data_dir=tmp_path,
    )
    # then it says what it loaded: the generator's stores, products, customers, shelves,
    # events (a sign-up, each view, each visit) and orders
    data = first.data
    assert (data.seed, data.start, data.end) == (SEED, start, last)
    assert (data.records.stores, data.records.products, data.records.customers) == (
        len(retailer.stores()),
        len(retailer.products()),
        CUSTOMERS,
    )
    assert data.stock_levels == len(retailer.stores()) * len(retailer.products())
    # (browsing and visits only of those who did not refuse analytics: demo/loader.py)
    tracked = [h for h in histories if h.customer.consents.get("analytics") is not False]
    assert data.events == len(histories) + sum(
        len(h.product_views) + len(h.store_visits) for h in tracked
    )
    assert data.orders == sum(len(h.orders) for h in histories)
    assert data.loyalty.rewards == 3
    # and the steps were shown in order, each advanced to its total
    assert [step for step, _total in progress.begun] == [
        "stores",
        "products",
        "customers",
        "activity",
        "orders",
        "profiles",
    ]
    assert progress.begun[2:5] == [
        ("customers", CUSTOMERS),
        ("activity", CUSTOMERS),
        ("orders", CUSTOMERS),
    ]
    assert {step: progress.advanced[step] for step in ("customers", "activity", "orders")} == {
        "customers": CUSTOMERS,
        "activity": CUSTOMERS,
        "orders": CUSTOMERS,
    }
    assert progress.advanced["stores"] == len(retailer.stores())
    assert progress.advanced["products"] == len(retailer.products())
    # the processors' step ends full, not past its total (it once showed 71256/7565)
    assert progress.advanced["profiles"] == progress.totals["profiles"]
    # and the domains hold it: the processors built profiles and points from the log
    with open_session(fresh_url) as db:
        assert catalog.count_stores(db) == len(retailer.stores())
        assert catalog.count_products(db) == len(retailer.products())
        assert customers.count_customers(db) == CUSTOMERS
        assert orders.count_orders(db) == data.orders
        busiest = max(histories, key=lambda h: len(h.product_views))
        profile = customers.find_customer_by_external_id(
            db, external_id=busiest.customer.external_id
        )
        assert profile is not None
        assert customers.get_traits(db, customer_id=profile.customer_id) is not None
        best_buyer = max(histories, key=lambda h: len(h.orders))
        member = customers.find_customer_by_external_id(
            db, external_id=best_buyer.customer.external_id
        )
        assert member is not None
        assert loyalty.get_member(db, customer_id=member.customer_id) is not None
        # and the recommendation model it trained is the one served
        assert [v.version for v in recommend.list_versions(db)] == [first.model.version]
    assert recommend.active_version(tmp_path) == first.model.version
    assert first.model.purchases > 0

    # when it is loaded again with the same seed and window
    second = load_demo(
        customers=CUSTOMERS, seed=SEED, end=END, database_url=fresh_url, data_dir=tmp_path
    )
    # then nothing is added twice
    again = second.data
    assert (again.records.customers, again.events, again.orders) == (0, 0, 0)
    assert again.loyalty.paying_members == 0
    assert again.feedback.answers == 0
    with open_session(fresh_url) as db:
        assert customers.count_customers(db) == CUSTOMERS
        assert orders.count_orders(db) == data.orders


HISTORY_CUSTOMERS = 150
HISTORY_SEED = 11


def _utc(value: datetime | str) -> datetime:
    """A stored moment read back through SQL (SQLite answers text) as aware UTC."""
    return clock.as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _figures(url: str) -> dict[str, object]:
    """What the admin pages chart, month by month: ledger movements by kind, customers
    joining, survey answers by kind."""
    with open_session(url) as db:
        movements = db.execute(
            text(
                "SELECT kind, created_at, points, order_id FROM loyalty_transactions"
                " ORDER BY created_at, id"
            )
        ).all()
        joined = db.scalars(text("SELECT created_at FROM customers")).all()
        answers = db.execute(text("SELECT kind, answered_at FROM feedback_responses")).all()
    by_month: Counter[tuple[str, str]] = Counter()
    points: Counter[tuple[str, str]] = Counter()
    for kind, at, moved, _order in movements:
        month = _utc(at).strftime("%Y-%m")
        by_month[kind, month] += 1
        points[kind, month] += moved
    return {
        "movements": dict(by_month),
        "points": dict(points),
        "joined": dict(Counter(_utc(at).strftime("%Y-%m") for at in joined)),
        "answers": dict(Counter((k, _utc(at).strftime("%Y-%m")) for k, at in answers)),
    }


def test_the_demo_history_is_dated_through_its_two_years(
    backend: str, fresh_url: str, tmp_path: Path
) -> None:
    # given a small demo retailer loaded today, with two years up to yesterday
    data = load_demo_data(customers=HISTORY_CUSTOMERS, seed=HISTORY_SEED, database_url=fresh_url)
    today = clock.now().date()
    month_ago = clock.now() - timedelta(days=28)
    with open_session(fresh_url) as db:
        placed = {
            order_id: _utc(at)
            for order_id, at in db.execute(text("SELECT order_id, placed_at FROM orders"))
        }
        movements = [
            (kind, _utc(at), order_id)
            for kind, at, order_id in db.execute(
                text("SELECT kind, created_at, order_id FROM loyalty_transactions")
            )
        ]
        # then the ledger moves in most months of the two years, not all on the load day
        months = {at.strftime("%Y-%m") for _kind, at, _order in movements}
        assert len(months) >= 18
        earned = [(at, order_id) for kind, at, order_id in movements if kind == "earn"]
        assert earned
        for at, _order_id in earned:
            assert at.date() != today  # nothing earns on the load day (no order is placed)
        # an order's points are posted when it was placed (an apology for its late parcel
        # when the parcel was late)
        for_orders = [(at, placed[order_id]) for at, order_id in earned if order_id]
        assert all(order_at <= at <= order_at + timedelta(days=30) for at, order_at in for_orders)
        assert sum(at == order_at for at, order_at in for_orders) >= 0.9 * len(for_orders)
        # and members spent points, and lots expired, on dates spread through the past
        redeemed = {at.strftime("%Y-%m") for kind, at, _o in movements if kind == "redeem"}
        expired = {at.strftime("%Y-%m") for kind, at, _o in movements if kind == "expire"}
        assert len(redeemed) >= 3
        assert len(expired) >= 6
        assert all(at.date() < today for kind, at, _o in movements if kind == "redeem")
        assert data.points.redemptions > 0
        assert data.points.expired_points > 0
        # and the ledger is sound: every balance is the sum of its movements and lots
        assert loyalty.invariant_violations(db) == []
        # and paying members joined during the last year, not on the load day
        started = [
            _utc(at) for at in db.scalars(text("SELECT started_at FROM loyalty_memberships"))
        ]
        assert started
        assert all(
            clock.now() - timedelta(days=331) < at < clock.now() - timedelta(hours=12)
            for at in started
        )
        # and the service team has a recent bad patch: late parcels and open tickets lately
        late = db.scalar(
            text("SELECT count(*) FROM orders WHERE late_notified_at >= :since"),
            {"since": month_ago},
        )
        assert late >= 1
        opened = [
            _utc(at)
            for at in db.scalars(
                text("SELECT opened_at FROM feedback_tickets WHERE status = 'open'")
            )
        ]
        assert sum(at >= month_ago for at in opened) >= 3
        assert any(at < clock.now() - timedelta(days=7) for at in opened)  # one past its target
    figures = _figures(fresh_url)
    # and customers joined over the two years, not all "since" the load day
    assert len(figures["joined"]) >= 12
    # and CSAT and CES were answered alongside NPS, over several months
    answered = figures["answers"]
    for kind in ("nps", "csat", "ces"):
        assert len({month for k, month in answered if k == kind}) >= 4, kind

    # when the same seed is loaded again into another database
    other, remove = migrated_database(backend, tmp_path / "again")
    try:
        load_demo_data(customers=HISTORY_CUSTOMERS, seed=HISTORY_SEED, database_url=other)
        # then it holds the same figures
        assert _figures(other) == figures
    finally:
        remove()
