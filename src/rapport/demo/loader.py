"""Load the generated retailer through each domain's own service, in batches.

This issue loads stores, products and customers; later capabilities add their part of the
history (orders, reviews, answers) with their own loaders, reading the same generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.customers import service as customers
from rapport.customers.service import ImportedCustomer
from rapport.demo.generator import DemoRetailer
from rapport.demo.records import CustomerRecord, ProductRecord, StoreRecord

T = TypeVar("T")
BATCH_SIZE = 2_000
Progress = Callable[[str, int], None]  # (step, how many more were loaded)


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
    )


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
