"""Test helpers: tracking events as the ingestion API stores them, and the processor run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.tasks import process_profile_events  # noqa: F401  (registers processor)
from rapport.events.models import Event
from rapport.events.processors import registered_processors, run_batch

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def track(
    db: Session,
    type: str,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    at: datetime | None = None,
    channel: str = "web",
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
) -> Event:
    """Store a tracking event the way ingestion does (person unresolved)."""
    event = Event(
        event_id=f"test-{next(_numbers)}",
        type=type,
        user_id=user_id,
        anonymous_id=anonymous_id,
        customer_id=None,
        channel=channel,
        occurred_at=at or T0,
        received_at=T0 + timedelta(seconds=1),
        properties=properties or {},
        context=context or {},
        source="api",
    )
    db.add(event)
    db.flush()
    return event


def imported(external_id: str, **fields: Any) -> customers.ImportedCustomer:
    """A bulk-load record (``customers.import_customers``) with nothing but its customer
    number, locale ``en`` and no consents, but for ``fields``."""
    record: dict[str, Any] = {
        "email": None,
        "first_name": None,
        "last_name": None,
        "locale": "en",
        "home_city": None,
        "home_latitude": None,
        "home_longitude": None,
        "consents": {},
    }
    return customers.ImportedCustomer(external_id=external_id, **{**record, **fields})


def order_placed(total: int, categories: list[str], store_id: str = "web") -> dict[str, Any]:
    return {
        "order_id": f"O-{next(_numbers)}",
        "total_minor": total,
        "currency": "EUR",
        "store_id": store_id,
        "lines": [{"sku": f"S-{c}", "category": c, "quantity": 1} for c in categories],
    }


def process(db: Session) -> int:
    """Run the profile processor until it has caught up with the log."""
    profile = next(p for p in registered_processors() if p.name == "customers.profile")
    handled = 0
    while count := run_batch(db, profile):
        handled += count
    return handled
