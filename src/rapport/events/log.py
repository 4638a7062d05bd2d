"""Reading and maintaining the event log on behalf of processors and privacy requests.

(Ingestion lives in ``service.py`` and ``ingest.py``.)"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event

# Keys that can hold personal data in properties, traits and context; erasure blanks them.
PERSONAL_KEYS = frozenset(
    {
        "email", "phone", "name", "first_name", "last_name", "firstName", "lastName",
        "address", "street", "postal_code", "zip", "birthday", "ip", "location", "latitude",
        "longitude", "lat", "lon", "user_agent", "userAgent", "traits", "comment", "text",
    }
)  # fmt: skip


def events_after(db: Session, *, position: int, limit: int) -> list[Event]:
    """The next ``limit`` events of the log after ``position``, in log order."""
    return list(
        db.scalars(
            select(Event).where(Event.position > position).order_by(Event.position).limit(limit)
        )
    )


def head_position(db: Session) -> int:
    """Position of the newest event (0 for an empty log)."""
    return int(db.scalar(select(Event.position).order_by(Event.position.desc()).limit(1)) or 0)


def assign_customer(db: Session, *, positions: Iterable[int], customer_id: str) -> None:
    """Record which customer the given events belong to (resolved by the profile processor)."""
    chosen = list(positions)
    if chosen:
        db.execute(
            update(Event)
            .where(Event.position.in_(chosen))
            .values(customer_id=customer_id)
            # The batch's Event objects are not read again; skip matching them in Python.
            .execution_options(synchronize_session=False)
        )


def claim_anonymous_events(db: Session, *, anonymous_id: str, customer_id: str) -> int:
    """Give a customer the earlier events of an anonymous id nobody had claimed."""
    result = db.execute(
        update(Event)
        .where(Event.anonymous_id == anonymous_id, Event.customer_id.is_(None))
        .values(customer_id=customer_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def reassign_customer_events(db: Session, *, from_customer_id: str, to_customer_id: str) -> int:
    """Move a merged profile's history to the surviving profile."""
    result = db.execute(
        update(Event)
        .where(Event.customer_id == from_customer_id)
        .values(customer_id=to_customer_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _scrub(document: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in document.items():
        if key in PERSONAL_KEYS:
            continue
        cleaned[key] = _scrub(value) if isinstance(value, dict) else value
    return cleaned


def pseudonymise_customer_events(db: Session, *, customer_id: str) -> int:
    """Strip personal data from a customer's events, keeping type, time, channel and
    non-personal properties so that aggregates stay true."""
    changed = 0
    for event in db.scalars(select(Event).where(Event.customer_id == customer_id)):
        event.properties = _scrub(event.properties or {})
        event.context = _scrub(event.context or {})
        event.user_id = None
        event.anonymous_id = None
        changed += 1
    return changed


def customer_timeline(
    db: Session, *, customer_id: str, limit: int = 50, before_position: int | None = None
) -> list[Event]:
    """A customer's events, newest first."""
    query = (
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.position.desc())
        .limit(limit)
    )
    if before_position is not None:
        query = query.where(Event.position < before_position)
    return list(db.scalars(query))


def customer_events(db: Session, *, customer_id: str) -> Iterator[Event]:
    """Every event of a customer, oldest first (for exports)."""
    yield from db.scalars(
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.position)
        .execution_options(yield_per=1000)
    )
