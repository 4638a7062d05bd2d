"""Event log verbs. Commands append events inside their own transaction; tracking events are
de-duplicated by ``event_id`` and committed before the API answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.events.schemas import EventIn
from rapport.platform import clock
from rapport.platform.errors import InvalidInput
from rapport.platform.ids import new_id

MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Ingested:
    event: Event
    duplicate: bool


def append_event(
    db: Session,
    *,
    type: str,
    channel: str,
    customer_id: str | None = None,
    anonymous_id: str | None = None,
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    event_id: str | None = None,
    source: str = "command",
) -> Event:
    """Add an event to the caller's transaction (commands call this before they commit)."""
    now = clock.now()
    event = Event(
        event_id=event_id or new_id("evt"),
        type=type,
        channel=channel,
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at or now,
        received_at=now,
        properties=properties or {},
        context=context or {},
        source=source,
    )
    db.add(event)
    return event


def ingest_event(db: Session, *, incoming: EventIn) -> Ingested:
    """Store a tracking event once. A repeated ``event_id`` returns the stored event."""
    if incoming.occurred_at > clock.now() + MAX_CLOCK_SKEW:
        raise InvalidInput(
            "occurred_at is in the future; check the sending device's clock",
            field="occurred_at",
        )
    existing = db.scalar(select(Event).where(Event.event_id == incoming.event_id))
    if existing is not None:
        return Ingested(event=existing, duplicate=True)
    try:
        with db.begin_nested():
            event = append_event(
                db,
                event_id=incoming.event_id,
                type=incoming.type,
                channel=incoming.channel,
                customer_id=incoming.customer_id,
                anonymous_id=incoming.anonymous_id,
                occurred_at=incoming.occurred_at,
                properties=incoming.properties,
                context=incoming.context,
                source="api",
            )
        db.commit()
    except IntegrityError:
        # Another request stored the same event_id between our check and our insert.
        db.rollback()
        stored = db.scalar(select(Event).where(Event.event_id == incoming.event_id))
        assert stored is not None
        return Ingested(event=stored, duplicate=True)
    return Ingested(event=event, duplicate=False)


def get_event(db: Session, *, event_id: str) -> Event | None:
    return db.scalar(select(Event).where(Event.event_id == event_id))


def count_events(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Event)) or 0
