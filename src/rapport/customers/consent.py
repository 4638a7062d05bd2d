"""Consent: the customer's choice per purpose (with its history), and the outbound gate every
message and personal use of a customer's data asks first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from rapport.customers.events import ConsentChanged
from rapport.customers.models import (
    CONSENT_PURPOSES,
    CONSENT_SOURCE_LENGTH,
    Consent,
    ConsentChange,
    Customer,
    CustomerTraits,
    Identity,
)
from rapport.customers.profiles import require_customer
from rapport.customers.traits import attribute_field
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.errors import InvalidInput
from rapport.platform.identity import identity_digest


def clipped_consent_source(source: str) -> str:
    """``source`` as a consent's history keeps it, its first ``CONSENT_SOURCE_LENGTH``
    characters: for a source Rapport composes (a file's name, a tracked event's channel) or
    takes from a file or an event, where the API's ``ConsentSource`` refuses a longer one."""
    return source[:CONSENT_SOURCE_LENGTH]


def record_consent(
    db: Session, *, customer_id: str, purpose: str, granted: bool, source: str, at: datetime
) -> bool:
    """Record one decision for one purpose, made at ``at``, whatever door it came through (the
    API, an unsubscribe link, sign-up, a tracked ``consent_changed``). The most recent
    decision per purpose stands; whether it came first or late does not matter:

    - the choice as it stands (same answer and source), or one already in the history at that
      very time, changes nothing: no history row;
    - a decision older than the one standing (a late tracked event) is kept in the history at
      its own time, and changes nothing else;
    - otherwise it becomes the standing choice, with its history row. Withdrawing ``location``
      empties the last known location and the home point and takes coordinates out of the
      custom attributes.

    True when a history row was added."""
    consent = db.get(Consent, (customer_id, purpose))
    if consent is not None and consent.granted == granted and consent.source == source:
        return False
    late = consent is not None and at < consent.updated_at
    if late and db.scalar(
        select(ConsentChange.id)
        .where(
            ConsentChange.customer_id == customer_id,
            ConsentChange.purpose == purpose,
            ConsentChange.granted.is_(granted),
            ConsentChange.source == source,
            ConsentChange.changed_at == at,
        )
        .limit(1)
    ):
        return False
    db.add(
        ConsentChange(
            customer_id=customer_id, purpose=purpose, granted=granted, source=source, changed_at=at
        )
    )
    if late:
        return True
    if consent is None:
        consent = Consent(customer_id=customer_id, purpose=purpose)
        db.add(consent)
    consent.granted = granted
    consent.source = source
    consent.updated_at = at
    if purpose == "location" and not granted:
        forget_location(db, customer_id=customer_id)
    return True


HOME_POINT = ("home_latitude", "home_longitude")


def new_home_point(
    location: bool | None, latitude: float | None, longitude: float | None
) -> tuple[float | None, float | None]:
    """The home point a new profile is stored with, given the choice on ``location`` it comes
    with (``None``: none): no point where it refuses (as a withdrawal would empty it at once),
    else the one given. The one rule for every door that creates a profile with a home point:
    sign-up (``POST /v1/customers``) and CRM imports (``import_batch.load_customers``)."""
    if location is False:
        return None, None
    return latitude, longitude


def forget_location(db: Session, *, customer_id: str) -> None:
    """Empty the profile's last known location and its home point (``home_latitude``,
    ``home_longitude``; the home city stays), and take the coordinates tracking's traits
    left in its custom attributes out of them (``lat``, ``lon``, ``latitude``, ``longitude``
    and a ``location`` object's, as ingestion strips them: ``events.without_coordinate_traits``):
    they are kept only while the customer consents to ``location`` (a withdrawal by any door,
    or a merge whose standing choice is no)."""
    db.flush()  # traits a caller has just added (the profile processor's batch) are found
    customer = db.get(Customer, customer_id)
    if customer is not None and any(getattr(customer, name) is not None for name in HOME_POINT):
        customer.home_latitude = customer.home_longitude = None
        if customer.field_times and set(HOME_POINT) & set(customer.field_times):
            customer.field_times = {
                name: said for name, said in customer.field_times.items() if name not in HOME_POINT
            }
        customer.updated_at = clock.now()
    if customer is not None and customer.attributes:
        kept = events.without_coordinate_traits(customer.attributes)
        if kept is not customer.attributes:
            gone = {attribute_field(name) for name in set(customer.attributes) - set(kept)}
            customer.attributes = dict(kept)  # a new dict: JSON columns track assignment
            if gone and customer.field_times:
                customer.field_times = {
                    name: said for name, said in customer.field_times.items() if name not in gone
                }
            customer.updated_at = clock.now()
    traits = db.get(CustomerTraits, customer_id)
    if traits is not None and (
        traits.last_latitude is not None
        or traits.last_longitude is not None
        or traits.last_location_at is not None
    ):
        traits.last_latitude = traits.last_longitude = None
        traits.last_location_at = None


