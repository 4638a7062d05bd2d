"""The events domain's part of a privacy request (the workflow across every domain is
:mod:`rapport.flows.privacy`): the person's events in the export; on erasure, their events
pseudonymised and the refused tracking messages naming them deleted."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events import dead_letters
from rapport.events.log import Scrubber, customer_events, pseudonymise_customer_events
from rapport.events.models import Event, HeldEvent
from rapport.events.tracking_store import contacts_named
from rapport.platform.identity import identity_digest
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


# How many events one step of the erasure's sweep (``sweep_erased_contacts``) reads: one
# range of the log's primary key, so a step costs the same on any size of log.
SWEEP_PAGE = 2_000

# Keys (lower-cased, letters and digits only) whose text is a customer number wherever it sits:
# an alias call's ``previous_id``, a form's ``customer_id``.
_ID_KEYS = frozenset({"previousid", "userid", "customerid", "externalid"})


@dataclass
class SweptPage:
    """One step of the sweep: the last position it read, how many events it scrubbed, and
    for each other profile whose events it scrubbed, every text those events held."""

    last_position: int
    scrubbed: int = 0
    profiles: dict[str, set[str]] = field(default_factory=dict)


def sweep_digests(subject: PrivacySubject) -> list[str]:
    """The digests the sweep looks for: the person's emails, phones and customer numbers
    (their own and their Rapport ids, as a sender would name them)."""
    digests = {
        identity_digest(kind, value)
        for kind, value in subject.identities
        if kind in ("email", "phone", "external_id")
    }
    digests.update(identity_digest("external_id", cid) for cid in subject.customer_ids)
    return sorted(digests)


def sweep_erased_contacts(
    db: Session,
    *,
    digests: Iterable[str],
    customer_ids: Iterable[str],
    after: int,
    up_to: int,
    limit: int | None = None,
) -> SweptPage:
    """One step of an erasure's sweep of the log, after the person's own events were
    pseudonymised: the next ``limit`` events after position ``after`` (up to ``up_to``, the
    head at erasure; later events naming the person are refused at the door; ``SWEEP_PAGE``
    by default) that name one of
    ``digests`` (an email or phone anywhere in their properties or context, as
    ``contacts_named`` finds them for the suppression check, or a customer number as the
    sender's user id or under an id's key such as an alias call's ``previous_id``), under any
    profile or none, are scrubbed as the person's own are. Adds to the caller's transaction."""
    wanted = set(digests)
    theirs = set(customer_ids)
    limit = limit or SWEEP_PAGE
    page = list(
        db.scalars(
            select(Event)
            .where(Event.position > after, Event.position <= up_to)
            .order_by(Event.position)
            .limit(limit)
        )
    )
    swept = SweptPage(last_position=up_to if len(page) < limit else page[-1].position)
    for event in page:
        if event.customer_id in theirs:
            continue  # the person's own: pseudonymised already
        named = _erased_values(event, wanted)
        if not named:
            continue
        held = set(_texts(event.properties)) | set(_texts(event.context))
        Scrubber(named).event(event)
        swept.scrubbed += 1
        if event.customer_id is not None:
            swept.profiles.setdefault(event.customer_id, set()).update(held)
    db.flush()
    return swept


def _digest(kind: str, value: str) -> str | None:
    try:
        return identity_digest(kind, value)
    except ValueError:
        return None


def _erased_values(event: Event, wanted: set[str]) -> list[str]:
    """The values of ``event`` whose digest is among ``wanted``."""
    found: list[str] = []
    if event.user_id and _digest("external_id", event.user_id) in wanted:
        found.append(event.user_id)
    for where, document in (("properties", event.properties), ("context", event.context)):
        for _field, kind, value in contacts_named(where, document):
            if _digest(kind, value) in wanted:
                found.append(value)
        for key, value in _keyed_texts(document):
            form = "".join(ch for ch in key.lower() if ch.isalnum())
            if form in _ID_KEYS and _digest("external_id", value) in wanted:
                found.append(value)
    return found


def _keyed_texts(document: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, text) for every string in ``document``, at any depth (a list's items under the
    list's key)."""
    stack: list[tuple[str, Any]] = [(key, document)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
        elif isinstance(value, str) and value.strip():
            yield key, value


def _texts(document: Any) -> Iterator[str]:
    return (text for _key, text in _keyed_texts(document))
