"""Customer verbs: the only functions other code calls to read or change customers.

Identity resolution, merges, consent (with history), preferences, traits for the 360 view,
and the privacy rights (export, erasure) all live here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, cast, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers.models import (
    CONSENT_PURPOSES as CONSENT_PURPOSES,  # the face: other domains read the purposes here
    IDENTITY_KINDS,
    UNIQUE_IDENTITY_KINDS,
    Consent,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerTraits,
    Identity,
    Preference,
    PrivacyRequest,
    RfmBoundaries,
)
from rapport.customers.schemas import CustomerIn
from rapport.customers.traits import (
    merge_traits,
    quintile_boundaries,
    rfm_scores,
    trait_summary,
)
from rapport.events import log as event_log
from rapport.events.models import Event
from rapport.events.service import append_event, suppress_identities, suppressed
from rapport.platform import clock
from rapport.platform.db import upsert_rows
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.identity import identity_digest, normalise_identity
from rapport.platform.ids import new_id
from rapport.platform.privacy import PrivacySubject

IDENTIFY_ATTEMPTS = 3
PROFILE_FIELDS = ("email", "phone", "first_name", "last_name", "locale", "home_city")


@dataclass(frozen=True)
class ImportedCustomer:
    """A customer record from a bulk source (demo generator, CRM importers).

    ``identities`` adds ways to recognise the customer beyond ``external_id`` and ``email``
    (kind -> value, e.g. ``{"phone": "+33 6 12 34 56 78", "loyalty_card": "LC-0042"}``);
    ``attributes`` holds the retailer's own fields (segment, zip code, ...)."""

    external_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    locale: str
    home_city: str | None
    home_latitude: float | None
    home_longitude: float | None
    consents: dict[str, bool]
    phone: str | None = None
    identities: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- identities


def _check_kind(kind: str) -> None:
    if kind not in IDENTITY_KINDS:
        raise InvalidInput(
            f"Unknown identity kind {kind!r}; use one of {', '.join(IDENTITY_KINDS)}",
            field="kind",
        )


def _owners(db: Session, identities: dict[str, str]) -> list[str]:
    """Customers holding any of the given unique identities, oldest first."""
    pairs = [(k, v) for k, v in identities.items() if k in UNIQUE_IDENTITY_KINDS]
    if not pairs:
        return []
    owners: set[str] = set()
    for kind, value in pairs:
        owners.update(
            db.scalars(
                select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value)
            )
        )
    if not owners:
        return []
    rows = db.execute(
        select(Customer.customer_id, Customer.is_anonymous)
        .where(Customer.customer_id.in_(owners))
        .order_by(Customer.is_anonymous, Customer.created_at, Customer.customer_id)
    ).all()
    return [row.customer_id for row in rows]


def _attach(db: Session, *, customer_id: str, kind: str, value: str, source: str) -> bool:
    """Give ``customer_id`` an identity unless they already hold it. Returns whether added."""
    held = db.scalar(
        select(Identity.id).where(
            Identity.customer_id == customer_id, Identity.kind == kind, Identity.value == value
        )
    )
    if held is not None:
        return False
    db.add(
        Identity(
            customer_id=customer_id,
            kind=kind,
            value=value,
            is_unique=kind in UNIQUE_IDENTITY_KINDS,
            source=source,
            created_at=clock.now(),
        )
    )
    db.flush()
    return True


