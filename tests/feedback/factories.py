"""Test helpers for feedback: customers with consent, delivered orders, surveys."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.feedback import service
from rapport.feedback.models import Survey
from rapport.feedback.schemas import SurveyIn
from rapport.orders import service as orders
from rapport.orders.service import ImportedLine, ImportedOrder
from rapport.platform import clock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def frozen_clock(at: datetime = T0) -> clock.FrozenClock:
    frozen = clock.FrozenClock(at)
    clock.set_clock(frozen)
    return frozen


def make_customer(
    db: Session, *, consent: bool = True, locale: str = "en", email: str | None = None
) -> tuple[str, str]:
    """A real customer (consenting to survey e-mails unless told otherwise); returns
    (customer id, external id)."""
    number = next(_numbers)
    external = f"FB-{number}"
    record = customers.create_customer(
        db,
        customer=CustomerIn(
            external_id=external,
            email=email or f"fb{number}@example.com",
            first_name="Feedback",
            last_name=f"Number{number}",
            locale=locale,
            consents={"marketing_email": consent},
        ),
    )
    return record.customer_id, external


def in_catalogue(db: Session, *skus: str) -> None:
    """Products to review (a review names a product the catalogue has)."""
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=sku,
                name=f"Product {sku}",
                category_path="Home",
                price_minor=2000,
                cost_minor=1000,
                currency="EUR",
            )
            for sku in skus
        ],
    )


def in_stores(db: Session, *store_ids: str) -> None:
    """Stores of the catalogue (a store's target names one that exists)."""
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id=store_id,
                name=f"Store {store_id}",
                city="Lisbon",
                address="1 Rua",
                country="PT",
            )
            for store_id in store_ids
        ],
    )


def delivered_order(
    db: Session,
    *,
    external_id: str,
    sku: str = "SKU-1",
    placed_at: datetime = T0 - timedelta(days=10),
    promised: date | None = None,
    days_late: int = 0,
    total_minor: int = 2000,
    channel: str = "web",
    delivered: bool = True,
    currency: str = "EUR",
) -> str:
    """A shipped order of one ``sku`` (in the catalogue), delivered ``days_late`` days after
    its promise."""
    in_catalogue(db, sku)
    order_id = f"O-{next(_numbers)}"
    promise = promised or (placed_at + timedelta(days=3)).date()
    delivered_at = (
        datetime.combine(promise + timedelta(days=days_late), datetime.min.time(), tzinfo=UTC)
        + timedelta(hours=12)
        if delivered
        else None
    )
    orders.import_orders(
        db,
        orders=[
            ImportedOrder(
                order_id=order_id,
                customer_external_id=external_id,
                channel=channel,
                fulfilment="ship",
                store_id=None,
                placed_at=placed_at,
                currency=currency,
                lines=[ImportedLine(sku=sku, quantity=1, unit_price_minor=total_minor)],
                promised_delivery=promise,
                delivered_at=delivered_at,
                carrier="dhl",
            )
        ],
    )
    return order_id


def make_survey(db: Session, **overrides: Any) -> Survey:
    body: dict[str, Any] = {
        "survey_id": "nps-delivery",
        "name": "NPS after delivery",
        "kind": "nps",
        "trigger": "after_delivery",
        "fatigue_days": 30,
    }
    body.update(overrides)
    return service.save_survey(db, survey=SurveyIn(**body))
