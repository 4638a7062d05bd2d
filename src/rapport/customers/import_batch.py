"""Loading a batch of customer records (the demo generator, CRM files) in one transaction:
new customers by external id, with their identities, consents and attributes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers.consent import clipped_consent_source, new_home_point
from rapport.customers.identities import normalised_identities
from rapport.customers.models import (
    UNIQUE_IDENTITY_KINDS,
    Consent,
    ConsentChange,
    Customer,
    Identity,
)
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.db import among, upsert_rows
from rapport.platform.errors import InvalidInput
from rapport.platform.identity import (
    canonical_email,
    canonical_phone,
    customer_number_problem,
    identity_digest,
    normalise_identity,
    time_zone_problem,
)
from rapport.platform.ids import new_id


@dataclass(frozen=True)
class ImportedCustomer:
    """A customer record from a bulk source (demo generator, CRM importers).

    ``identities`` adds ways to recognise the customer beyond ``external_id`` and ``email``
    (kind -> value, e.g. ``{"loyalty_card": "LC-0042"}``); ``phone`` is the contact phone and
    a phone identity, kept as ``+`` and digits (``platform.identity.canonical_phone``);
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
    time_zone: str | None = None
    """An IANA zone (``Europe/Paris``; ``platform.identity.time_zone_problem``)."""
    identities: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None  # when the customer joined (default: the import)
    line: int | None = field(default=None, compare=False)  # a file's line it was read from


def _identity_rows(
    ids: dict[str, str],
    customers: Iterable[ImportedCustomer],
    now: datetime,
    phones: dict[str, str],
    emails: dict[str, str],
) -> list[dict[str, Any]]:
    rows = []
    for c in customers:
        identities = {"external_id": c.external_id}
        if c.external_id in emails:
            identities["email"] = emails[c.external_id]
        if c.external_id in phones:
            identities["phone"] = phones[c.external_id]
        identities.update(c.identities)
        for kind, value in normalised_identities(identities).items():
            rows.append(
                {
                    "customer_id": ids[c.external_id],
                    "kind": kind,
                    "value": value,
                    "is_unique": kind in UNIQUE_IDENTITY_KINDS,
                    "source": "import",
                    "created_at": c.created_at or now,
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
                    for kind, value in normalised_identities(identities).items()
                    if kind != "device_id"
                }
            )
        erased = events.suppressed(db, digests=set().union(*digests))
        kept.extend(record for record, own in zip(chunk, digests, strict=True) if not own & erased)
    return kept


def _held(db: Session, kind: str, values: dict[str, str]) -> set[str]:
    """Of ``values`` (external id -> phone or email in its identity's form, in the batch's
    order), the external ids whose value another customer's ``kind`` identity holds, or an
    earlier record of the batch: such a value names someone else, as tracking's identify
    finds it, and is neither attached nor made the contact phone or email (the erasure of its
    holder would leave it, blocklisted, on this profile)."""
    held = (
        set(
            db.scalars(
                select(Identity.value).where(
                    Identity.kind == kind, among(db, Identity.value, set(values.values()))
                )
            )
        )
        if values
        else set()
    )
    left_out: set[str] = set()
    for external_id, value in values.items():
        if value in held:
            left_out.add(external_id)
        held.add(value)
    return left_out


@dataclass(frozen=True)
class BatchOutcome:
    """What :func:`load_customers` did: customers added, records skipped because they name
    an erased person, and the records added without their phone or email, which another
    customer holds (``phones_left_out``, ``emails_left_out``)."""

    added: int
    erased: int
    phones_left_out: tuple[ImportedCustomer, ...] = ()
    emails_left_out: tuple[ImportedCustomer, ...] = ()


def import_customers(
    db: Session, *, customers: Sequence[ImportedCustomer], consent_source: str = "import"
) -> int:
    """:func:`load_customers`, returning how many customers were added."""
    return load_customers(db, customers=customers, consent_source=consent_source).added