def _normalised(identities: dict[str, str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for kind, value in identities.items():
        _check_kind(kind)
        if value is None or not str(value).strip():
            continue
        normal = normalise_identity(kind, str(value))
        if normal:
            cleaned[kind] = normal
    return cleaned


def erased_kinds(db: Session, identities: dict[str, str]) -> list[str]:
    """The kinds among ``identities`` (normalised) that belong to an erased person: on the
    suppression list, so no profile may be created with them or linked to them. Device ids
    are never suppressed (a household tablet is shared)."""
    digests = {
        identity_digest(kind, value): kind
        for kind, value in identities.items()
        if kind != "device_id" and value
    }
    hits = suppressed(db, digests=digests)
    return sorted(digests[digest] for digest in hits)


def erased_values(db: Session, *, kind: str, values: Iterable[str]) -> set[str]:
    """The values among ``values`` (identities of one ``kind``) that belong to erased
    people: for bulk loads, one query per 500."""
    wanted = sorted(set(values))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        digests = {identity_digest(kind, value): value for value in wanted[start : start + 500]}
        found.update(digests[digest] for digest in suppressed(db, digests=digests))
    return found


def _refuse_erased(db: Session, identities: dict[str, str], *, field: str) -> None:
    """Erased means gone and stays gone: refuse to create or link a profile with an identity
    of an erased person. ``field`` is the input's name, ``{kind}`` filled in."""
    erased = erased_kinds(db, identities)
    if erased:
        raise InvalidInput(
            f"This {erased[0]} belongs to an erased person; it cannot be used again",
            field=field.format(kind=erased[0]),
            code="suppressed",
        )


def find_customer(db: Session, *, kind: str, value: str) -> Customer | None:
    """The live customer recognised by an identity, or ``None``."""
    _check_kind(kind)
    customer_id = db.scalar(
        select(Identity.customer_id)
        .where(Identity.kind == kind, Identity.value == normalise_identity(kind, value))
        .limit(1)
    )
    if customer_id is None and kind == "external_id":
        customer_id = db.scalar(select(Customer.customer_id).where(Customer.external_id == value))
    return get_customer(db, customer_id=customer_id) if customer_id else None


def get_identities(db: Session, *, customer_id: str) -> list[Identity]:
    return list(
        db.scalars(
            select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id)
        )
    )


def _new_customer(db: Session, *, identities: dict[str, str], profile: dict[str, Any]) -> Customer:
    now = clock.now()
    known = any(kind not in ("anonymous_id", "device_id") for kind in identities)
    record = Customer(
        customer_id=new_id("cus"),
        external_id=identities.get("external_id"),
        email=identities.get("email"),
        phone=identities.get("phone"),
        is_anonymous=not known,
        status="active",
        attributes={},
        locale="en",
        created_at=now,
        updated_at=now,
    )
    for name in PROFILE_FIELDS:
        if profile.get(name):
            setattr(record, name, profile[name])
    db.add(record)
    db.flush()
    return record


def resolve_identities(
    db: Session,
    *,
    identities: dict[str, str],
    profile: dict[str, Any] | None = None,
    source: str,
    actor: str = "identity resolution",
) -> Customer:
    """Find or create the one customer these identities name, inside the caller's transaction.

    A unique identity held by several customers means they are one person: the others are
    merged into the oldest known profile. Anonymous-only identities make an anonymous profile.
    """
    cleaned = _normalised(identities)
    if not cleaned:
        raise InvalidInput("Give at least one identity (email, phone, ...)", field="identities")
    _refuse_erased(db, cleaned, field="identities.{kind}")
    owners = _owners(db, cleaned)
    if owners:
        # Locked (PostgreSQL), so an erasure running now either finished before (and the
        # profile reads as erased here) or waits until this transaction is done.
        customer = db.get(Customer, owners[0], with_for_update=True, populate_existing=True)
        assert customer is not None
        if customer.status != "active":
            raise InvalidInput(
                "These identities belong to an erased person", field="identities", code="suppressed"
            )
        for other in owners[1:]:
            _merge(
                db,
                source_id=other,
                target_id=customer.customer_id,
                reason="shared identity",
                actor=actor,
            )
    else:
        customer = _new_customer(db, identities=cleaned, profile=profile or {})
    for kind, value in cleaned.items():
        _attach(db, customer_id=customer.customer_id, kind=kind, value=value, source=source)
        if kind not in ("anonymous_id", "device_id") and customer.is_anonymous:
            customer.is_anonymous = False
        if kind == "external_id" and customer.external_id is None:
            customer.external_id = value
    for name in PROFILE_FIELDS:
        if profile and profile.get(name):
            setattr(customer, name, profile[name])
    if customer.email is None and "email" in cleaned:
        customer.email = cleaned["email"]
    if customer.phone is None and "phone" in cleaned:
        customer.phone = cleaned["phone"]
    customer.updated_at = clock.now()
    db.flush()
    return customer


def identify_customer(
    db: Session,
    *,
    identities: dict[str, str],
    profile: dict[str, Any] | None = None,
    source: str = "api",
    channel: str = "web",
) -> Customer:
    """Find or create the customer these identities name and commit. Safe to call at the same
    time for the same email: the database's unique index lets one insert win, and the loser
    retries and finds the winner."""
    for attempt in range(IDENTIFY_ATTEMPTS):
        try:
            customer = resolve_identities(db, identities=identities, profile=profile, source=source)
            append_event(
                db,
                type="identified",
                channel=channel,
                customer_id=customer.customer_id,
                properties={"kinds": sorted(identities)},
            )
            db.commit()
            return customer
        except IntegrityError:
            db.rollback()
            if attempt == IDENTIFY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def add_identity(
    db: Session, *, customer_id: str, kind: str, value: str, source: str = "api"
) -> Identity:
    """Add a way to recognise a customer. A unique identity another customer holds is a
    conflict: merge the two profiles instead."""
    customer = _require(db, customer_id)
    cleaned = _normalised({kind: value})
    if not cleaned:
        raise InvalidInput("The identity value is empty", field="value")
    value = cleaned[kind]
    _refuse_erased(db, cleaned, field="value")
    owners = [o for o in _owners(db, cleaned) if o != customer.customer_id]
    if owners:
        raise Conflict(
            f"This {kind} belongs to customer {owners[0]}; merge the profiles to combine them",
            field="value",
            other_customer_id=owners[0],
        )
    _attach(db, customer_id=customer.customer_id, kind=kind, value=value, source=source)
    db.commit()
    identity = db.scalar(
        select(Identity).where(
            Identity.customer_id == customer.customer_id,
            Identity.kind == kind,
            Identity.value == value,
        )
    )
    assert identity is not None
    return identity


# ------------------------------------------------------------------------------- merges


def _merge(
    db: Session, *, source_id: str, target_id: str, reason: str, actor: str
) -> CustomerMerge:
    source = db.get(Customer, source_id)
    target = db.get(Customer, target_id)
    if source is None or target is None:
        raise NotFound("Both customers must exist to merge them", field="customer_id")
    if source.customer_id == target.customer_id:
        raise InvalidInput("A customer cannot be merged into itself", field="target_customer_id")
    if source.status != "active" or target.status != "active":
        raise Conflict("Only active profiles can be merged", field="customer_id")
    now = clock.now()
    moved: dict[str, int] = {}
    # Identities: move those the target lacks; drop exact duplicates.
    identities = list(db.scalars(select(Identity).where(Identity.customer_id == source_id)))
    moved["identities"] = 0
    for identity in identities:
        duplicate = db.scalar(
            select(Identity.id).where(
                Identity.customer_id == target_id,
                Identity.kind == identity.kind,
                Identity.value == identity.value,
            )
        )
        if duplicate is None:
            identity.customer_id = target_id
            moved["identities"] += 1
        else:
            db.delete(identity)
    db.flush()
    # Consent: the most recent decision per purpose wins; the history moves whole.
    for consent in list(db.scalars(select(Consent).where(Consent.customer_id == source_id))):
        current = db.get(Consent, (target_id, consent.purpose))
        if current is None:
            db.add(
                Consent(
                    customer_id=target_id,
                    purpose=consent.purpose,
                    granted=consent.granted,
                    source=consent.source,
                    updated_at=consent.updated_at,
                )
            )
        elif consent.updated_at > current.updated_at:
            current.granted, current.source, current.updated_at = (
                consent.granted,
                consent.source,
                consent.updated_at,
            )
        db.delete(consent)
    moved["consent_changes"] = int(
        db.execute(
            update(ConsentChange)
            .where(ConsentChange.customer_id == source_id)
            .values(customer_id=target_id)
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
    # Preferences: the target's own answers win.
    for preference in list(
        db.scalars(select(Preference).where(Preference.customer_id == source_id))
    ):
        if db.get(Preference, (target_id, preference.field)) is None:
            db.add(
                Preference(
                    customer_id=target_id,
                    field=preference.field,
                    value=preference.value,
                    source=preference.source,
                    updated_at=preference.updated_at,
                )
            )
        db.delete(preference)
    # Traits add up.
    source_traits = db.get(CustomerTraits, source_id)
    if source_traits is not None:
        target_traits = db.get(CustomerTraits, target_id)
        if target_traits is None:
            target_traits = CustomerTraits(customer_id=target_id, updated_at=now)
            db.add(target_traits)
            db.flush()
        merge_traits(target_traits, source_traits)
        target_traits.updated_at = now
        db.delete(source_traits)
    moved["events"] = event_log.reassign_customer_events(
        db, from_customer_id=source_id, to_customer_id=target_id
    )
    # Profile fields the target lacks come across.
    for name in ("external_id", *PROFILE_FIELDS, "home_latitude", "home_longitude"):
        if getattr(target, name) in (None, "") and getattr(source, name) not in (None, ""):
            value = getattr(source, name)
            if name == "external_id":
                source.external_id = None
                db.flush()
            setattr(target, name, value)
    target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
    target.is_anonymous = target.is_anonymous and source.is_anonymous
    target.updated_at = now
    source.status = "merged"
    source.merged_into = target_id
    source.updated_at = now
    # Profiles merged earlier into the source now point straight at the target: one hop.
    db.execute(
        update(Customer).where(Customer.merged_into == source_id).values(merged_into=target_id)
    )
    merge = CustomerMerge(
        source_customer_id=source_id,
        target_customer_id=target_id,
        reason=reason,
        actor=actor,
        moved=moved,
        merged_at=now,
    )
    db.add(merge)
    append_event(
        db,
        type="customers_merged",
        channel="web",
        customer_id=target_id,
        properties={"merged_customer_id": source_id, "reason": reason},
    )
    db.flush()
    return merge


def merge_customers(
    db: Session, *, source_customer_id: str, target_customer_id: str, reason: str, actor: str
) -> CustomerMerge:
    """Merge one profile into another: identities, consents, preferences, traits and history
    move to the target; the source remains as a pointer with an audit record."""
    source = _require(db, source_customer_id, field="source_customer_id")
    target = _require(db, target_customer_id, field="target_customer_id")
    merge = _merge(
        db, source_id=source.customer_id, target_id=target.customer_id, reason=reason, actor=actor
    )
    db.commit()
    return merge


def merge_history(db: Session, *, customer_id: str) -> list[CustomerMerge]:
    return list(
        db.scalars(
            select(CustomerMerge)
            .where(
                (CustomerMerge.target_customer_id == customer_id)
                | (CustomerMerge.source_customer_id == customer_id)
            )
            .order_by(CustomerMerge.id)
        )
    )


# ------------------------------------------------------------------------------ profiles


def create_customer(db: Session, *, customer: CustomerIn, channel: str = "web") -> Customer:
    """Register a customer with their identities and consent choices; logs ``customer_created``."""
    identities = {
        kind: value
        for kind, value in (
            ("external_id", customer.external_id),
            ("email", customer.email),
            ("phone", customer.phone),
        )
        if value
    }
    _refuse_erased(db, _normalised(identities), field="{kind}")
    if _owners(db, _normalised(identities)):
        raise Conflict(
            "A customer with this external_id, email or phone already exists",
            field="external_id" if customer.external_id else "email",
        )
    now = clock.now()
    record = Customer(
        customer_id=new_id("cus"),
        created_at=now,
        updated_at=now,
        status="active",
        is_anonymous=False,
        attributes={},
        **customer.model_dump(exclude={"consents"}),
    )
    db.add(record)
    db.flush()
    for kind, value in _normalised(identities).items():
        _attach(db, customer_id=record.customer_id, kind=kind, value=value, source="signup")
    for purpose, granted in customer.consents.items():
        _record_consent(
            db,
            customer_id=record.customer_id,
            purpose=purpose,
            granted=granted,
            source="signup",
            at=now,
        )
    append_event(
        db,
        type="customer_created",
        channel=channel,
        customer_id=record.customer_id,
        properties={"consents": dict(customer.consents)},
    )
    try:
        db.commit()
    except IntegrityError as error:
        db.rollback()
        raise Conflict(
            "A customer with this external_id, email or phone already exists", field="email"
        ) from error
    return record


def get_customer(db: Session, *, customer_id: str) -> Customer | None:
    """The customer, following merges to the surviving profile."""
    customer = db.get(Customer, customer_id)
    if customer is not None and customer.status == "merged" and customer.merged_into:
        return db.get(Customer, customer.merged_into)
    return customer


def _require(db: Session, customer_id: str, *, field: str = "customer_id") -> Customer:
    customer = get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field=field)
    if customer.status == "erased":
        raise NotFound(f"Customer {customer_id!r} was erased", field=field)
    return customer


def customer_ids_by_external_id(db: Session, *, external_ids: Iterable[str]) -> dict[str, str]:
    """Live customer ids for many retailer customer numbers at once (bulk imports)."""
    wanted = list(set(external_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.execute(
            select(Identity.value, Identity.customer_id).where(
                Identity.kind == "external_id", Identity.value.in_(chunk)
            )
        ).all()
        found.update((value, customer_id) for value, customer_id in rows)
        missing = [value for value in chunk if value not in found]
        if missing:
            by_column = db.execute(
                select(Customer.external_id, Customer.customer_id).where(
                    Customer.external_id.in_(missing)
                )
            ).all()
            found.update((str(value), customer_id) for value, customer_id in by_column)
    return found


def find_customer_by_external_id(db: Session, *, external_id: str) -> Customer | None:
    return db.scalar(select(Customer).where(Customer.external_id == external_id))


def count_customers(db: Session) -> int:
    """Known, live customers (not anonymous visitors, merged or erased profiles)."""
    return (
        db.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.status == "active", Customer.is_anonymous.is_(False))
        )
        or 0
    )


def search_customers(db: Session, *, query: str, limit: int = 20) -> list[Customer]:
    """Customers whose id, identity or name matches ``query`` (exact identity, name prefix)."""
    query = query.strip()
    if not query:
        return []
    found: list[Customer] = []
    direct = get_customer(db, customer_id=query)
    if direct is not None and direct.status == "active":
        found.append(direct)
    ids = set(
        db.scalars(
            select(Identity.customer_id).where(
                Identity.value.in_(
                    {normalise_identity(kind, query) for kind in IDENTITY_KINDS} - {""}
                )
            )
        )
    )
    lowered = query.lower()
    named = db.scalars(
        select(Customer)
        .where(
            Customer.status == "active",
            (func.lower(Customer.last_name).startswith(lowered))
            | (func.lower(Customer.first_name).startswith(lowered)),
        )
        .limit(limit)
    )
    for customer in [*(db.get(Customer, i) for i in ids), *named]:
        if customer is not None and customer.status == "active" and customer not in found:
            found.append(customer)
    return found[:limit]


# ------------------------------------------------------------------------------ consent


def _record_consent(
    db: Session, *, customer_id: str, purpose: str, granted: bool, source: str, at: datetime
) -> Consent:
    consent = db.get(Consent, (customer_id, purpose))
    if consent is None:
        consent = Consent(customer_id=customer_id, purpose=purpose)
        db.add(consent)
    consent.granted = granted
    consent.source = source
    consent.updated_at = at
    db.add(
        ConsentChange(
            customer_id=customer_id, purpose=purpose, granted=granted, source=source, changed_at=at
        )
    )
    return consent


def get_consents(db: Session, *, customer_id: str) -> list[Consent]:
    return list(
        db.scalars(
            select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.purpose)
        )
    )


def consent_history(db: Session, *, customer_id: str) -> list[ConsentChange]:
    return list(
        db.scalars(
            select(ConsentChange)
            .where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.id)
        )
    )


