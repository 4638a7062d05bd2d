"""The events domain's part of a privacy request (the workflow across every domain is
:mod:`rapport.flows.privacy`): the person's events in the export; on erasure, their events
pseudonymised and the refused tracking messages naming them deleted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events import dead_letters
from rapport.events.log import customer_events, pseudonymise_customer_events
from rapport.events.models import Event, HeldEvent
from rapport.platform.privacy import PrivacySubject

PRIVACY_TABLES = ("events", "tracking_dead_letters", "processor_held_events")

# Staff data in Rapport's own events, by event type: who did it (an admin's login, an API
# key's name) is the shop's, not the customer's, so the export leaves it out. A new field
# naming who did something (``by``, ``*_by``) must be classified here (a test checks).
STAFF_FIELDS: dict[str, frozenset[str]] = {
    "points_adjusted": frozenset({"by"}),
    "loyalty_program_changed": frozenset({"changed_by"}),
    "order_returned": frozenset({"recorded_by"}),
}


def _exported(event_type: str, properties: Any) -> Any:
    staff = STAFF_FIELDS.get(event_type)
    if not staff or not isinstance(properties, dict):
        return properties
    return {key: value for key, value in properties.items() if key not in staff}


# What a held event's error reads once its customer is erased (the error may quote the event).
ERASED_ERROR = "(erased: the error quoted the customer's data)"


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """Every event of the person, oldest first, and those naming them that still wait for
    the profile processor; without the staff data :data:`STAFF_FIELDS` names."""
    waiting = db.scalars(
        select(Event)
        .where(
            Event.customer_id.is_(None),
            Event.user_id.in_([*subject.customer_ids, *subject.identity_values("external_id")])
            | Event.anonymous_id.in_(subject.identity_values("anonymous_id")),
        )
        .order_by(Event.position)
    )
    return {
        "events": [
            {
                "event_id": e.event_id,
                "type": e.type,
                "user_id": e.user_id,
                "anonymous_id": e.anonymous_id,
                "channel": e.channel,
                "source": e.source,
                "occurred_at": e.occurred_at.isoformat(),
                "received_at": e.received_at.isoformat(),
                "properties": _exported(e.type, e.properties),
                "context": e.context,
            }
            for events in (
                *(customer_events(db, customer_id=c) for c in subject.customer_ids),
                waiting,
            )
            for e in events
        ]
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Pseudonymise the person's events (and those still waiting for the profile processor
        that name them): type, time, channel, the random customer id and non-personal properties
        stay, so counts and spend add up. Refused tracking messages that name them go, and the
    errors kept for their events that a processor could not apply are blanked."""
    user_ids = [*subject.customer_ids, *subject.identity_values("external_id")]
    anonymous_ids = subject.identity_values("anonymous_id")
    pseudonymise_customer_events(
        db,
        customer_id=subject.customer_id,
        known_values=subject.known_values,
        user_ids=user_ids,
        anonymous_ids=anonymous_ids,
    )
    for merged in subject.customer_ids[1:]:
        pseudonymise_customer_events(db, customer_id=merged, known_values=subject.known_values)
    # Pseudonymising gave the events still waiting for the profile processor their customer.
    theirs = select(Event.position).where(Event.customer_id.in_(subject.customer_ids))
    db.execute(
        update(HeldEvent)
        .where(HeldEvent.position.in_(theirs), HeldEvent.error != ERASED_ERROR)
        .values(error=ERASED_ERROR)
    )
    erase_dead_letters(db, [*user_ids, *anonymous_ids, *subject.identifiers])


def erase_dead_letters(db: Session, identities: Iterable[str]) -> int:
    """For erasure: delete the kept rejected tracking messages that name any of
    ``identities`` (customer ids, the sender's own ids, anonymous ids, emails, phones), by
    column or anywhere in the message. Adds to the caller's transaction; returns the count."""
    return dead_letters.erase(db, identities)
