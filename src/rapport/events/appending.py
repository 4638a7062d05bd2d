"""Appending events from commands: a domain's typed event (``DomainEvent``) goes into the
log inside the command's own transaction, as an ORM object, one INSERT, or (PostgreSQL) part
of a command written as one statement."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.platform import clock
from rapport.platform.domain_events import DomainEvent
from rapport.platform.ids import new_id


def append_event(
    db: Session,
    fact: DomainEvent,
    *,
    channel: str,
    customer_id: str | None = None,
    anonymous_id: str | None = None,
    occurred_at: datetime | None = None,
    context: dict[str, Any] | None = None,
    event_id: str | None = None,
    source: str = "command",
) -> Event:
    """Add ``fact`` (a typed event from a domain's ``events.py``) to the caller's transaction:
    commands call this before they commit."""
    event_properties = _properties(fact)
    now = clock.now()
    event = Event(
        event_id=event_id or new_id("evt"),
        type=fact.event_type,
        channel=channel,
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at or now,
        received_at=now,
        properties=event_properties,
        context=context or {},
        source=source,
    )
    db.add(event)
    return event


def _properties(fact: DomainEvent) -> dict[str, Any]:
    # Typed callers cannot pass anything else; untyped ones (a plugin, a shell) get told.
    if not isinstance(fact, DomainEvent):
        raise TypeError(f"append a DomainEvent from a domain's events.py, not {fact!r}")
    return fact.properties()


# Core inserts on the table: ``insert(Event)`` would take the ORM's bulk path, several times slower.
_EVENTS = cast(Table, Event.__table__)


def log_event(
    db: Session,
    fact: DomainEvent,
    *,
    channel: str,
    customer_id: str | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """:func:`append_event` as one INSERT, without an ORM object to flush: for commands on a
    hot path (a points movement) that never read the event back."""
    event_properties = _properties(fact)
    now = clock.now()
    db.execute(
        insert(_EVENTS).values(
            event_id=new_id("evt"),
            type=fact.event_type,
            channel=channel,
            customer_id=customer_id,
            occurred_at=occurred_at or now,
            received_at=now,
            properties=event_properties,
            context={},
            source="command",
        )
    )


def log_event_sql(*, source: str, properties: str) -> str:
    """:func:`log_event` for a command written as one PostgreSQL statement: a data-modifying
    CTE body appending one event per row of ``source``, its ``properties`` a jsonb
    expression over it. Parameters: :func:`log_event_parameters` and ``now``."""
    return (
        f"INSERT INTO {_EVENTS.name} (event_id, type, channel, customer_id, occurred_at,"
        " received_at, properties, context, source)"
        " SELECT %(event_id)s, %(event_type)s, %(event_channel)s, %(event_customer)s,"
        f" %(now)s, %(now)s, {properties}, '{{}}'::jsonb, 'command' FROM {source}"
    )


def log_event_parameters(*, type: str, channel: str, customer_id: str) -> dict[str, Any]:
    return {
        "event_id": new_id("evt"),
        "event_type": type,
        "event_channel": channel,
        "event_customer": customer_id,
    }
