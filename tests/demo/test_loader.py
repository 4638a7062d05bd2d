"""The demo retailer loads through the catalog and customers services, and re-loading adds
nothing."""

from __future__ import annotations

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo
from rapport.platform import clock


def test_demo_loads_stores_products_customers_once(db) -> None:
    # given a small demo retailer
    retailer = DemoRetailer(seed=7, customers=300)
    steps: dict[str, int] = {}

    def progress(step: str, count: int) -> None:
        steps[step] = steps.get(step, 0) + count

    # when it is loaded twice
    first = load_demo(db, retailer=retailer, progress=progress)
    second = load_demo(db, retailer=retailer)
    # then every record is stored once
    assert first.customers == 300
    assert second.customers == 0
    assert catalog.count_stores(db) == len(retailer.stores())
    assert catalog.count_products(db) == len(retailer.products())
    assert customers.count_customers(db) == 300
    assert steps == {"stores": first.stores, "products": first.products, "customers": 300}
    # and the stored records match the generator's
    record = next(iter(retailer.customers()))
    stored = customers.find_customer_by_external_id(db, external_id=record.external_id)
    assert stored is not None
    assert (stored.email, stored.home_city, stored.locale) == (
        record.email,
        record.home_city,
        record.locale,
    )
    # and each customer joined when the generator says they signed up, not on the load day
    assert clock.as_utc(stored.created_at) == record.signed_up_at
    joined = {
        clock.as_utc(c.created_at).strftime("%Y-%m")
        for c in (
            customers.find_customer_by_external_id(db, external_id=r.external_id)
            for r in retailer.customers()
        )
        if c is not None
    }
    assert len(joined) >= 12
    consents = {
        c.purpose: c.granted for c in customers.get_consents(db, customer_id=stored.customer_id)
    }
    assert consents == record.consents
    product = retailer.products()[0]
    stored_product = catalog.get_product(db, sku=product.sku)
    assert stored_product is not None
    assert (stored_product.price_minor, stored_product.country_of_origin) == (
        product.price_minor,
        product.country_of_origin,
    )


def test_demo_activity_flows_through_ingestion_into_profiles(db) -> None:
    from rapport.demo.loader import load_demo_activity
    from tests.customers.factories import process

    # given the demo's customers loaded
    retailer = DemoRetailer(seed=11, customers=40)
    load_demo(db, retailer=retailer)
    # when their sign-ups, browsing and visits are sent through ingestion and processed
    ingested = load_demo_activity(db, retailer=retailer)
    again = load_demo_activity(db, retailer=retailer)
    process(db)
    # then every event is stored once and each profile's timeline and traits match the history
    histories = list(retailer.histories())
    # browsing and visits only of those who did not refuse analytics
    tracked = [h for h in histories if h.customer.consents.get("analytics") is not False]
    assert len(tracked) < len(histories)
    expected = len(histories) + sum(len(h.product_views) + len(h.store_visits) for h in tracked)
    assert (ingested, again) == (expected, 0)
    busiest = max(tracked, key=lambda h: len(h.product_views) + len(h.store_visits))
    customer = customers.find_customer_by_external_id(db, external_id=busiest.customer.external_id)
    assert customer is not None
    traits = customers.get_traits(db, customer_id=customer.customer_id)
    assert traits is not None
    shared = len(customers.get_preferences(db, customer_id=customer.customer_id))  # one event each
    assert traits.event_count == 1 + len(busiest.product_views) + len(busiest.store_visits) + shared
    assert customers.count_customers(db) == 40  # the sign-up events found the imported customers
    sharing = [h for h in histories if int(h.customer.external_id[1:]) % 4 == 0]
    for history in sharing:
        found = customers.find_customer_by_external_id(db, external_id=history.customer.external_id)
        fields = {p.field for p in customers.get_preferences(db, customer_id=found.customer_id)}
        assert "clothing_size" in fields


def test_demo_stock_fills_every_shelf_once(db) -> None:
    from rapport.catalog.models import StockLevel
    from rapport.demo.loader import demo_stock, load_demo_stock

    retailer = DemoRetailer(seed=2, customers=1)
    load_demo(db, retailer=retailer)
    loaded = load_demo_stock(db, retailer=retailer)
    assert loaded == len(retailer.stores()) * len(retailer.products())
    assert (
        list(demo_stock(retailer))[:50] == list(demo_stock(DemoRetailer(seed=2, customers=1)))[:50]
    )
    sku = retailer.products()[0].sku
    view = catalog.stock_view(db, sku=sku, latitude=48.8566, longitude=2.3522)
    assert view[0].city == "Paris"
    assert view[-1].store_id == "web"
    assert view[-1].available >= 20
    assert db.get(StockLevel, (sku, "web")).reserved == 0


def test_demo_event_ids_do_not_name_the_customer() -> None:
    from rapport.demo.loader import activity_events

    # given the demo's histories
    retailer = DemoRetailer(seed=11, customers=10)
    for history in retailer.histories():
        # when their activity becomes tracking events, then no event id holds the customer
        # number (an erasure could not tell it from the person), and the ids are stable
        events = activity_events(history, {})
        number = history.customer.external_id
        assert not [e["event_id"] for e in events if number in e["event_id"]]
        assert [e["event_id"] for e in activity_events(history, {})] == [
            e["event_id"] for e in events
        ]
