"""Test helpers for campaigns' planning: customers with consent and a place, stores, segments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.planning import editing
from rapport.campaigns.segments import membership as segments
from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.customers.models import CustomerTraits
from rapport.customers.schemas import CustomerIn
from rapport.platform import clock

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def make_customer(db: Session, *, consents: dict[str, bool] | None = None, **fields: Any) -> str:
    """A real customer profile with these consent choices; returns its customer id."""
    number = next(_numbers)
    record = customers.create_customer(
        db,
        customer=CustomerIn.model_validate(
            {
                "external_id": f"PLAN-{number}",
                "email": f"plan{number}@example.com",
                "first_name": "Plan",
                "last_name": f"Number{number}",
                "consents": consents if consents is not None else {"marketing_email": True},
                **fields,
            }
        ),
    )
    return record.customer_id


def make_segment(
    db: Session, *, name: str | None = None, definition: dict[str, Any] | None = None
) -> int:
    """A segment (every active customer unless ``definition`` says otherwise)."""
    segment = segments.create_segment(
        db,
        name=name or f"Segment {next(_numbers)}",
        definition=definition or {"match": "all", "conditions": []},
    )
    return segment.id


def place_customer(db: Session, customer_id: str, *, latitude: float, longitude: float) -> None:
    """The customer's last known location (as the profile processor records it)."""
    traits = db.get(CustomerTraits, customer_id)
    now = clock.now()
    if traits is None:
        traits = CustomerTraits(customer_id=customer_id, updated_at=now)
        db.add(traits)
    traits.last_latitude, traits.last_longitude, traits.last_location_at = latitude, longitude, now
    db.commit()


def make_store(db: Session, *, store_id: str, latitude: float, longitude: float) -> None:
    catalog.upsert_stores(
        db,
        stores=[
            catalog.StoreUpsert(
                store_id=store_id,
                name=f"Store {store_id}",
                city="Lyon",
                address="1 rue du Test",
                country="FR",
                latitude=latitude,
                longitude=longitude,
                timezone="Europe/Paris",
            )
        ],
    )


def write_template(db: Session, campaign_id: int, *, channel: str = "email") -> None:
    editing.set_template(
        db,
        campaign_id=campaign_id,
        channel=channel,
        locale="en",
        subject="Hello {{ first_name }}",
        body="<p>Hello {{ first_name }}</p>",
    )


def frozen_clock(at: datetime = T0) -> clock.FrozenClock:
    frozen = clock.FrozenClock(at)
    clock.set_clock(frozen)
    return frozen
