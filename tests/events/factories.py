"""Events in the log as a site, an app or a till would have sent them: any type, any
properties (commands append typed events only)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers.processor import process_profile_events
from rapport.events import service as events
from rapport.events.models import Event
from rapport.platform import clock
from rapport.platform.ids import new_id


def tracked(
    db: Session,
    *,
    type: str,
    channel: str,
    customer_id: str | None = None,
    occurred_at: datetime | None = None,
    properties: dict[str, Any] | None = None,
) -> events.LoggedEvent:
    """Add a tracking event to the test's transaction, as ingestion stores one."""
    now = clock.now()
    event = events.LoggedEvent(
        event_id=new_id("evt"),
        type=type,
        channel=channel,
        customer_id=customer_id,
        occurred_at=occurred_at or now,
        received_at=now,
        properties=properties or {},
        context={},
        source="api",
    )
    db.add(event)
    return event


def basic_auth(secret: str) -> dict[str, str]:
    """The key header as Segment's SDKs send a write key: the basic-auth user name."""
    return {"Authorization": "Basic " + base64.b64encode(f"{secret}:".encode()).decode()}


class BrokenOn:
    """The real profile processor, with a bug on the events in ``poisoned`` until mended (a
    deploy that cannot read them, say)."""

    def __init__(self) -> None:
        self.poisoned: set[str] = set()

    def __call__(self, db: Session, events: list[Event]) -> None:
        for event in events:
            if event.event_id in self.poisoned:
                raise ValueError(f"cannot read {event.event_id}: unknown source 'kiosk'")
        process_profile_events(db, events)
