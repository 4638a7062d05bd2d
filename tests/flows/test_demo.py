"""The demo load as one workflow (rapport.flows.demo): a small generated retailer is loaded
through every domain's face, its processors catch up, a recommendation model is trained on it,
and loading it again adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.domains import load_tasks
from rapport.flows.demo import DemoStep, demo_window, load_demo
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade
from rapport.recommend import service as recommend
from tests.conftest import make_database_url

CUSTOMERS = 30
SEED = 5
END = date(2025, 6, 30)

load_tasks()  # profiles, traits and points come from the processors


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty migrated database of its own: the workflow opens and commits its own sessions."""
    url, remove = make_database_url(backend, tmp_path)
    upgrade(url)
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
    assert data.events == sum(1 + len(h.product_views) + len(h.store_visits) for h in histories)
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
