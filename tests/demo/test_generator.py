"""The demo generator: deterministic, streaming, and shaped like a real retailer's history.

Distribution checks run on one shared sample (seed 42, 4,000 customers) with tolerances wide
enough for sampling noise and narrow enough to catch a broken model.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapport.demo.generator import DemoRetailer
from rapport.demo.records import CHANNELS, FULFILMENTS, CustomerHistory, OrderRecord

SAMPLE_SEED = 42
SAMPLE_SIZE = 4_000
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)  # exclusive: the default window ends 2025-12-31
CITY_CENTRES = {
    "London": (51.5074, -0.1278),
    "Manchester": (53.4808, -2.2426),
    "Paris": (48.8566, 2.3522),
    "Lyon": (45.7640, 4.8357),
    "Berlin": (52.5200, 13.4050),
}
CITY_COUNTRY = {"London": "GB", "Manchester": "GB", "Paris": "FR", "Lyon": "FR", "Berlin": "DE"}


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), independent of the generator's own approximation."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def digest(histories: list[CustomerHistory]) -> str:
    return hashlib.sha256(repr(histories).encode()).hexdigest()


@pytest.fixture(scope="module")
def retailer() -> DemoRetailer:
    return DemoRetailer(seed=SAMPLE_SEED, customers=SAMPLE_SIZE)


@pytest.fixture(scope="module")
def histories(retailer: DemoRetailer) -> list[CustomerHistory]:
    return list(retailer.histories())


@pytest.fixture(scope="module")
def orders(histories: list[CustomerHistory]) -> list[OrderRecord]:
    return [order for history in histories for order in history.orders]


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_output() -> None:
    # given two generators built independently from the same seed
    first = DemoRetailer(seed=7, customers=300)
    second = DemoRetailer(seed=7, customers=300)

    # when both are read in full
    # then stores, catalogue and every history are equal, record for record
    assert first.stores() == second.stores()
    assert first.products() == second.products()
    assert list(first.histories()) == list(second.histories())


def test_different_seed_gives_different_output() -> None:
    # given generators that differ only in their seed
    first = DemoRetailer(seed=7, customers=50)
    second = DemoRetailer(seed=8, customers=50)

    # then their catalogues and customers differ
    assert first.products() != second.products()
    assert list(first.customers()) != list(second.customers())


def test_output_is_the_same_in_a_fresh_process_with_another_hash_seed() -> None:
    # given the digest of the first histories computed here
    local = digest(list(itertools.islice(DemoRetailer(seed=3, customers=40).histories(), 40)))
    program = (
        "import hashlib, itertools\n"
        "from rapport.demo.generator import DemoRetailer\n"
        "h = list(itertools.islice(DemoRetailer(seed=3, customers=40).histories(), 40))\n"
        "print(hashlib.sha256(repr(h).encode()).hexdigest())\n"
    )

    # when another interpreter, with a different string-hash salt, computes it
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )

    # then it matches: nothing depends on salted hash() or on process state
    assert result.stdout.strip() == local


def test_a_customer_history_does_not_depend_on_how_many_customers_there_are() -> None:
    # given a small and a large population from the same seed
    small = list(itertools.islice(DemoRetailer(seed=5, customers=20).histories(), 20))
    large = list(itertools.islice(DemoRetailer(seed=5, customers=1_000_000).histories(), 20))

    # then the first customers are the same people with the same histories
    assert small == large


def test_customers_are_the_records_of_histories_in_external_id_order() -> None:
    # given a generator
    retailer = DemoRetailer(seed=11, customers=500)

    # when customers and histories are both read
    customers = list(retailer.customers())

    # then they agree one for one, numbered C0000001 upwards
    assert customers == [history.customer for history in retailer.histories()]
    assert [c.external_id for c in customers] == [f"C{n:07d}" for n in range(1, 501)]


def test_zero_customers_and_bad_arguments() -> None:
    # given no customers, then there is a catalogue but nobody in it
    empty = DemoRetailer(seed=1, customers=0)
    assert empty.products()
    assert list(empty.customers()) == []
    assert list(empty.histories()) == []
    # and nonsense arguments are refused
    with pytest.raises(ValueError, match="customers"):
        DemoRetailer(seed=1, customers=-1)
    with pytest.raises(ValueError, match="window"):
        DemoRetailer(seed=1, customers=1, start=date(2024, 1, 1), end=date(2024, 1, 31))


# -------------------------------------------------------------------------- memory and speed


def test_histories_stream_lazily_for_a_million_customers() -> None:
    # given a generator for a million customers
    retailer = DemoRetailer(seed=1, customers=1_000_000)

    # when the first 50 histories are taken
    first = list(itertools.islice(retailer.histories(), 50))

    # then they are the first 50 customers, made on demand (memory is checked below)
    assert len(first) == 50
    assert first[-1].customer.external_id == "C0000050"


def test_construction_allocates_nothing_per_customer() -> None:
    # given the memory a generator for 10 customers holds after construction
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        small = DemoRetailer(seed=1, customers=10)
        small_bytes = tracemalloc.get_traced_memory()[0] - before

        # when one is built for a million customers
        before = tracemalloc.get_traced_memory()[0]
        large = DemoRetailer(seed=1, customers=1_000_000)
        large_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    # then it holds the same (the catalogue and calendar only), a few MB at most
    assert small.products() == large.products()
    assert abs(large_bytes - small_bytes) < 64 * 1024
    assert large_bytes < 20 * 1024 * 1024


def test_iterating_histories_keeps_memory_bounded() -> None:
    # given a large population
    retailer = DemoRetailer(seed=2, customers=1_000_000)
    iterator = retailer.histories()
    for _ in itertools.islice(iterator, 100):  # warm up interned strings and caches
        pass

    # when 800 more histories are consumed one at a time
    tracemalloc.start()
    try:
        for _ in itertools.islice(iterator, 800):
            pass
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # then nothing accumulates: peak memory is that of a single history, not of 800
    assert current < 1024 * 1024
    assert peak < 4 * 1024 * 1024


# ----------------------------------------------------------------------------- stores, catalogue


def test_stores_sit_near_their_city_centre_plus_one_online_warehouse(
    retailer: DemoRetailer,
) -> None:
    # given the stores
    stores = retailer.stores()
    physical = [s for s in stores if s.store_id != "web"]

    # then there are 15-25 shops in the five cities, each within 12 km of the centre
    assert 15 <= len(physical) <= 25
    assert {s.city for s in physical} == set(CITY_CENTRES)
    for store in physical:
        assert store.latitude is not None
        assert store.longitude is not None
        assert km(store.latitude, store.longitude, *CITY_CENTRES[store.city]) < 12.0, store
        assert store.country == CITY_COUNTRY[store.city]
        assert store.opening_hours["sat"] == "09:00-20:00"
    # and exactly one online warehouse without coordinates
    web = [s for s in stores if s.store_id == "web"]
    assert len(web) == 1
    assert (web[0].city, web[0].latitude, web[0].longitude) == ("Online", None, None)
    assert len({s.store_id for s in stores}) == len(stores)


def test_catalogue_is_realistic(retailer: DemoRetailer) -> None:
    # given the catalogue
    products = retailer.products()
    by_path: defaultdict[str, list[int]] = defaultdict(list)
    for product in products:
        by_path[product.category_path].append(product.price_minor)

    # then it has 1,500-3,000 unique SKUs in two-level categories, all in EUR
    assert 1_500 <= len(products) <= 3_000
    assert len({p.sku for p in products}) == len(products)
    assert all(p.category_path.count("/") == 1 for p in products)
    assert {p.currency for p in products} == {"EUR"}
    assert {"Wine/Red", "Wine/White", "Grocery/Coffee", "Home/Furniture", "Apparel/Shoes"} <= set(
        by_path
    )
    # prices sit in realistic ranges, costs at 40-75 % of price
    wine_prices = [
        price for path, prices in by_path.items() if path.startswith("Wine/") for price in prices
    ]
    assert min(wine_prices) >= 600
    assert max(wine_prices) <= 4_000
    sofas = [p.price_minor for p in products if " sofa" in p.name]
    assert sofas
    assert all(30_000 <= price <= 150_000 for price in sofas)
    assert all(0.39 * p.price_minor <= p.cost_minor <= 0.76 * p.price_minor for p in products)
    # consumables come back, durables do not
    repeat = {p.category_path.split("/")[0]: p.repeat_purchase for p in products}
    assert repeat["Wine"]
    assert repeat["Grocery"]
    assert repeat["Beauty"]
    assert not repeat["Home"]
    assert not repeat["Toys"]
    # seasons, a corkscrew, origins and attributes are all there
    assert {p.season for p in products} == {None, "summer", "winter", "christmas"}
    assert any("corkscrew" in p.name for p in products if p.category_path == "Kitchen/Tools")
    assert all(len(p.country_of_origin) == 2 and p.country_of_origin.isupper() for p in products)
    wine_countries = {p.country_of_origin for p in products if p.category_path.startswith("Wine")}
    assert {"IT", "FR", "ES", "CL"} <= wine_countries
    assert all("grape" in p.attributes for p in products if p.category_path == "Wine/Red")
    assert all(
        {"colour", "size"} <= set(p.attributes)
        for p in products
        if p.category_path.startswith("Apparel")
    )


# ------------------------------------------------------------------------------ customers


def test_customers_are_plausible(histories: list[CustomerHistory], retailer: DemoRetailer) -> None:
    # given the sample's customers
    customers = [h.customer for h in histories]
    stores = [s for s in retailer.stores() if s.latitude is not None]
    locale_of = {"London": "en", "Manchester": "en", "Paris": "fr", "Lyon": "fr", "Berlin": "de"}

    # then emails are unique, synthetic, and on the reserved example domains
    assert len({c.email for c in customers}) == len(customers)
    assert {c.email.split("@")[1] for c in customers} == {
        "example.com",
        "example.org",
        "example.net",
    }
    assert all(c.email.isascii() for c in customers)
    for customer in customers[:500]:
        # they speak their city's language and prefer the nearest shop
        assert customer.locale == locale_of[customer.home_city]
        home = (customer.home_latitude, customer.home_longitude)
        assert km(*home, *CITY_CENTRES[customer.home_city]) < 60
        nearest = min(
            stores,
            key=lambda s: km(*home, s.latitude or 0.0, s.longitude or 0.0),
        )
        assert customer.preferred_store_id == nearest.store_id
        assert START <= customer.signed_up_at < END
    # consent shares are near their targets
    targets = {
        "analytics": 0.75,
        "personalization": 0.60,
        "marketing_email": 0.45,
        "marketing_push": 0.25,
        "location": 0.30,
    }
    for purpose, target in targets.items():
        share = sum(c.consents[purpose] for c in customers) / len(customers)
        assert abs(share - target) < 0.04, (purpose, share)
    assert all(set(c.consents) == set(targets) for c in customers)


# ------------------------------------------------------------------------------ orders


def test_every_order_is_well_formed(
    histories: list[CustomerHistory], retailer: DemoRetailer
) -> None:
    # given the catalogue, the stores and the customers' preferred shops
    skus = {p.sku for p in retailer.products()}
    store_ids = {s.store_id for s in retailer.stores()}
    order_ids: set[str] = set()

    for history in histories:
        customer = history.customer
        for seq, order in enumerate(history.orders, start=1):
            # then ids are unique and numbered per customer in time order
            assert order.order_id == f"O{customer.external_id[1:]}-{seq:03d}"
            assert order.order_id not in order_ids
            order_ids.add(order.order_id)
            assert order.customer_external_id == customer.external_id
            # lines reference real SKUs, stores are real, amounts are positive EUR
            assert order.lines
            assert len({line.sku for line in order.lines}) == len(order.lines)
            assert all(line.sku in skus for line in order.lines)
            assert all(line.quantity >= 1 and line.unit_price_minor > 0 for line in order.lines)
            assert order.store_id in store_ids
            assert order.currency == "EUR"
            assert order.channel in CHANNELS
            assert order.fulfilment in FULFILMENTS
            # and it happened after sign-up, inside the window
            assert customer.signed_up_at < order.placed_at < END
            assert order.placed_at.tzinfo is UTC
            if seq > 1:
                assert history.orders[seq - 2].placed_at <= order.placed_at


def test_fulfilment_follows_the_channel(
    histories: list[CustomerHistory], orders: list[OrderRecord]
) -> None:
    # given each customer's preferred shop
    preferred = {h.customer.external_id: h.customer.preferred_store_id for h in histories}

    for order in orders:
        if order.channel == "store":
            # then shop sales are in a shop, handed over at once
            assert order.fulfilment == "in_store"
            assert order.store_id != "web"
            assert order.delivered_at == order.placed_at
        elif order.fulfilment == "pickup_in_store":
            # click-and-collect is picked up at the preferred shop within 1-3 days
            assert order.store_id == preferred[order.customer_external_id]
            assert order.delivered_at is not None
            assert timedelta(hours=1) < order.delivered_at - order.placed_at < timedelta(days=4)
        else:
            # everything else ships from the warehouse with a 2-5 day promise
            assert order.fulfilment == "ship"
            assert order.store_id == "web"
            assert order.carrier in {"DHL", "DPD", "UPS", "La Poste"}
            assert order.promised_delivery is not None
            promise = (order.promised_delivery - order.placed_at.date()).days
            assert 2 <= promise <= 5
        if order.fulfilment != "ship":
            assert order.promised_delivery is None
            assert order.carrier is None
    non_store = [o for o in orders if o.channel != "store"]
    ship_share = sum(o.fulfilment == "ship" for o in non_store) / len(non_store)
    assert 0.75 <= ship_share <= 0.85


def test_channel_mix_is_near_target(orders: list[OrderRecord]) -> None:
    # given the orders' channels
    counts = Counter(order.channel for order in orders)

    # then each channel is within three points of its target share
    targets = {"web": 0.45, "app": 0.25, "store": 0.25, "call_center": 0.05}
    for channel, target in targets.items():
        assert abs(counts[channel] / len(orders) - target) < 0.03, (channel, counts)


def test_order_counts_are_heavy_tailed(histories: list[CustomerHistory]) -> None:
    # given how many orders each customer placed
    counts = [len(h.orders) for h in histories]
    buyers = [c for c in counts if c]

    # then some never buy, about half of buyers buy once, a fifth twice, a few 10+ times
    assert 0.10 <= 1 - len(buyers) / len(counts) <= 0.20
    assert 0.40 <= sum(c == 1 for c in buyers) / len(buyers) <= 0.65
    assert 0.15 <= sum(c == 2 for c in buyers) / len(buyers) <= 0.25
    assert 0.02 <= sum(c >= 10 for c in buyers) / len(buyers) <= 0.10
    assert max(counts) <= 60


def test_consumable_lovers_rebuy_favourite_items(histories: list[CustomerHistory]) -> None:
    # given customers with at least four orders
    regulars = [h for h in histories if len(h.orders) >= 4]

    # when counting those who bought the same SKU in two different orders
    def rebought(history: CustomerHistory) -> bool:
        seen = Counter(line.sku for order in history.orders for line in order.lines)
        return any(n >= 2 for n in seen.values())

    # then most of them did
    assert len(regulars) > 100
    assert sum(rebought(h) for h in regulars) / len(regulars) > 0.6


# -------------------------------------------------------------------------- deliveries, returns


def test_late_deliveries_are_a_realistic_minority(orders: list[OrderRecord]) -> None:
    # given the shipped orders
    shipped = [o for o in orders if o.fulfilment == "ship"]

    # then 6-15 % arrive after their promise, about 1 % never arrive
    late_share = sum(o.delivered_late for o in shipped) / len(shipped)
    assert 0.06 <= late_share <= 0.15
    lost_share = sum(o.delivered_at is None for o in shipped) / len(shipped)
    assert 0.003 <= lost_share <= 0.02
    # and carriers differ in reliability
    by_carrier: defaultdict[str, list[bool]] = defaultdict(list)
    for order in shipped:
        assert order.carrier is not None
        by_carrier[order.carrier].append(order.delivered_late)
    rates = {carrier: sum(v) / len(v) for carrier, v in by_carrier.items()}
    assert rates["La Poste"] > rates["UPS"]


def test_the_last_weeks_have_a_bad_patch_of_late_parcels(
    retailer: DemoRetailer, orders: list[OrderRecord]
) -> None:
    # given the shipped orders of the last three weeks, and those before them
    recent_from = retailer.end - timedelta(days=20)
    shipped = [o for o in orders if o.fulfilment == "ship"]
    recent = [o for o in shipped if o.placed_at.date() >= recent_from]
    before = [o for o in shipped if o.placed_at.date() < recent_from]

    # then parcels run late far more often lately (the service team has something to do)
    def late(group: list[OrderRecord]) -> float:
        return sum(o.delivered_late for o in group) / len(group)

    assert len(recent) >= 50
    assert late(recent) > 2 * late(before)


def test_returns_are_concentrated_on_few_customers(
    histories: list[CustomerHistory], orders: list[OrderRecord]
) -> None:
    # given returned lines per customer
    returned = sorted((sum(len(o.returns) for o in h.orders) for h in histories), reverse=True)
    top = math.ceil(0.05 * len(returned))

    # then 5-10 % of lines come back, and the top 5 % of customers bring back at least 35 %
    lines = sum(len(o.lines) for o in orders)
    assert 0.05 <= sum(returned) / lines <= 0.10
    assert sum(returned[:top]) / sum(returned) >= 0.35


def test_apparel_and_late_parcels_come_back_more(
    retailer: DemoRetailer, orders: list[OrderRecord]
) -> None:
    # given the return rate per top category and by punctuality
    category = {p.sku: p.category_path.split("/")[0] for p in retailer.products()}
    sold: Counter[str] = Counter()
    back: Counter[str] = Counter()
    for order in orders:
        returned = {r.sku for r in order.returns}
        for line in order.lines:
            sold[category[line.sku]] += 1
            back[category[line.sku]] += line.sku in returned
    rate = {top: back[top] / sold[top] for top in sold}

    # then apparel is returned several times as often as wine or groceries
    assert rate["Apparel"] > 5 * rate["Wine"]
    assert rate["Apparel"] > 5 * rate["Grocery"]
    # and late parcels come back more often than punctual ones
    shipped = [o for o in orders if o.delivered_at is not None and o.fulfilment == "ship"]
    late = [o for o in shipped if o.delivered_late]
    on_time = [o for o in shipped if not o.delivered_late]
    assert sum(bool(o.returns) for o in late) / len(late) > sum(
        bool(o.returns) for o in on_time
    ) / len(on_time)


def test_returns_follow_delivery(orders: list[OrderRecord]) -> None:
    # given the reasons a return may give
    reasons = {
        "too_small", "too_large", "damaged", "not_as_described", "changed_mind",
        "late_delivery", "wrong_item",
    }  # fmt: skip
    for order in orders:
        quantities = {line.sku: line.quantity for line in order.lines}
        for ret in order.returns:
            # then each return is 1-30 days after delivery, of a bought line, in the window
            assert order.delivered_at is not None
            assert timedelta(days=1) <= ret.returned_at - order.delivered_at <= timedelta(days=30)
            assert 1 <= ret.quantity <= quantities[ret.sku]
            assert ret.reason in reasons
            assert ret.channel in {"store", "web"}
            assert ret.returned_at < END
            if ret.channel == "store":  # brought back to a shop, so in opening hours
                assert 7 <= ret.returned_at.hour < 20
            if ret.reason == "late_delivery":
                assert order.delivered_late


# -------------------------------------------------------------------------------- seasonality


def test_seasonal_items_sell_in_season_and_winter_holidays_peak(
    retailer: DemoRetailer, orders: list[OrderRecord]
) -> None:
    # given each product's season
    season = {p.sku: p.season for p in retailer.products()}
    months = {"christmas": {11, 12}, "summer": {6, 7, 8}, "winter": {12, 1, 2}}
    sold_in_season: Counter[str] = Counter()

    # then seasonal items are only bought in their season
    for order in orders:
        for line in order.lines:
            item_season = season[line.sku]
            if item_season is not None:
                assert order.placed_at.month in months[item_season], (line.sku, order.placed_at)
                sold_in_season[item_season] += 1
    assert min(sold_in_season.values()) > 50
    # and November and December each outsell the average month of 2025
    per_month = Counter(o.placed_at.month for o in orders if o.placed_at.year == 2025)
    average = sum(per_month[m] for m in range(1, 11)) / 10
    assert per_month[11] > 1.2 * average
    assert per_month[12] > 1.2 * average


def test_shop_sales_happen_in_opening_hours(orders: list[OrderRecord]) -> None:
    # given shop sales, whose shops open 09:00-20:00 local (UTC+0 to +2) and close on
    # Sundays in France and Germany
    for order in orders:
        if order.channel != "store":
            continue
        # then they are rung up between 07:00 and 20:00 UTC
        assert 7 <= order.placed_at.hour < 20, order
        if order.store_id.startswith(("st-par", "st-lyo", "st-ber")):
            assert order.placed_at.weekday() != 6, order


def test_app_orders_lean_to_the_evening(orders: list[OrderRecord]) -> None:
    def evening_share(channel: str) -> float:
        chosen = [o for o in orders if o.channel == channel]
        return sum(o.placed_at.hour >= 16 for o in chosen) / len(chosen)

    assert evening_share("app") > evening_share("web") > evening_share("call_center")


# ------------------------------------------------------------------------- views and visits


def test_views_precede_purchases_and_window_shoppers_browse(
    histories: list[CustomerHistory], retailer: DemoRetailer
) -> None:
    skus = {p.sku for p in retailer.products()}
    devices = {"web": {"desktop", "mobile", "tablet"}, "app": {"mobile", "tablet"}}
    viewed_before_buying = 0
    online_orders = 0
    for history in histories:
        views = history.product_views
        # then views are valid, sorted, and after sign-up
        assert all(v.sku in skus and v.device in devices[v.channel] for v in views)
        assert all(history.customer.signed_up_at <= v.viewed_at < END for v in views)
        assert [v.viewed_at for v in views] == sorted(v.viewed_at for v in views)
        # customers who never order still browsed
        if not history.orders:
            assert views
        for order in history.orders:
            if order.channel in {"web", "app"}:
                online_orders += 1
                bought = {line.sku for line in order.lines}
                viewed_before_buying += any(
                    v.sku in bought and v.viewed_at <= order.placed_at for v in views
                )
    # most online orders were preceded by a look at what was bought
    assert viewed_before_buying / online_orders > 0.7
    views_per_customer = sum(len(h.product_views) for h in histories) / len(histories)
    assert 5 <= views_per_customer <= 60


def test_shop_and_pickup_orders_come_with_store_visits(histories: list[CustomerHistory]) -> None:
    for history in histories:
        visits = {(v.store_id, v.visited_at.date()) for v in history.store_visits}
        for order in history.orders:
            if order.fulfilment == "in_store":
                assert (order.store_id, order.placed_at.date()) in visits
            if order.fulfilment == "pickup_in_store":
                assert order.delivered_at is not None
                assert (order.store_id, order.delivered_at.date()) in visits
        assert all(v.store_id != "web" for v in history.store_visits)
        assert all(START <= v.visited_at < END for v in history.store_visits)


# ------------------------------------------------------------------------- reviews and surveys


def test_reviews_are_rarer_and_harsher_after_late_deliveries(
    histories: list[CustomerHistory], orders: list[OrderRecord], retailer: DemoRetailer
) -> None:
    by_id = {o.order_id: o for o in orders}
    reviews = [r for h in histories for r in h.reviews]
    delivered_lines = sum(len(o.lines) for o in orders if o.delivered_at is not None)

    # then 5-10 % of delivered lines get a review, of a bought item, after delivery
    assert 0.05 <= len(reviews) / delivered_lines <= 0.10
    for review in reviews:
        order = by_id[review.order_id]
        assert review.sku in {line.sku for line in order.lines}
        assert order.delivered_at is not None
        assert order.delivered_at < review.written_at < END
        assert 1 <= review.rating <= 5
        assert review.title
        assert review.text
    # and late deliveries lower the rating
    late = [r.rating for r in reviews if by_id[r.order_id].delivered_late]
    on_time = [r.rating for r in reviews if not by_id[r.order_id].delivered_late]
    assert sum(late) / len(late) < sum(on_time) / len(on_time) - 0.5


def test_reviews_are_written_in_the_customer_language(histories: list[CustomerHistory]) -> None:
    # given every review text, grouped by the writer's locale
    texts: defaultdict[str, set[str]] = defaultdict(set)
    for history in histories:
        for review in history.reviews:
            texts[history.customer.locale].add(f"{review.title}|{review.text}")

    # then each locale has its own wording, shared with no other
    assert set(texts) == {"en", "fr", "de"}
    assert not texts["en"] & texts["fr"]
    assert not texts["en"] & texts["de"]
    assert not texts["fr"] & texts["de"]
    assert any("livraison" in text.lower() for text in texts["fr"])
    assert any("lieferung" in text.lower() for text in texts["de"])
    assert any("delivery" in text.lower() for text in texts["en"])


def test_nps_is_lower_after_late_deliveries(
    histories: list[CustomerHistory], orders: list[OrderRecord]
) -> None:
    by_id = {o.order_id: o for o in orders}
    answers = [a for h in histories for a in h.survey_answers]
    ranges = {"nps": range(11), "csat": range(1, 6), "ces": range(1, 8)}
    triggers = {"nps": "after_delivery", "csat": "after_store_visit", "ces": "after_purchase"}
    for answer in answers:
        # then every answer is in its scale's range, after what triggered it
        assert answer.score in ranges[answer.kind]
        assert answer.trigger == triggers[answer.kind]
        assert START <= answer.answered_at < END
        if answer.order_id is not None:
            assert by_id[answer.order_id].placed_at < answer.answered_at
        if answer.kind == "csat":
            assert answer.store_id is not None
    assert {a.kind for a in answers} == {"nps", "csat", "ces"}
    # and late (or lost) parcels drag NPS down
    nps = [a for a in answers if a.kind == "nps"]
    assert nps
    late = [a.score for a in nps if a.order_id and by_id[a.order_id].delivered_late]
    on_time = [a.score for a in nps if a.order_id and not by_id[a.order_id].delivered_late]
    assert len(late) > 30
    assert sum(late) / len(late) < sum(on_time) / len(on_time) - 1.5
    assert sum(s >= 7 for s in on_time) / len(on_time) > 0.7


# ------------------------------------------------------------------------------ property


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(min_value=-(2**40), max_value=2**40),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=60, max_value=800),
)
def test_any_seed_and_window_gives_consistent_histories(seed: int, start: date, days: int) -> None:
    # given any seed and window
    end = start + timedelta(days=days - 1)
    low = datetime(start.year, start.month, start.day, tzinfo=UTC)
    high = low + timedelta(days=days)
    retailer = DemoRetailer(seed=seed, customers=25, start=start, end=end)

    for history in retailer.histories():
        assert low <= history.customer.signed_up_at < high
        for order in history.orders:
            # then totals add up, deliveries follow orders and returns follow deliveries
            assert order.total_minor == sum(li.quantity * li.unit_price_minor for li in order.lines)
            assert order.total_minor > 0
            assert history.customer.signed_up_at < order.placed_at < high
            if order.delivered_at is not None:
                assert order.placed_at <= order.delivered_at < high
            for ret in order.returns:
                assert order.delivered_at is not None
                assert timedelta(days=1) <= ret.returned_at - order.delivered_at
                assert ret.returned_at - order.delivered_at <= timedelta(days=30)
                assert ret.returned_at < high
        # and everything else happened inside the window too, in UTC
        stamps = [v.viewed_at for v in history.product_views]
        stamps += [v.visited_at for v in history.store_visits]
        stamps += [r.written_at for r in history.reviews]
        stamps += [a.answered_at for a in history.survey_answers]
        assert all(low <= stamp < high and stamp.tzinfo is UTC for stamp in stamps)