# The outbound gate: every message queued to a customer and every personal use of their data
# asks it first. "service" is for messages the customer needs about something they did (their
# order is late): no marketing consent, but never to an erased or merged-away profile, nor to
# one holding an identity on the erasure blocklist. Every other purpose is a consent purpose.
SERVICE = "service"
GATE_PURPOSES = (*CONSENT_PURPOSES, SERVICE)


def contactable(db: Session, *, customer_ids: Iterable[str], purpose: str) -> dict[str, str]:
    """Of ``customer_ids``, those Rapport may contact or use for ``purpose``, each mapped to
    the live profile to use (a merged id maps to the profile it was merged into). Left out:
    unknown, erased or merged-into-erased profiles, no recorded grant for ``purpose`` (no
    choice means no), and any profile holding an identity of an erased person. Bulk: a few
    queries per 500 ids."""
    if purpose not in GATE_PURPOSES:
        raise InvalidInput(
            f"Unknown purpose {purpose!r}; use one of {', '.join(GATE_PURPOSES)}", field="purpose"
        )
    wanted = sorted(set(customer_ids))
    allowed: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        allowed.update(_contactable_chunk(db, wanted[start : start + 500], purpose))
    return allowed


def _contactable_chunk(db: Session, wanted: list[str], purpose: str) -> dict[str, str]:
    rows = {
        row.customer_id: row
        for row in db.execute(
            select(Customer.customer_id, Customer.status, Customer.merged_into).where(
                Customer.customer_id.in_(wanted)
            )
        )
    }
    live: dict[str, str] = {}
    hops = {cid: row.merged_into for cid, row in rows.items() if row.status == "merged"}
    targets = {
        row.customer_id: row.status
        for row in db.execute(
            select(Customer.customer_id, Customer.status).where(
                Customer.customer_id.in_({t for t in hops.values() if t})
            )
        )
    }
    for cid, row in rows.items():
        if row.status == "active":
            live[cid] = cid
        elif cid in hops and targets.get(hops[cid] or "") == "active":
            live[cid] = str(hops[cid])  # merges point straight at the survivor
    survivors = set(live.values())
    if purpose != SERVICE and survivors:
        survivors = set(
            db.scalars(
                select(Consent.customer_id).where(
                    Consent.customer_id.in_(survivors),
                    Consent.purpose == purpose,
                    Consent.granted.is_(True),
                )
            )
        )
    if survivors:
        survivors -= _holding_erased_identities(db, survivors)
    return {cid: survivor for cid, survivor in live.items() if survivor in survivors}


