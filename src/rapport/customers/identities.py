"""Identities: the ways a customer is recognised (external id, email, phone, anonymous and
device ids, ...), resolving them to one profile (merging those that turn out to be one person),
and refusing those of erased people."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers.events import CustomerIdentified
from rapport.customers.merges import merge_profiles
from rapport.customers.models import (
    IDENTITY_KINDS,
    UNIQUE_IDENTITY_KINDS,
    Customer,
    Identity,
)
from rapport.customers.profiles import PROFILE_FIELDS, get_customer, require_customer
from rapport.customers.traits import (
    PUBLIC_PROFILE,
    SAID_FIELDS,
    is_current,
    public_may_say,
    stamp,
    trusted_write,
)
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.identity import (
    customer_number_problem,
    identity_digest,
    identity_problem,
    normalise_identity,
)
from rapport.platform.ids import new_id

IDENTIFY_ATTEMPTS = 3


def _check_kind(kind: str) -> None:
    if kind not in IDENTITY_KINDS:
        raise InvalidInput(
            f"Unknown identity kind {kind!r}; use one of {', '.join(IDENTITY_KINDS)}",
            field="kind",
        )


def check_identities(identities: dict[str, str], *, field: str) -> None:
    """Refuse a value that is no identity of its kind (an email that is no address, a phone
    with no digits, an id longer than a customer reference): the rule sign-up's schema uses
    too (``platform.identity``). Empty values are passed over. ``field`` is the input's name,
    ``{kind}`` filled in."""
    for kind, value in identities.items():
        _check_kind(kind)
        if value is None or not str(value).strip():
            continue
        problem = identity_problem(kind, str(value))
        if problem:
            raise InvalidInput(problem, field=field.format(kind=kind))


def identity_owners(db: Session, identities: dict[str, str]) -> list[str]:
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


def attach_identity(db: Session, *, customer_id: str, kind: str, value: str, source: str) -> bool:
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


def normalised_identities(identities: dict[str, str]) -> dict[str, str]:
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
    hits = events.suppressed(db, digests=digests)
    return sorted(digests[digest] for digest in hits)


def erased_values(db: Session, *, kind: str, values: Iterable[str]) -> set[str]:
    """The values among ``values`` (identities of one ``kind``) that belong to erased
    people: for bulk loads, one query per 500."""
    wanted = sorted(set(values))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        digests = {identity_digest(kind, value): value for value in wanted[start : start + 500]}
        found.update(digests[digest] for digest in events.suppressed(db, digests=digests))
    return found


def refuse_erased(db: Session, identities: dict[str, str], *, field: str) -> None:
    """Erased means gone and stays gone: refuse to create or link a profile with an identity
    of an erased person. ``field`` is the input's name, ``{kind}`` filled in."""
    erased = erased_kinds(db, identities)
    if erased:
        raise InvalidInput(
            f"This {erased[0]} belongs to an erased person; it cannot be used again",
            field=field.format(kind=erased[0]),
            code="suppressed",
        )


def refuse_new_customer_number(db: Session, value: str | None, *, field: str) -> None:
    """Refuse to give anyone a customer number that cannot name them in a path (a ``/``):
    every road that creates one (an order, an import, a tracked user id) comes through here.
    One a customer already holds (from before December 2026) still finds them."""
    problem = customer_number_problem(value) if value else None
    if problem is None:
        return
    held = db.scalar(
        select(Identity.id).where(Identity.kind == "external_id", Identity.value == value).limit(1)
    )
    if held is None:
        raise InvalidInput(problem, field=field)


def device_holders(db: Session, value: str) -> list[str]:
    """The live (active) customers holding the device id ``value`` (normalised), by id."""
    return list(
        db.scalars(
            select(Customer.customer_id)
            .join(Identity, Identity.customer_id == Customer.customer_id)
            .where(
                Identity.kind == "device_id",
                Identity.value == value,
                Customer.status == "active",
            )
            .distinct()
            .order_by(Customer.customer_id)
        )
    )


def find_customer(db: Session, *, kind: str, value: str) -> Customer | None:
    """The live customer recognised by an identity, or ``None``. A device id held by several
    live customers names none of them: :class:`Conflict` (``holders``, their number)."""
    _check_kind(kind)
    if kind == "device_id":
        holders = device_holders(db, normalise_identity(kind, value))
        if len(holders) > 1:
            raise Conflict(
                f"This device_id is shared by {len(holders)} customers; look them up by "
                "another identity",
                field="value",
                holders=len(holders),
            )
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


# The field_times key a sign-up's adoption (``signup._adopt``) sets: when the shop took over a
# profile only the public key had written.
ADOPTED = "adopted"


def adopted_since(customer: Customer, received_at: datetime) -> bool:
    """Whether the shop's sign-up adopted ``customer`` after an event received at
    ``received_at``: what the page said before the adoption is not the real customer's."""
    adopted = (customer.field_times or {}).get(ADOPTED)
    return adopted is not None and clock.as_utc(received_at) < datetime.fromisoformat(adopted)


def _new_customer(
    db: Session,
    *,
    identities: dict[str, str],
    profile: dict[str, Any],
    at: datetime,
    public: bool = False,
) -> Customer:
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
    stamp(record, [name for name in SAID_FIELDS if getattr(record, name, None)], at, public=public)
    if public and known:
        record.field_times = {
            **(record.field_times or {}),
            PUBLIC_PROFILE: record.created_at.isoformat(),
        }
    db.add(record)
    db.flush()
    return record


