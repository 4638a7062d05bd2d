"""The customers domain's part of a privacy request: who it is about, the export of their
profile, its erasure (identities onto the suppression list), and the audit of each request.
The workflow across every domain is :mod:`rapport.flows.privacy`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from rapport.customers.consent import consent_history, get_consents
from rapport.customers.identities import get_identities
from rapport.customers.merges import merge_history
from rapport.customers.models import (
    Consent,
    ConsentChange,
    Customer,
    CustomerGroup,
    CustomerMerge,
    CustomerTraits,
    Identity,
    Preference,
    PrivacyRequest,
)
from rapport.customers.preferences import get_preferences
from rapport.customers.profiles import require_customer
from rapport.customers.traits import trait_summary
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.identity import identity_digest, normalise_identity
from rapport.platform.privacy import PrivacySubject

PRIVACY_TABLES = (
    "customers",
    "identities",
    "consents",
    "consent_changes",
    "preferences",
    "customer_traits",
    "customer_groups",
    "customer_merges",
    "privacy_requests",
)

# What an erased person's consent rows say came from where (the source may be free text).
ERASED_SOURCE = "erased"

_ERASED_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "home_city",
    "home_latitude",
    "home_longitude",
    "time_zone",
    "group_id",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def privacy_subject(db: Session, *, customer_id: str) -> PrivacySubject:
    """Who a privacy request is about: the profile (following merges), the profiles merged
    into it, and every value they were known by. 404 for an unknown or erased customer."""
    customer = require_customer(db, customer_id)
    cid = customer.customer_id
    merged = list(db.scalars(select(Customer).where(Customer.merged_into == cid)))
    people = [customer, *merged]
    ids = tuple(p.customer_id for p in people)
    identities = {
        (i.kind, i.value) for i in db.scalars(select(Identity).where(Identity.customer_id.in_(ids)))
    }
    details: set[str] = set()
    for person in people:
        for kind in ("email", "phone", "external_id"):
            value = getattr(person, kind)
            if value:
                # A national phone kept from before the doors refused one names no country:
                # it is no identity (its digest would be every national number's).
                if normal := normalise_identity(kind, value):
                    identities.add((kind, normal))
                details.add(value)
        for name in ("first_name", "last_name", "home_city"):
            if getattr(person, name):
                details.add(getattr(person, name))
        if person.first_name and person.last_name:
            details.add(f"{person.first_name} {person.last_name}")
    return PrivacySubject(
        customer_id=cid,
        customer_ids=ids,
        identities=tuple(sorted(identities)),
        details=tuple(sorted(details)),
    )


def record_privacy_request(
    db: Session, *, customer_id: str, kind: str, requested_by: str, reason: str | None = None
) -> PrivacyRequest:
    """The audit row of an export or erasure (in the caller's transaction)."""
    now = clock.now()
    request = PrivacyRequest(
        customer_id=customer_id,
        kind=kind,
        requested_by=requested_by,
        reason=reason,
        requested_at=now,
        completed_at=now,
    )
    db.add(request)
    return request


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The profile, identities, consents and their history, preferences, traits, merges and
    earlier privacy requests."""
    cid = subject.customer_id
    customer = require_customer(db, cid)
    traits = db.get(CustomerTraits, cid)
    return {
        "customer": {
            name: (_iso(value) if isinstance(value, datetime) else value)
            for name, value in (
                (column.key, getattr(customer, column.key)) for column in Customer.__table__.columns
            )
        },
        "identities": [
            {"kind": i.kind, "value": i.value, "source": i.source, "added_at": _iso(i.created_at)}
            for i in get_identities(db, customer_id=cid)
        ],
        "consents": [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "source": c.source,
                "updated_at": _iso(c.updated_at),
            }
            for c in get_consents(db, customer_id=cid)
        ],
        "consent_history": [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "source": c.source,
                "changed_at": _iso(c.changed_at),
            }
            for c in consent_history(db, customer_id=cid)
        ],
        "preferences": [
            {
                "field": p.field,
                "value": p.value,
                "source": p.source,
                "updated_at": _iso(p.updated_at),
            }
            for p in get_preferences(db, customer_id=cid)
        ],
        "traits": trait_summary(traits, now=clock.now()) if traits else None,
        "group": _group_export(db, customer.group_id),
        "merges": [
            {
                "merged_customer_id": m.source_customer_id,
                "into": m.target_customer_id,
                "reason": m.reason,
                "at": _iso(m.merged_at),
            }
            for m in merge_history(db, customer_id=cid)
        ],
        "privacy_requests": [
            {
                "kind": r.kind,
                "requested_by": r.requested_by,
                "requested_at": _iso(r.requested_at),
            }
            for r in privacy_requests(db, customer_id=cid)
        ],
    }


def _group_export(db: Session, group_id: str | None) -> dict[str, Any] | None:
    group = db.get(CustomerGroup, group_id) if group_id else None
    if group is None:
        return None
    updated_at = _iso(group.updated_at)
    return {"group_id": group.group_id, "traits": group.traits, "updated_at": updated_at}


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Delete identities and preferences, empty the contact details, names, home, group
    membership and last location of the profile and of those merged into it (and the group
    when no one else belongs to it), mark it erased, and put every
    former identity on the suppression list (digests only) so that later events naming it
    are refused; the reason of every merge either of whose profiles is theirs becomes
    ``erased``. Consents stay, each a refusal with the source ``erased`` (an erased person
    grants nothing; the history keeps answers and times, not sources), as do traits' totals."""
    cid = subject.customer_id
    events.suppress_identities(
        db,
        digests=sorted(
            identity_digest(kind, value)
            for kind, value in subject.identities
            if kind != "device_id"  # a shared household device is not the person
        ),
    )
    db.execute(delete(Identity).where(Identity.customer_id.in_(subject.customer_ids)))
    db.execute(delete(Preference).where(Preference.customer_id.in_(subject.customer_ids)))
    now = clock.now()
    groups = {
        group_id
        for group_id in db.scalars(
            select(Customer.group_id).where(Customer.customer_id.in_(subject.customer_ids))
        )
        if group_id
    }
    for person in db.scalars(
        select(Customer).where(Customer.customer_id.in_(subject.customer_ids))
    ):
        for name in _ERASED_FIELDS:
            setattr(person, name, None)
        person.attributes = {}
        person.field_times = {}
        person.updated_at = now
        if person.customer_id == cid:
            person.status = "erased"
            person.erased_at = now
    db.execute(
        update(CustomerTraits)
        .where(CustomerTraits.customer_id.in_(subject.customer_ids))
        .values(last_latitude=None, last_longitude=None, last_location_at=None)
    )
    # An erased person grants nothing: every standing choice becomes a refusal, and the
    # history keeps each decision's purpose, answer and time without its free-text source.
    db.execute(
        update(Consent)
        .where(Consent.customer_id.in_(subject.customer_ids))
        .values(granted=False, source=ERASED_SOURCE, updated_at=now)
    )
    db.execute(
        update(ConsentChange)
        .where(ConsentChange.customer_id.in_(subject.customer_ids))
        .values(source=ERASED_SOURCE)
    )
    # A merge's reason is free text staff wrote about the person ("phoned from +44…"): the
    # audit keeps which profile went where, when and by whom, not why.
    db.execute(
        update(CustomerMerge)
        .where(
            or_(
                CustomerMerge.source_customer_id.in_(subject.customer_ids),
                CustomerMerge.target_customer_id.in_(subject.customer_ids),
            )
        )
        .values(reason=ERASED_SOURCE)
    )
    db.flush()
    # The membership went with the person; a group nobody else belongs to (a household of
    # one) describes them alone, and goes too.
    for group_id in sorted(groups):
        if db.scalar(select(Customer.customer_id).where(Customer.group_id == group_id).limit(1)):
            continue
        db.execute(delete(CustomerGroup).where(CustomerGroup.group_id == group_id))
    db.flush()


# What a profile keeps about a person that may have come from another person's tracked
# events (a visitor whose browser named an erased customer's email and name).
_SWEPT_FIELDS = ("first_name", "last_name", "email", "phone")


def forget_erased_details(db: Session, *, found: dict[str, set[str]]) -> int:
    """For the erasure's sweep: each profile of ``found`` (other than an erased one) loses the
    name, email and phone whose value one of the scrubbed events held (``found`` maps each
    profile to every text its scrubbed events held), and the email or phone identities with
    those values. A value the profile also got elsewhere goes too: it cannot be told apart.
    Adds to the caller's transaction; returns how many profiles changed."""
    changed = 0
    for person in db.scalars(
        select(Customer).where(Customer.customer_id.in_(sorted(found)), Customer.status != "erased")
    ):
        held = {value.strip().casefold() for value in found[person.customer_id]}
        normal = {
            (kind, n)
            for kind in ("email", "phone")
            for value in found[person.customer_id]
            if (n := normalise_identity(kind, value))
        }
        gone = [
            name
            for name in _SWEPT_FIELDS
            if (value := getattr(person, name))
            and (
                value.strip().casefold() in held
                or (name, normalise_identity(name, value)) in normal
            )
        ]
        for identity in db.scalars(
            select(Identity).where(
                Identity.customer_id == person.customer_id, Identity.kind.in_(("email", "phone"))
            )
        ):
            if (identity.kind, identity.value) in normal:
                db.delete(identity)
        if not gone:
            continue
        for name in gone:
            setattr(person, name, None)
        person.field_times = {k: v for k, v in (person.field_times or {}).items() if k not in gone}
        person.updated_at = clock.now()
        changed += 1
    db.flush()
    return changed


def privacy_requests(db: Session, *, customer_id: str) -> list[PrivacyRequest]:
    return list(
        db.scalars(
            select(PrivacyRequest)
            .where(PrivacyRequest.customer_id == customer_id)
            .order_by(PrivacyRequest.id)
        )
    )