def _holding_erased_identities(db: Session, customer_ids: set[str]) -> set[str]:
    """The profiles among ``customer_ids`` that hold an identity on the erasure blocklist
    (linking refuses them, but data from before that rule, or a restore, may not)."""
    held: dict[str, set[str]] = {}
    for cid, kind, value in db.execute(
        select(Identity.customer_id, Identity.kind, Identity.value).where(
            Identity.customer_id.in_(customer_ids), Identity.kind != "device_id"
        )
    ):
        held.setdefault(identity_digest(kind, value), set()).add(cid)
    hits = suppressed(db, digests=held)
    return {cid for digest in hits for cid in held[digest]}


def may_contact(db: Session, *, customer_id: str, purpose: str) -> bool:
    """Whether Rapport may contact or use ``customer_id`` for ``purpose``: see
    :func:`contactable`, which every producer of messages and personal uses calls."""
    return customer_id in contactable(db, customer_ids=[customer_id], purpose=purpose)


def has_consent(db: Session, *, customer_id: str, purpose: str) -> bool:
    """Whether the customer has granted ``purpose``. No recorded choice means no; an erased
    or unknown customer has granted nothing. Other domains ask this before any use."""
    state = consent_state(db, customer_id=customer_id)
    return state is not None and purpose in state.granted