def _fill_contact(customer: Customer, identities: dict[str, str]) -> list[str]:
    """A profile without a contact email or phone takes its email or phone identity's as
    one: the customer is reachable on what recognises them. The fields it filled."""
    filled: list[str] = []
    for name in ("email", "phone"):
        if getattr(customer, name) is None and name in identities:
            setattr(customer, name, identities[name])
            filled.append(name)
    return filled


def resolve_identities(
    db: Session,
    *,
    identities: dict[str, str],
    profile: dict[str, Any] | None = None,
    source: str,
    actor: str = "identity resolution",
    at: datetime | None = None,
    public: bool = False,
    withheld: list[str] | None = None,
) -> Customer:
    """Find or create the one customer these identities name, inside the caller's transaction.

    A unique identity held by several customers means they are one person: the others are
    merged into the oldest known profile. Anonymous-only identities make an anonymous profile.
    ``profile`` fields were said ``at`` (now, by default): each replaces the profile's value
    unless that one was said later (``traits.is_current``). ``public``: the public tracking
    key said them (an ingest-only key's identify), which sets only what
    ``traits.public_may_say`` allows on a profile that exists; the fields it leaves out are
    returned in ``withheld``, when given.
    """
    at = at or clock.now()
    cleaned = normalised_identities(identities)
    if not cleaned:
        raise InvalidInput("Give at least one identity (email, phone, ...)", field="identities")
    refuse_erased(db, cleaned, field="identities.{kind}")
    refuse_new_customer_number(db, cleaned.get("external_id"), field="identities.external_id")
    owners = identity_owners(db, cleaned)
    if not owners and "device_id" in cleaned and set(cleaned) == {"device_id"}:
        # Only a device id: people share devices, so it names its one holder (or a new
        # profile), never one of several picked at random.
        owners = device_holders(db, cleaned["device_id"])
        if len(owners) > 1:
            raise Conflict(
                f"This device_id is shared by {len(owners)} customers; give an identity of "
                "the person too (email, phone, ...)",
                field="identities.device_id",
                holders=len(owners),
            )
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
            merge_profiles(
                db,
                source_id=other,
                target_id=customer.customer_id,
                reason="shared identity",
                actor=actor,
            )
    else:
        customer = _new_customer(
            db, identities=cleaned, profile=profile or {}, at=at, public=public
        )
    for kind, value in cleaned.items():
        attach_identity(db, customer_id=customer.customer_id, kind=kind, value=value, source=source)
        if kind not in ("anonymous_id", "device_id") and customer.is_anonymous:
            customer.is_anonymous = False
        if kind == "external_id" and customer.external_id is None:
            customer.external_id = value
    said: list[str] = []
    for name in PROFILE_FIELDS:
        if profile and profile.get(name) and is_current(customer, name, at):
            if public and not public_may_say(customer, name, getattr(customer, name)):
                if withheld is not None:
                    withheld.append(name)
                continue
            setattr(customer, name, profile[name])
            said.append(name)
    said += _fill_contact(customer, cleaned)
    stamp(customer, said, at, public=public)
    if not public:
        trusted_write(customer)
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
    before_commit: BeforeCommit | None = None,
) -> Customer:
    """Find or create the customer these identities name and commit. Safe to call at the same
    time for the same email: the database's unique index lets one insert win, and the loser
    retries and finds the winner. ``before_commit`` runs last in the same transaction."""
    check_identities(identities, field="identities.{kind}")
    for attempt in range(IDENTIFY_ATTEMPTS):
        try:
            customer = resolve_identities(db, identities=identities, profile=profile, source=source)
            events.append_event(
                db,
                CustomerIdentified(kinds=sorted(identities)),
                channel=channel,
                customer_id=customer.customer_id,
            )
            if before_commit is not None:
                before_commit(db, customer)
            db.commit()
            return customer
        except IntegrityError:
            db.rollback()
            if attempt == IDENTIFY_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def add_identity(
    db: Session,
    *,
    customer_id: str,
    kind: str,
    value: str,
    source: str = "api",
    before_commit: BeforeCommit | None = None,
) -> Identity:
    """Add a way to recognise a customer. A unique identity another customer holds is a
    conflict: merge the two profiles instead. ``before_commit`` runs last in the same
    transaction, with the identity."""
    _check_kind(kind)
    check_identities({kind: value}, field="value")
    customer = require_customer(db, customer_id)
    cleaned = normalised_identities({kind: value})
    if not cleaned:
        raise InvalidInput("The identity value is empty", field="value")
    value = cleaned[kind]
    refuse_erased(db, cleaned, field="value")
    owners = [o for o in identity_owners(db, cleaned) if o != customer.customer_id]
    if owners:
        raise Conflict(
            f"This {kind} belongs to customer {owners[0]}; merge the profiles to combine them",
            field="value",
            other_customer_id=owners[0],
        )
    attach_identity(db, customer_id=customer.customer_id, kind=kind, value=value, source=source)
    filled = _fill_contact(customer, cleaned)
    if filled:
        stamp(customer, filled, clock.now())
        customer.updated_at = clock.now()
    trusted_write(customer)
    db.flush()
    identity = db.scalar(
        select(Identity).where(
            Identity.customer_id == customer.customer_id,
            Identity.kind == kind,
            Identity.value == value,
        )
    )
    assert identity is not None
    if before_commit is not None:
        before_commit(db, identity)
    db.commit()
    return identity