def load_customers(
    db: Session, *, customers: Sequence[ImportedCustomer], consent_source: str = "import"
) -> BatchOutcome:
    """Bulk-load customers by ``external_id`` in one transaction, with their identities,
    consents and attributes; ones already present are left as they are, so re-running an
    import adds nothing. An identity another customer already holds is not attached twice,
    and a phone or email another customer holds (or an earlier record) is not kept as the
    contact phone or email either (the record is added without it, and returned); a record
    naming an erased
    person is skipped (and counted). ``consent_source`` is what the
    consent history says the choices came from (``import:<file>`` for files)."""
    if not customers:
        return BatchOutcome(0, 0)
    # The customer number in the form its identity is kept (NFC, trimmed): "Zoë" is one
    # customer however its "ë" was typed, in this file or the API.
    customers = [
        replace(c, external_id=normalise_identity("external_id", c.external_id)) for c in customers
    ]
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
    phones: dict[str, str] = {}
    for c in fresh:
        # A number no path can name is refused before anything is written (the file import
        # names its line; a transactions file stops here, naming it).
        problem = customer_number_problem(c.external_id)
        if problem is not None:
            raise InvalidInput(f"{c.external_id!r}: {problem}", field="external_id")
        if c.phone:
            # Kept as its identity has it; a national or unreadable one is refused, as the
            # file import refuses it naming its line.
            try:
                phones[c.external_id] = canonical_phone(c.phone)
            except ValueError as refusal:
                raise InvalidInput(f"{c.external_id!r}: {refusal}", field="phone") from None
        if c.time_zone is not None and (zone := time_zone_problem(c.time_zone)) is not None:
            raise InvalidInput(f"{c.external_id!r}: {zone}", field="time_zone")
    unerased = _without_erased_people(db, fresh)
    erased = len(fresh) - len(unerased)
    fresh = unerased
    phones = {c.external_id: phones[c.external_id] for c in fresh if c.external_id in phones}
    phones_left_out = _held(db, "phone", phones)
    for external_id in phones_left_out:
        del phones[external_id]
    emails = {c.external_id: canonical_email(c.email) for c in fresh if c.email}
    emails = {external_id: email for external_id, email in emails.items() if email}
    emails_left_out = _held(db, "email", emails)
    for external_id in emails_left_out:
        del emails[external_id]
    ids = {c.external_id: new_id("cus") for c in fresh}
    # No home point where the record refuses location (the rule sign-up applies).
    homes = {
        c.external_id: new_home_point(c.consents.get("location"), c.home_latitude, c.home_longitude)
        for c in fresh
    }
    upsert_rows(
        db,
        Customer.__table__,
        [
            {
                "customer_id": ids[c.external_id],
                "external_id": c.external_id,
                "email": emails.get(c.external_id),
                "phone": phones.get(c.external_id),
                "first_name": c.first_name,
                "last_name": c.last_name,
                "locale": c.locale,
                "home_city": c.home_city,
                "home_latitude": homes[c.external_id][0],
                "home_longitude": homes[c.external_id][1],
                "time_zone": c.time_zone.strip() if c.time_zone else None,
                "attributes": dict(c.attributes),
                "is_anonymous": False,
                "status": "active",
                "merged_into": None,
                "erased_at": None,
                "created_at": c.created_at or now,
                "updated_at": now,
            }
            for c in fresh
        ],
        key_columns=["external_id"],
    )
    upsert_rows(
        db, Identity.__table__, _identity_rows(ids, fresh, now, phones, emails), key_columns=None
    )
    consent_rows = [
        {
            "customer_id": ids[c.external_id],
            "purpose": purpose,
            "granted": granted,
            "source": clipped_consent_source(consent_source),
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
    return BatchOutcome(
        len(fresh),
        erased,
        tuple(c for c in fresh if c.external_id in phones_left_out),
        tuple(c for c in fresh if c.external_id in emails_left_out),
    )