@dataclass(frozen=True)
class ConsentState:
    customer_id: str  # the surviving profile, after merges
    granted: frozenset[str]


_CONSENT_STATE = (
    select(Customer.status, Customer.merged_into, Consent.purpose, Consent.granted)
    .outerjoin(Consent, Consent.customer_id == Customer.customer_id)
    .where(Customer.customer_id == bindparam("customer_id"))
)


def consent_state(db: Session, *, customer_id: str) -> ConsentState | None:
    """The customer (following merges) and every purpose they granted, in one round trip per
    profile: for hot read paths that gate on consent (recommendations). None for an unknown
    customer; an erased one has granted nothing."""
    for _ in range(4):  # merges chain at most a few deep
        rows = db.connection().execute(_CONSENT_STATE, {"customer_id": customer_id}).all()
        if not rows:
            return None
        status, merged_into = rows[0][0], rows[0][1]
        if status == "merged" and merged_into:
            customer_id = merged_into
            continue
        granted = frozenset(
            purpose for _, _, purpose, yes in rows if yes and purpose and status == "active"
        )
        return ConsentState(customer_id=customer_id, granted=granted)
    return None


def set_consent(
    db: Session, *, customer_id: str, purpose: str, granted: bool, source: str, channel: str = "web"
) -> Consent:
    """Record the customer's choice for one purpose (kept in the history) and log
    ``consent_changed``."""
    if purpose not in CONSENT_PURPOSES:
        raise InvalidInput(
            f"Unknown purpose {purpose!r}; use one of {', '.join(CONSENT_PURPOSES)}",
            field="purpose",
        )
    customer = _require(db, customer_id)
    consent = _record_consent(
        db,
        customer_id=customer.customer_id,
        purpose=purpose,
        granted=granted,
        source=source,
        at=clock.now(),
    )
    append_event(
        db,
        type="consent_changed",
        channel=channel,
        customer_id=customer.customer_id,
        properties={"purpose": purpose, "granted": granted, "source": source},
    )
    db.commit()
    return consent


