"""Test helpers: tracking events as the ingestion API stores them, and the processor run."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.tasks import process_profile_events  # noqa: F401  (registers processor)
from rapport.events.models import Event
from rapport.events.processors import registered_processors, run_batch
from rapport.flows import privacy
from rapport.platform import clock

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


ERASED_ON = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


def erased_customer(db: Session, *, before: Callable[[str], object] | None = None) -> str:
    """A customer named Wren, erased on 3 December 2026 (``ERASED_ON``); ``before`` gives them
    something (points, an order) first. Their id."""
    clock.set_clock(clock.FrozenClock(ERASED_ON))
    try:
        customer_id = customers.identify_customer(
            db, identities={"email": "wren.aldous@example.org"}, profile={"first_name": "Wren"}
        ).customer_id
        if before is not None:
            before(customer_id)
        privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo@example.com")
    finally:
        clock.reset_clock()
    return customer_id


def says_erased(page: str, customer_id: str) -> bool:
    """Whether an admin page says the customer was erased on ``ERASED_ON`` and nothing
    personal is kept, and shows nothing of them."""
    return (
        f"Customer {customer_id} was erased on 3 Dec 2026; nothing personal is kept." in page
        and "Wren" not in page
    )