def get_consents(db: Session, *, customer_id: str) -> list[Consent]:
    return list(
        db.scalars(
            select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.purpose)
        )
    )


def consent_history(
    db: Session, *, customer_id: str, limit: int | None = None, after: str | None = None
) -> list[ConsentChange]:
    """The customer's consent decisions, oldest first: all of them, or ``limit`` after the
    cursor ``after`` (a page's last ``consent_cursor_of``; anything else is refused naming
    ``cursor``)."""
    query = (
        select(ConsentChange)
        .where(ConsentChange.customer_id == customer_id)
        .order_by(ConsentChange.changed_at, ConsentChange.id)
    )
    if after is not None:
        cursor = _history_cursor(db, customer_id=customer_id, after=after)
        query = query.where(
            or_(
                ConsentChange.changed_at > cursor.changed_at,
                and_(
                    ConsentChange.changed_at == cursor.changed_at,
                    ConsentChange.id > cursor.id,
                ),
            )
        )
    if limit is not None:
        query = query.limit(limit)
    return list(db.scalars(query))


def _history_cursor(db: Session, *, customer_id: str, after: str) -> ConsentChange:
    """The history row a cursor names (a row of this customer's history), else 422."""
    found = (
        db.scalar(
            select(ConsentChange).where(
                ConsentChange.id == int(after), ConsentChange.customer_id == customer_id
            )
        )
        if after.isdigit() and len(after) <= 18
        else None
    )
    if found is None:
        raise InvalidInput(
            "Not a cursor of this customer's consent history: pass next_cursor as it came",
            field="cursor",
        )
    return found


def consent_cursor_of(change: ConsentChange) -> str:
    """The cursor for the page after ``change``."""
    return str(change.id)


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
    hits = events.suppressed(db, digests=held)
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
    erased: bool = False  # an erased profile has granted nothing, and is answered as erased


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
        return ConsentState(customer_id=customer_id, granted=granted, erased=status == "erased")
    return None


def set_consent(
    db: Session, *, customer_id: str, purpose: str, granted: bool, source: str, channel: str = "web"
) -> Consent:
    """Record the customer's choice for one purpose now (kept in the history, through
    :func:`record_consent`, as every door does) and log ``consent_changed``. The choice
    already recorded, from the same source, changes nothing: no history row, no event (a
    repeated PUT leaves what sending it once left)."""
    if purpose not in CONSENT_PURPOSES:
        raise InvalidInput(
            f"Unknown purpose {purpose!r}; use one of {', '.join(CONSENT_PURPOSES)}",
            field="purpose",
        )
    customer = require_customer(db, customer_id)
    recorded = record_consent(
        db,
        customer_id=customer.customer_id,
        purpose=purpose,
        granted=granted,
        source=source,
        at=clock.now(),
    )
    consent = db.get(Consent, (customer.customer_id, purpose))
    assert consent is not None  # recorded now, or standing as sent
    if recorded:
        events.append_event(
            db,
            ConsentChanged(purpose=purpose, granted=granted, source=source),
            channel=channel,
            customer_id=customer.customer_id,
        )
        db.commit()
    return consent


def consent_counts(db: Session) -> dict[str, int]:
    """How many known, live customers have granted each purpose: the population
    ``count_customers`` counts (no anonymous visitor, merged or erased profile)."""
    rows = db.execute(
        select(Consent.purpose, func.count())
        .join(Customer, Customer.customer_id == Consent.customer_id)
        .where(
            Consent.granted.is_(True),
            Customer.status == "active",
            Customer.is_anonymous.is_(False),
        )
        .group_by(Consent.purpose)
    ).all()
    return {purpose: int(count) for purpose, count in rows}