def consent_counts(db: Session) -> dict[str, int]:
    """How many customers have granted each purpose."""
    rows = db.execute(
        select(Consent.purpose, func.count())
        .where(Consent.granted.is_(True))
        .group_by(Consent.purpose)
    ).all()
    return {purpose: int(count) for purpose, count in rows}


# -------------------------------------------------------------------------- preferences


def set_preferences(
    db: Session, *, customer_id: str, values: dict[str, Any], source: str, channel: str = "web"
) -> list[Preference]:
    """Store what the customer told us about themselves. Each field shared for the first time
    logs ``preference_shared`` (the loyalty engine rewards it once per field)."""
    customer = _require(db, customer_id)
    now = clock.now()
    stored = []
    for name, value in values.items():
        preference = db.get(Preference, (customer.customer_id, name))
        first_time = preference is None
        if preference is None:
            preference = Preference(customer_id=customer.customer_id, field=name)
            db.add(preference)
        preference.value = value
        preference.source = source
        preference.updated_at = now
        stored.append(preference)
        append_event(
            db,
            type="preference_shared",
            channel=channel,
            customer_id=customer.customer_id,
            properties={"field": name, "first_time": first_time, "source": source},
        )
    db.commit()
    return stored


def get_preferences(db: Session, *, customer_id: str) -> list[Preference]:
    return list(
        db.scalars(
            select(Preference)
            .where(Preference.customer_id == customer_id)
            .order_by(Preference.field)
        )
    )


# ---------------------------------------------------------------------------- traits/360


def get_traits(db: Session, *, customer_id: str) -> CustomerTraits | None:
    return db.get(CustomerTraits, customer_id)


def rfm_boundaries(db: Session) -> dict[str, list[float]]:
    return {row.metric: list(row.boundaries) for row in db.scalars(select(RfmBoundaries))}


