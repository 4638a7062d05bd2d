"""The demo retailer loads through the catalog and customers services, and re-loading adds
nothing."""

from __future__ import annotations

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo


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
