"""Load the generated retailer through each domain's own service, in batches: stores,
products and customers; stock; sign-ups, browsing and visits (through event ingestion) and
shared preferences; orders, deliveries and returns; the loyalty program's paid side.

Feedback has its own loader (:mod:`rapport.demo.feedback_loader`); the order in which the
steps run, and the processors between them, is the workflow :mod:`rapport.flows.demo`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from typing import Any, Literal, TypeVar

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.service import ProductUpsert, StoreUpsert
from rapport.customers import service as customers
from rapport.customers.service import ImportedCustomer
from rapport.demo.generator import DemoRetailer
from rapport.demo.records import (
    CustomerHistory,
    CustomerRecord,
    OrderRecord,
    ProductRecord,
    StoreRecord,
)
from rapport.events import service as events
from rapport.events.service import NewEvent
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.service import ImportedLine, ImportedOrder, ImportedReturn
from rapport.platform import clock

T = TypeVar("T")
BATCH_SIZE = 2_000
LoadStep = Literal["stores", "products", "customers", "activity", "orders"]
Progress = Callable[[LoadStep, int], None]  # (step, how many more were loaded)


@dataclass(frozen=True)
class LoadSummary:
    stores: int
    products: int
    customers: int


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def store_upsert(record: StoreRecord) -> StoreUpsert:
    return StoreUpsert(
        store_id=record.store_id,
        name=record.name,
        city=record.city,
        address=record.address,
        country=record.country,
        latitude=record.latitude,
        longitude=record.longitude,
        timezone=record.timezone,
        opening_hours=dict(record.opening_hours),
    )


def product_upsert(record: ProductRecord) -> ProductUpsert:
    return ProductUpsert(
        sku=record.sku,
        name=record.name,
        category_path=record.category_path,
        brand=record.brand,
        price_minor=record.price_minor,
        cost_minor=record.cost_minor,
        currency=record.currency,
        country_of_origin=record.country_of_origin,
        season=record.season,
        attributes={**record.attributes, "repeat_purchase": record.repeat_purchase},
    )


def imported_customer(record: CustomerRecord) -> ImportedCustomer:
    return ImportedCustomer(
        external_id=record.external_id,
        email=record.email,
        first_name=record.first_name,
        last_name=record.last_name,
        locale=record.locale,
        home_city=record.home_city,
        home_latitude=record.home_latitude,
        home_longitude=record.home_longitude,
        consents=dict(record.consents),
        created_at=record.signed_up_at,
    )


def demo_stock(retailer: DemoRetailer) -> Iterator[tuple[str, str, int]]:
    """Units per product and location: shops stock most of the range thinly (some lines are
    out), the web warehouse holds everything deeply. Same seed, same shelves."""
    rng = random.Random(f"{retailer.seed}:stock")
    for store in retailer.stores():
        for product in retailer.products():
            if store.store_id == "web":
                yield product.sku, store.store_id, rng.randint(20, 400)
            else:
                yield product.sku, store.store_id, 0 if rng.random() < 0.15 else rng.randint(1, 12)


def load_demo_stock(db: Session, *, retailer: DemoRetailer) -> int:
    loaded = 0
    for batch in batched(demo_stock(retailer), 5_000):
        loaded += catalog.load_stock(db, levels=batch)
    return loaded


def load_demo(
    db: Session, *, retailer: DemoRetailer, progress: Progress | None = None
) -> LoadSummary:
    """Load stores, products and customers; safe to re-run (nothing is added twice)."""
    report = progress or (lambda _step, _n: None)
    stores = retailer.stores()
    catalog.upsert_stores(db, stores=[store_upsert(s) for s in stores])
    report("stores", len(stores))
    products = retailer.products()
    for product_batch in batched(products, BATCH_SIZE):
        catalog.upsert_products(db, products=[product_upsert(p) for p in product_batch])
        report("products", len(product_batch))
    added = 0
    for customer_batch in batched(retailer.customers(), BATCH_SIZE):
        added += customers.import_customers(
            db, customers=[imported_customer(c) for c in customer_batch]
        )
        report("customers", len(customer_batch))
    return LoadSummary(stores=len(stores), products=len(products), customers=added)


# --- activity: views, visits, sign-ups and shared preferences -----------------------------

SIZES = ("XS", "S", "M", "L", "XL")


def activity_events(history: CustomerHistory, category_of: dict[str, str]) -> list[NewEvent]:
    """One customer's browsing and shop visits as tracking events, with stable event ids so
    re-running the demo stores nothing twice."""
    customer = history.customer
    number = customer.external_id
    # The ids are stable but do not spell out the customer number (erasure replaces them).
    tag = hashlib.sha256(f"rapport-demo:{number}".encode()).hexdigest()[:20]
    events: list[NewEvent] = [
        {
            "event_id": f"demo-{tag}-signup",
            "type": "identified",
            "user_id": number,
            "anonymous_id": None,
            "channel": "web",
            "occurred_at": customer.signed_up_at,
            "properties": {
                "traits": {
                    "email": customer.email,
                    "firstName": customer.first_name,
                    "lastName": customer.last_name,
                }
            },
            "context": {},
            "source": "demo",
        }
    ]
    if customer.consents.get("analytics") is False:
        # Their browsing and visits are not tracked: the shop's banner sends none, and
        # ingestion would keep none (docs/tracking.md).
        return events
    for index, view in enumerate(history.product_views):
        events.append(
            {
                "event_id": f"demo-{tag}-view-{index}",
                "type": "product_viewed",
                "user_id": number,
                "anonymous_id": None,
                "channel": view.channel,
                "occurred_at": view.viewed_at,
                "properties": {"sku": view.sku, "category": category_of.get(view.sku, "")},
                "context": {"device": view.device},
                "source": "demo",
            }
        )
    for index, visit in enumerate(history.store_visits):
        events.append(
            {
                "event_id": f"demo-{tag}-visit-{index}",
                "type": "store_visited",
                "user_id": number,
                "anonymous_id": None,
                "channel": "store",
                "occurred_at": visit.visited_at,
                "properties": {"store_id": visit.store_id},
                "context": {"store_id": visit.store_id},
                "source": "demo",
            }
        )
    return events


def shared_preferences(history: CustomerHistory, category_of: dict[str, str]) -> dict[str, Any]:
    """What about a quarter of customers tell the retailer (chosen by their number, so the
    same customers share every time): favourite categories from what they look at most, and
    a clothing size."""
    number = int("".join(ch for ch in history.customer.external_id if ch.isdigit()) or 0)
    if number % 4 != 0:
        return {}
    counts: dict[str, int] = {}
    for view in history.product_views:
        category = category_of.get(view.sku)
        if category:
            counts[category] = counts.get(category, 0) + 1
    favourites = sorted(counts, key=lambda c: (-counts[c], c))[:3]
    preferences: dict[str, Any] = {"clothing_size": SIZES[number % len(SIZES)]}
    if favourites:
        preferences["favourite_categories"] = favourites
    return preferences


def shared_at(history: CustomerHistory, last: datetime) -> datetime:
    """When a customer filled in the preference centre: one to four weeks after signing up
    (by their number, so the same day every time), and not after ``last``."""
    number = int("".join(ch for ch in history.customer.external_id if ch.isdigit()) or 0)
    return min(history.customer.signed_up_at + timedelta(days=7 + number % 22, hours=3), last)


def load_demo_activity(
    db: Session, *, retailer: DemoRetailer, progress: Progress | None = None
) -> int:
    """Send each customer's sign-up, browsing and shop visits through event ingestion, and
    their shared preferences through ``customers.service``. Returns events ingested."""
    report = progress or (lambda _step, _n: None)
    category_of = {p.sku: p.category_path for p in retailer.products()}
    last = datetime.combine(retailer.end, time(23, 59), tzinfo=UTC)
    ingested = 0
    for histories in batched(retailer.histories(), 200):
        batch = [event for h in histories for event in activity_events(h, category_of)]
        outcomes = events.ingest_events(db, events=batch)
        ingested += sum(1 for outcome in outcomes if outcome.status == "accepted")
        for history in histories:
            preferences = shared_preferences(history, category_of)
            customer = customers.find_customer_by_external_id(
                db, external_id=history.customer.external_id
            )
            if (
                preferences
                and customer is not None
                and not customers.get_preferences(db, customer_id=customer.customer_id)
            ):
                clock.set_clock(clock.FrozenClock(shared_at(history, last)))
                try:
                    customers.set_preferences(
                        db,
                        customer_id=customer.customer_id,
                        values=preferences,
                        source="demo preference centre",
                    )
                finally:
                    clock.reset_clock()
        report("activity", len(histories))
    return ingested


# --- orders, deliveries and returns --------------------------------------------------------


def imported_order(record: OrderRecord, category_of: dict[str, str]) -> ImportedOrder:
    return ImportedOrder(
        order_id=record.order_id,
        customer_external_id=record.customer_external_id,
        channel=record.channel,
        fulfilment=record.fulfilment,
        store_id=record.store_id,
        placed_at=record.placed_at,
        currency=record.currency,
        lines=[
            ImportedLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                category=category_of.get(line.sku),
            )
            for line in record.lines
        ],
        promised_delivery=record.promised_delivery,
        delivered_at=record.delivered_at,
        carrier=record.carrier,
        returns=[
            ImportedReturn(
                sku=r.sku,
                quantity=r.quantity,
                reason=r.reason,
                returned_at=r.returned_at,
                channel=r.channel,
            )
            for r in record.returns
        ],
    )


def load_demo_orders(
    db: Session, *, retailer: DemoRetailer, progress: Progress | None = None
) -> int:
    """Load every customer's orders, deliveries (some late) and returns through
    ``orders.service``. Returns how many orders were added."""
    report = progress or (lambda _step, _n: None)
    category_of = {p.sku: p.category_path for p in retailer.products()}
    added = 0
    for histories in batched(retailer.histories(), 200):
        records = [imported_order(o, category_of) for h in histories for o in h.orders]
        added += orders.import_orders(db, orders=records, source="demo")
        report("orders", len(histories))
    return added


# --- loyalty: a paid plan, rewards, member prices and paying members -----------------------

DEMO_PLAN = "plus"


@dataclass(frozen=True)
class LoyaltySummary:
    paying_members: int
    rewards: int
    member_prices: int


def load_demo_loyalty(
    db: Session, *, retailer: DemoRetailer, until: datetime | None = None
) -> LoyaltySummary:
    """The program's paid side: the 'Plus' plan (49 a year: free shipping, member prices, 48 h
    early access), three rewards, member prices on a tenth of the range, and the most loyal
    customers (four orders or more, one in two of them) as paying members, each joined at
    one of their orders of the year before ``until`` (the load's moment; default now), or on
    a day of that year when they ordered nothing in it. Earning rules and tiers are the
    program's defaults; the ledger itself comes from replaying the demo orders through the
    earning processor. Safe to re-run."""
    loyalty.save_plan(
        db,
        plan_id=DEMO_PLAN,
        name="Rapport Plus",
        fee_minor=4900,
        currency="EUR",
        period="year",
        free_shipping=True,
        member_prices=True,
        early_access_hours=48,
    )
    demo_rewards = [
        ("coffee-5", "5 euros off", 500, "amount", 500),
        ("ten-percent", "10% off your next order", 1000, "percent", 10),
        ("big-20", "20 euros off 100 or more", 1800, "amount", 2000),
    ]
    for reward_id, name, cost, kind, value in demo_rewards:
        loyalty.save_reward(
            db,
            reward_id=reward_id,
            name=name,
            points_cost=cost,
            coupon_kind=kind,
            coupon_value=value,
            min_subtotal_minor=10_000 if reward_id == "big-20" else 0,
        )
    rng = random.Random(f"{retailer.seed}:loyalty")
    priced = 0
    for product in retailer.products():
        member_price = catalog.effective_price(
            db, sku=product.sku, channel=loyalty.MEMBER_PRICE_CHANNEL
        )
        if rng.random() < 0.1 and member_price == product.price_minor:
            catalog.set_channel_price(
                db,
                sku=product.sku,
                channel=loyalty.MEMBER_PRICE_CHANNEL,
                price_minor=product.price_minor * 9 // 10,
                reason="Plus members' price",
            )
            priced += 1
    moment = until or clock.now()
    year_ago = moment - timedelta(days=MEMBERSHIP_DAYS)
    loyal = [
        (h.customer.external_id, [o.placed_at for o in h.orders if year_ago < o.placed_at < moment])
        for h in retailer.histories()
        if len(h.orders) >= 4
    ]
    chosen = [(external_id, placed) for external_id, placed in loyal if rng.random() < 0.5]
    ids = customers.customer_ids_by_external_id(db, external_ids=[c for c, _ in chosen])
    joined = 0
    try:
        for external_id, placed in chosen:
            customer_id = ids.get(external_id)
            if customer_id is None or loyalty.current_plan(db, customer_id=customer_id):
                continue
            pick = random.Random(f"{retailer.seed}:joined:{external_id}")
            days = pick.uniform(1, MEMBERSHIP_DAYS)
            joined_at = pick.choice(sorted(placed)) if placed else moment - timedelta(days=days)
            clock.set_clock(clock.FrozenClock(joined_at))
            loyalty.join(db, customer_id=customer_id, plan_id=DEMO_PLAN)
            joined += 1
    finally:
        clock.reset_clock()
    return LoyaltySummary(paying_members=joined, rewards=len(demo_rewards), member_prices=priced)


MEMBERSHIP_DAYS = 330
"""Paying members joined within this many days of the load, so every membership is in its
first (yearly) period and none is due for renewal on the load day."""