def refresh_rfm_boundaries(db: Session) -> dict[str, list[float]]:
    """Recompute the population's quintile boundaries for recency, frequency and monetary
    value (one pass over traits, run daily; per-event updates stay incremental)."""
    now = clock.now()
    rows = db.execute(
        select(
            CustomerTraits.last_order_at, CustomerTraits.order_count, CustomerTraits.spend_minor
        ).where(CustomerTraits.order_count > 0)
    ).all()
    if not rows:
        return {}
    metrics = {
        "recency_days": quintile_boundaries(
            [(now - r.last_order_at).total_seconds() / 86400 for r in rows if r.last_order_at]
        ),
        "frequency": quintile_boundaries([float(r.order_count) for r in rows]),
        "monetary": quintile_boundaries([float(r.spend_minor) for r in rows]),
    }
    for metric, boundaries in metrics.items():
        upsert_rows(
            db,
            RfmBoundaries.__table__,
            [{"metric": metric, "boundaries": boundaries, "computed_at": now}],
            key_columns=["metric"],
            update_columns=["boundaries", "computed_at"],
        )
    db.commit()
    return metrics


def get_timeline(
    db: Session, *, customer_id: str, limit: int = 50, before_position: int | None = None
) -> list[Event]:
    """The customer's events, newest first."""
    return event_log.customer_timeline(
        db, customer_id=customer_id, limit=limit, before_position=before_position
    )


def customer_profile(db: Session, *, customer_id: str, timeline_limit: int = 50) -> dict[str, Any]:
    """The customer 360: profile, identities, consents and their history, preferences,
    traits (with RFM scores) and the latest events."""
    customer = _require(db, customer_id)
    cid = customer.customer_id
    traits = db.get(CustomerTraits, cid)
    summary = trait_summary(traits, now=clock.now()) if traits else None
    if summary is not None and traits is not None:
        summary["rfm"] = rfm_scores(traits, rfm_boundaries(db), now=clock.now())
    return {
        "customer": customer,
        "identities": get_identities(db, customer_id=cid),
        "consents": get_consents(db, customer_id=cid),
        "consent_history": consent_history(db, customer_id=cid),
        "preferences": get_preferences(db, customer_id=cid),
        "traits": summary,
        "merges": merge_history(db, customer_id=cid),
        "timeline": event_log.customer_timeline(db, customer_id=cid, limit=timeline_limit),
    }


# ------------------------------------------------------------------------------ privacy
# Export and erasure run across every domain as one workflow (rapport.flows.privacy); this is
# the customers domain's part of it, plus the audit of each request.

