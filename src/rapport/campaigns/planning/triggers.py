"""Triggered campaigns: every active triggered campaign whose trigger matches a tracked event
reaches its audience for that event.

With a radius (a ``venue_event``: a match won at a stadium, a store opening) the audience is
the customers with location consent whose last known location or home store is within the
radius of the event's point (its ``latitude``/``longitude``, or its store's), in the
campaign's segment when it has one; without one, the event's own customer. The messages must
go out within ``within_minutes`` of the event: the deadline is stored in each delivery's
context and the send-time gate drops late ones (``planning.gates``). The occasion is the
event's id, so an event processed again (a replay, a crash mid-batch) sends nothing twice.

The processor's writes commit with its cursor, batch by batch (``events.processor``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Segment
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.planning.editing import (
    EVENT_CONTEXT,
    EXPIRES_AT,
    TriggerSpec,
)
from rapport.campaigns.segments.conditions import parse_definition
from rapport.campaigns.segments.evaluation import near_point_query, segment_query
from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events import service as events
from rapport.platform import clock

LOCATION_CONSENT = "location"
# Where a customer "is" for a venue trigger: where they were last seen, or their home store.
VENUE_PLACES = ("last_location", "home_store")
# Event properties copied into the delivery (the template's ``event``), within reason.
_MAX_PROPERTY_CHARS = 500


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def event_point(db: Session, properties: Mapping[str, Any]) -> Point | None:
    """The event's place: its own coordinates, else its store's; None when it has neither
    (or they are out of range)."""
    latitude, longitude = _number(properties.get("latitude")), _number(properties.get("longitude"))
    if latitude is None or longitude is None:
        store_id = properties.get("store_id")
        store = catalog.get_store(db, store_id=store_id) if isinstance(store_id, str) else None
        if store is None or store.latitude is None or store.longitude is None:
            return None
        latitude, longitude = store.latitude, store.longitude
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Point(latitude, longitude)


def matches(trigger: TriggerSpec, event_type: str, properties: Mapping[str, Any]) -> bool:
    """Whether an event of ``event_type`` with ``properties`` fires ``trigger``: same type,
    and every filter's property equal (text compared without regard to case)."""
    if event_type != trigger.event_type:
        return False
    for name, wanted in trigger.filters.items():
        value = properties.get(name)
        if isinstance(wanted, str) and isinstance(value, str):
            if value.casefold() != wanted.casefold():
                return False
        elif isinstance(wanted, bool) or isinstance(value, bool):
            if value is not wanted:
                return False
        elif value != wanted:
            return False
    return True


def _event_time(event: events.LoggedEvent) -> datetime:
    """When the event happened: its ``occurred_at`` property when it names one, else the
    log's ``occurred_at``."""
    raw = event.properties.get("occurred_at") if isinstance(event.properties, dict) else None
    if isinstance(raw, str):
        try:
            return clock.as_utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            pass
    return clock.as_utc(event.occurred_at)


def _event_context(event: events.LoggedEvent, deadline: datetime) -> dict[str, Any]:
    shown = {
        name: value
        for name, value in (event.properties or {}).items()
        if isinstance(value, str | int | float | bool) and len(str(value)) <= _MAX_PROPERTY_CHARS
    }
    return {EVENT_CONTEXT: shown, EXPIRES_AT: deadline.isoformat()}


def _audience(
    db: Session, campaign: Campaign, trigger: TriggerSpec, event: events.LoggedEvent
) -> list[str]:
    if trigger.radius_km is None:
        candidates = [event.customer_id] if event.customer_id else []
        purpose = customers.SERVICE
    else:
        point = event_point(db, event.properties or {})
        if point is None:
            return []
        candidates = [
            str(customer_id)
            for customer_id in db.scalars(
                near_point_query(
                    latitude=point.latitude,
                    longitude=point.longitude,
                    radius_km=trigger.radius_km,
                    use=VENUE_PLACES,
                )
            )
        ]
        purpose = LOCATION_CONSENT
    if not candidates:
        return []
    if campaign.segment_id is not None:
        segment = db.get(Segment, campaign.segment_id)
        if segment is None:
            return []
        definition = parse_definition(segment.definition)
        in_segment: set[str] = set()
        for start in range(0, len(candidates), 500):
            chunk = candidates[start : start + 500]
            in_segment.update(
                str(c) for c in db.scalars(segment_query(db, definition, customer_ids=chunk))
            )
        candidates = [c for c in candidates if c in in_segment]
    # Location consent for a venue (the customer agreed to be reached where they are); the
    # channel's own consent is checked again at send time.
    allowed = customers.contactable(db, customer_ids=candidates, purpose=purpose)
    return sorted({allowed[c] for c in candidates if c in allowed})


def fire(db: Session, *, campaigns: Sequence[Campaign], event: events.LoggedEvent) -> int:
    """Queue the deliveries of every campaign in ``campaigns`` that ``event`` triggers; returns
    how many are new. In the caller's transaction."""
    added = 0
    now = clock.now()
    for campaign in campaigns:
        trigger = TriggerSpec.model_validate(campaign.trigger)
        if not matches(trigger, event.type, event.properties or {}):
            continue
        deadline = _event_time(event) + timedelta(minutes=trigger.within_minutes)
        if deadline <= now:
            continue  # too late to be of use (an old event, a long outage): nothing queued
        context = _event_context(event, deadline)
        recipients = [
            Recipient(
                customer_id=customer_id,
                occasion=event.event_id,
                group="control"
                if in_control_group(campaign.id, customer_id, campaign.control_percent)
                else "treated",
                context=context,
            )
            for customer_id in _audience(db, campaign, trigger, event)
        ]
        added += queue_deliveries(db, campaign=campaign, recipients=recipients)
    return added


def process_trigger_events(db: Session, batch: list[events.LoggedEvent]) -> None:
    """The ``campaigns.triggers`` processor: fire the active triggered campaigns on each event
    of the batch (written with the processor's cursor, so a replay sends nothing twice)."""
    active = list(
        db.scalars(
            select(Campaign)
            .where(Campaign.kind == "triggered", Campaign.status == "active")
            .order_by(Campaign.id)
        )
    )
    if not active:
        return
    wanted = {str(campaign.trigger.get("event_type")) for campaign in active}
    for event in batch:
        if event.type in wanted:
            fire(db, campaigns=active, event=event)
