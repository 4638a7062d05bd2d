"""Test helpers for segments: customers with consent, a place and traits; stores."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import StoreUpsert
from rapport.customers import service as customers
from rapport.customers.models import CustomerTraits
from rapport.customers.schemas import CustomerIn
from rapport.platform import clock

_numbers = itertools.count(1)
DEFAULT_CONSENTS = {"marketing_email": True, "personalization": True}


def make_customer(
    db: Session,
    *,
    consents: dict[str, bool] | None = None,
    traits: dict[str, Any] | None = None,
    **fields: Any,
) -> str:
    """A real customer profile (created by the customers verb) with these consents (by
    default email and ``personalization``, which behavioural conditions need); ``traits``
    stand for what the profile processor would have folded in from their events."""
    number = next(_numbers)
    fields.setdefault("external_id", f"SEG-{number}")
    fields.setdefault("email", f"segment{number}@example.com")
    fields.setdefault("first_name", "Seg")
    fields.setdefault("last_name", f"Number{number}")
    record = customers.create_customer(
        db,
        customer=CustomerIn(
            consents=consents if consents is not None else DEFAULT_CONSENTS, **fields
        ),
    )
    if traits is not None:
        set_traits(db, record.customer_id, **traits)
    return record.customer_id


def set_traits(db: Session, customer_id: str, **values: Any) -> None:
    """Set traits as the profile processor keeps them: a ``spend_minor`` is the spend in
    ``currency`` (EUR, the program's, unless given), so it is that currency's spend too."""
    if "spend_minor" in values and "spend_by_currency" not in values:
        values["spend_by_currency"] = {values.get("currency") or "EUR": values["spend_minor"]}
    row = db.get(CustomerTraits, customer_id)
    if row is None:
        row = CustomerTraits(customer_id=customer_id, updated_at=clock.now())
        db.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    db.commit()


def make_stores(db: Session, stores: dict[str, tuple[float, float]]) -> None:
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id=store_id,
                name=store_id,
                city="City",
                address="1 Main Street",
                country="FR",
                latitude=lat,
                longitude=lon,
            )
            for store_id, (lat, lon) in stores.items()
        ],
    )
    db.commit()


def days_before(now: datetime, days: float) -> datetime:
    from datetime import timedelta

    return now - timedelta(days=days)