PRIVACY_TABLES = (
    "customers",
    "identities",
    "consents",
    "consent_changes",
    "preferences",
    "customer_traits",
    "customer_merges",
    "privacy_requests",
)
_ERASED_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "home_city",
    "home_latitude",
    "home_longitude",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def privacy_subject(db: Session, *, customer_id: str) -> PrivacySubject:
    """Who a privacy request is about: the profile (following merges), the profiles merged
    into it, and every value they were known by. 404 for an unknown or erased customer."""
    customer = _require(db, customer_id)
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
                identities.add((kind, normalise_identity(kind, value)))
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
    customer = _require(db, cid)
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


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Delete identities and preferences, empty the contact details, names, home and last
    location of the profile and of those merged into it, mark it erased, and put every
    former identity on the suppression list (digests only) so that later events naming it
    are refused. Consents stay (an erased person grants nothing), as do traits' totals."""
    cid = subject.customer_id
    suppress_identities(
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
    for person in db.scalars(
        select(Customer).where(Customer.customer_id.in_(subject.customer_ids))
    ):
        for name in _ERASED_FIELDS:
            setattr(person, name, None)
        person.attributes = {}
        person.updated_at = now
        if person.customer_id == cid:
            person.status = "erased"
            person.erased_at = now
    db.execute(
        update(CustomerTraits)
        .where(CustomerTraits.customer_id.in_(subject.customer_ids))
        .values(last_latitude=None, last_longitude=None, last_location_at=None)
    )
    db.flush()


def export_customer(db: Session, *, customer_id: str, requested_by: str) -> dict[str, Any]:
    """Every domain's data on the customer: see :func:`rapport.flows.privacy.export_customer`
    (kept here for existing callers)."""
    from rapport.flows import privacy  # the workflow calls this domain: import when used

    return privacy.export_customer(db, customer_id=customer_id, requested_by=requested_by)


def erase_customer(
    db: Session, *, customer_id: str, requested_by: str, reason: str | None = None
) -> PrivacyRequest:
    """Erase the customer in every domain: see :func:`rapport.flows.privacy.erase_customer`
    (kept here for existing callers)."""
    from rapport.flows import privacy  # the workflow calls this domain: import when used

    return privacy.erase_customer(
        db, customer_id=customer_id, requested_by=requested_by, reason=reason
    )


def privacy_requests(db: Session, *, customer_id: str) -> list[PrivacyRequest]:
    return list(
        db.scalars(
            select(PrivacyRequest)
            .where(PrivacyRequest.customer_id == customer_id)
            .order_by(PrivacyRequest.id)
        )
    )


# --------------------------------------------------------------------------- bulk import


def _identity_rows(
    ids: dict[str, str], customers: Iterable[ImportedCustomer], now: datetime
) -> list[dict[str, Any]]:
    rows = []
    for c in customers:
        identities = {"external_id": c.external_id, **({"email": c.email} if c.email else {})}
        if c.phone:
            identities["phone"] = c.phone
        identities.update(c.identities)
        for kind, value in _normalised(identities).items():
            rows.append(
                {
                    "customer_id": ids[c.external_id],
                    "kind": kind,
                    "value": value,
                    "is_unique": kind in UNIQUE_IDENTITY_KINDS,
                    "source": "import",
                    "created_at": now,
                }
            )
    return rows


def _without_erased_people(
    db: Session, records: Sequence[ImportedCustomer]
) -> list[ImportedCustomer]:
    """The records that name no erased person (an old CRM export must not bring one back):
    one suppression query per 500 records."""
    kept: list[ImportedCustomer] = []
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        digests: list[set[str]] = []
        for record in chunk:
            identities = {"external_id": record.external_id, **record.identities}
            if record.email:
                identities["email"] = record.email
            if record.phone:
                identities["phone"] = record.phone
            digests.append(
                {
                    identity_digest(kind, value)
                    for kind, value in _normalised(identities).items()
                    if kind != "device_id"
                }
            )
        erased = suppressed(db, digests=set().union(*digests))
        kept.extend(record for record, own in zip(chunk, digests, strict=True) if not own & erased)
    return kept


def import_customers(db: Session, *, customers: Sequence[ImportedCustomer]) -> int:
    """Bulk-load customers by ``external_id`` in one transaction, with their identities,
    consents and attributes; ones already present are left as they are, so re-running an
    import adds nothing. An identity another customer already holds is not attached twice;
    a record naming an erased person is skipped."""
    if not customers:
        return 0
    now = clock.now()
    external_ids = [c.external_id for c in customers]
    existing = set(
        db.scalars(select(Customer.external_id).where(Customer.external_id.in_(external_ids)))
    )
    fresh: list[ImportedCustomer] = []
    seen: set[str] = set()
    for c in customers:
        if c.external_id not in existing and c.external_id not in seen:
            fresh.append(c)
            seen.add(c.external_id)
    fresh = _without_erased_people(db, fresh)
    ids = {c.external_id: new_id("cus") for c in fresh}
    upsert_rows(
        db,
        Customer.__table__,
        [
            {
                "customer_id": ids[c.external_id],
                "external_id": c.external_id,
                "email": normalise_identity("email", c.email) if c.email else None,
                "phone": c.phone,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "locale": c.locale,
                "home_city": c.home_city,
                "home_latitude": c.home_latitude,
                "home_longitude": c.home_longitude,
                "attributes": dict(c.attributes),
                "is_anonymous": False,
                "status": "active",
                "merged_into": None,
                "erased_at": None,
                "created_at": now,
                "updated_at": now,
            }
            for c in fresh
        ],
        key_columns=["external_id"],
    )
    upsert_rows(db, Identity.__table__, _identity_rows(ids, fresh, now), key_columns=None)
    consent_rows = [
        {
            "customer_id": ids[c.external_id],
            "purpose": purpose,
            "granted": granted,
            "source": "import",
        }
        for c in fresh
        for purpose, granted in c.consents.items()
    ]
    upsert_rows(
        db,
        Consent.__table__,
        [{**row, "updated_at": now} for row in consent_rows],
        key_columns=["customer_id", "purpose"],
    )
    upsert_rows(
        db,
        ConsentChange.__table__,
        [{**row, "changed_at": now} for row in consent_rows],
        key_columns=None,
    )
    db.commit()
    return len(fresh)


def recent_customers(db: Session, *, limit: int = 20) -> list[Customer]:
    """The newest known customers, for the admin list."""
    return list(
        db.scalars(
            select(Customer)
            .where(Customer.status == "active", Customer.is_anonymous.is_(False))
            .order_by(Customer.created_at.desc(), Customer.customer_id.desc())
            .limit(limit)
        )
    )


def birthdays_on(db: Session, *, month: int, day: int) -> list[str]:
    """Customers whose shared birthday (a ``YYYY-MM-DD`` preference) falls on this day."""
    # The JSON text of the value is the quoted date on both databases ('"1990-05-12"').
    as_text = cast(Preference.value, String)
    return list(
        db.scalars(
            select(Preference.customer_id)
            .where(Preference.field == "birthday", as_text.like(f'%-{month:02d}-{day:02d}"'))
            .order_by(Preference.customer_id)
        )
    )
