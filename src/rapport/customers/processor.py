"""The profile processor: resolves who each event belongs to and folds it into their traits.

It runs on the worker, in log order, one batch per transaction with its cursor (see
``rapport.events.processors``). Besides identities and activity it applies what tracking
says about a person: traits (an identify call's, and ``context.traits`` on any call) to
profile fields and custom attributes, ``aliased`` (previous id → user id) as a merge or a new
identity, and ``grouped`` as the customer's account or household.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers.consent import clipped_consent_source, record_consent
from rapport.customers.identities import (
    adopted_since,
    attach_identity,
    find_customer,
    get_identities,
    refuse_new_customer_number,
    resolve_identities,
)
from rapport.customers.merges import merge_profiles
from rapport.customers.models import (
    CONSENT_PURPOSES,
    Consent,
    Customer,
    CustomerGroup,
    CustomerTraits,
    Identity,
    Preference,
    PrivacyRequest,
)
from rapport.customers.profiles import get_customer
from rapport.customers.traits import (
    MAX_CUSTOM_TRAITS,
    apply_event,
    attribute_field,
    birthday,
    custom_traits,
    held_value,
    is_current,
    kept_attributes,
    profile_fields,
    public_may_say,
    stamp,
    trusted_write,
)
from rapport.events import service as event_log
from rapport.events.service import LoggedEvent
from rapport.platform import clock
from rapport.platform.errors import InvalidInput
from rapport.platform.identity import (
    canonical_phone,
    customer_number_problem,
    identity_digest,
    identity_problem,
    known_time_zone,
    normalise_identity,
)

IDENTIFYING_TRAITS = ("email", "phone", "loyalty_card")
# Bookkeeping, not activity: these must not move "last seen" or count as events.
NOT_ACTIVITY = frozenset({"customers_merged", "customer_erased"})
# Profile columns a tracking event's ``context.traits`` may fill (identities and contact
# details come from identify calls only).
_CONTEXT_PROFILE_FIELDS = ("first_name", "last_name", "home_city", "time_zone")
# An alias's previous id may have been a visitor id or a user id: it is looked up, and
# linked, as both.
_ALIAS_KINDS = ("external_id", "anonymous_id")
# What an event sent with an ingest-only key (``events.service.from_public_key``: the key a
# shop's pages and apps carry, readable by anyone, with customer numbers easy to guess) may
# not change on a known customer who exists already: their contact email and phone, their
# names, and the identities the API looks them up by (``IDENTIFYING_TRAITS``, and an alias's
# previous id as their user id). Setting or changing them takes a key that may also write (the
# shop's server, a till), as a marketing grant does. A new customer's first identify may set
# them (a sign-up on the shop's page).
GUARDED_FIELDS = ("email", "phone", "first_name", "last_name")

log = logging.getLogger(__name__)


def _event_traits(event: LoggedEvent) -> dict[str, Any]:
    properties = event.properties or {}
    nested = properties.get("traits")
    return nested if isinstance(nested, dict) else properties


def _identity_traits(traits: dict[str, Any]) -> dict[str, str]:
    """The identities an identify call's traits name, by the rule the API uses
    (``platform.identity.identity_problem``): a value the API would refuse, such as an
    email that is not an address or a national phone number (06 …, no country), is none
    (left out; events logged before ingestion refused some are read as they are)."""
    found: dict[str, str] = {}
    for kind in IDENTIFYING_TRAITS:
        value = traits.get(kind)
        if isinstance(value, str) and value.strip() and identity_problem(kind, value) is None:
            found[kind] = value
    return found


def _profile(traits: dict[str, Any]) -> dict[str, Any]:
    """The profile fields an identify call's traits fill. The contact email and phone obey
    the identity rule: one the API would refuse is left out (a national phone number names
    no country; ingestion refuses one, events logged before it did are read as they are),
    and a phone is kept as the ``+`` number its identity is (``+33 6 11 22 33 44`` and
    ``0033 6 11 22 33 44`` as ``+33611223344``: ``platform.identity.canonical_phone``)."""
    profile: dict[str, Any] = dict(profile_fields(traits))
    email, phone = profile.get("email"), profile.pop("phone", None)
    if email is not None and identity_problem("email", email) is not None:
        del profile["email"]
    if phone is not None:
        with suppress(ValueError):
            profile["phone"] = canonical_phone(phone)
    return profile


def _previous_id(event: LoggedEvent) -> str | None:
    """An ``aliased`` event's previous id, when it is one."""
    if event.type != "aliased" or event.source == "command":
        return None
    value = (event.properties or {}).get("previous_id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def alias_identities(event: LoggedEvent) -> list[tuple[str, str]]:
    """The identities an alias's previous id may be (normalised), for the erasure checks."""
    previous = _previous_id(event)
    if previous is None:
        return []
    found = [(kind, normalise_identity(kind, previous)) for kind in _ALIAS_KINDS]
    return [(kind, value) for kind, value in found if value]


def _anonymous_owner(db: Session, anonymous_id: str) -> Customer | None:
    owner = db.scalar(
        select(Identity.customer_id).where(
            Identity.kind == "anonymous_id", Identity.value == anonymous_id
        )
    )
    return get_customer(db, customer_id=owner) if owner else None


class IdentityCache:
    """Who holds which identity, remembered for one batch: most events name someone already
    known, and need one lookup, not a resolution."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.owners: dict[tuple[str, str], str | None] = {}

    def owner(self, kind: str, value: str) -> Customer | None:
        key = (kind, value)
        if key not in self.owners:
            self.owners[key] = self.db.scalar(
                select(Identity.customer_id)
                .where(Identity.kind == kind, Identity.value == value)
                .limit(1)
            )
        customer_id = self.owners[key]
        return get_customer(self.db, customer_id=customer_id) if customer_id else None

    def forget(self) -> None:
        self.owners.clear()


def _already_known(cache: IdentityCache, event: LoggedEvent) -> Customer | None:
    """The fast path: an ordinary event from a person whose identities are all linked."""
    if event.type == "identified" or event.customer_id is not None:
        return None
    by_user = None
    if event.user_id:
        if event.user_id.startswith("cus_"):
            by_user = get_customer(cache.db, customer_id=event.user_id)
        if by_user is None:
            by_user = cache.owner("external_id", event.user_id)
        if by_user is None:
            return None
    by_anonymous = cache.owner("anonymous_id", event.anonymous_id) if event.anonymous_id else None
    if event.anonymous_id and by_anonymous is None:
        return None
    if by_user is not None and by_anonymous is not None and by_user is not by_anonymous:
        return None
    return by_user or by_anonymous


def named_identities(event: LoggedEvent) -> dict[str, str]:
    """Every identity an event names, as resolution would link them (normalised)."""
    named: dict[str, str] = {}
    if event.user_id:
        named["external_id"] = event.user_id
    if event.anonymous_id:
        named["anonymous_id"] = event.anonymous_id
    if event.type == "identified":
        named.update(_identity_traits(_event_traits(event)))
    cleaned = {kind: normalise_identity(kind, value) for kind, value in named.items()}
    return {kind: value for kind, value in cleaned.items() if value}


class Blocklist:
    """The erased people's identities among those a batch names: read once per batch (one
    query), grown as the batch learns more of an erased person's identities."""

    def __init__(self, db: Session, events: list[LoggedEvent]) -> None:
        self.db = db
        wanted = {
            identity_digest(kind, value)
            for event in events
            if event.customer_id is None
            for kind, value in named_identities(event).items()
        }
        for event in events:
            wanted.update(identity_digest(kind, value) for kind, value in alias_identities(event))
        self.digests = event_log.suppressed(db, digests=wanted)

    def refresh(self, named: dict[str, str]) -> None:
        """Read again which of these identities are suppressed (an erasure committed since
        the batch began)."""
        self.digests.update(
            event_log.suppressed(self.db, digests=[identity_digest(k, v) for k, v in named.items()])
        )

    def names_erased(self, named: dict[str, str]) -> bool:
        return any(identity_digest(kind, value) in self.digests for kind, value in named.items())

    def shared_browser(self, named: dict[str, str]) -> bool:
        """Whether only the visitor id is an erased person's, and the event names someone
        else by a person identity."""
        erased = {kind for kind, value in named.items() if self.names_erased({kind: value})}
        return erased == {"anonymous_id"} and len(named) > 1

    def forget(self, event: LoggedEvent, named: dict[str, str]) -> None:
        """The event is an erased person's: nothing of it may reach a profile. Its other
        identities (the visitor id of the browser they identified in, say) are theirs too:
        they join the blocklist unless a known live profile holds them, and an anonymous
        profile built from them before this event is erased."""
        fresh: list[str] = []
        for kind, value in named.items():
            digest = identity_digest(kind, value)
            if digest in self.digests:
                continue
            owner_id = self.db.scalar(
                select(Identity.customer_id)
                .where(Identity.kind == kind, Identity.value == value)
                .limit(1)
            )
            owner = get_customer(self.db, customer_id=owner_id) if owner_id else None
            if owner is not None and owner.status == "active" and not owner.is_anonymous:
                continue  # someone else's profile: never touched on an erased person's behalf
            if owner is not None and owner.status == "active":
                _erase_anonymous_profile(self.db, owner)
            fresh.append(digest)
        if fresh:
            event_log.suppress_identities(self.db, digests=fresh)
            self.digests.update(fresh)
        _scrub(event, named)


def _scrub(event: LoggedEvent, named: dict[str, str]) -> None:
    """Remove the person's data from an event the processor will not apply."""
    known = list(named.values())
    for traits in (_event_traits(event), _context_traits(event)):
        known.extend(str(v) for v in _profile(traits).values())
    previous = _previous_id(event)
    if previous is not None:
        known.append(previous)
    event_log.Scrubber(known).event(event)


def _context_traits(event: LoggedEvent) -> dict[str, Any]:
    traits = (event.context or {}).get("traits")
    return traits if isinstance(traits, dict) else {}


def _erase_anonymous_profile(db: Session, customer: Customer) -> None:
    """An anonymous visitor profile that turned out to be an erased person's: its identities
    go (onto the blocklist), its events are pseudonymised, and it is marked erased."""
    identities = get_identities(db, customer_id=customer.customer_id)
    values = [i.value for i in identities]
    event_log.suppress_identities(
        db,
        digests=[identity_digest(i.kind, i.value) for i in identities if i.kind != "device_id"],
    )
    db.execute(delete(Identity).where(Identity.customer_id == customer.customer_id))
    event_log.pseudonymise_customer_events(
        db, customer_id=customer.customer_id, known_values=values, anonymous_ids=values
    )
    now = clock.now()
    customer.status = "erased"
    customer.erased_at = now
    customer.updated_at = now
    customer.attributes = {}
    customer.field_times = {}
    customer.group_id = None
    db.add(
        PrivacyRequest(
            customer_id=customer.customer_id,
            kind="erasure",
            requested_by="profile processor",
            reason="its visitor id was named with an erased person's identity",
            requested_at=now,
            completed_at=now,
        )
    )
    db.flush()


def _public(event: LoggedEvent) -> bool:
    return event_log.from_public_key(event.source)


def guarded(db: Session, event: LoggedEvent) -> bool:
    """Whether an event from an ingest-only key names a known customer who exists already
    (by their Rapport id, their user id, or, with no user id, their visitor id), whose
    ``GUARDED_FIELDS`` and identities it may then not change. Only an event that could change
    them (an identify, an alias, traits in its context) is looked up."""
    if not _public(event) or event.customer_id is not None:
        return False
    if event.type not in ("identified", "aliased") and not _context_traits(event):
        return False
    named = _named_by_event(db, event)
    return named is not None and named.status == "active" and not named.is_anonymous


def _before_adoption(db: Session, event: LoggedEvent) -> bool:
    """Whether an event from an ingest-only key, received before the shop's sign-up adopted
    the profile it names (``identities.adopted_since``), is kept off it: what the page said
    then (identities, traits, consents) is not the real customer's. It stays in the log, on
    no profile, which the worker's log says."""
    if not _public(event) or event.customer_id is not None:
        return False
    named = _named_by_event(db, event)
    if named is None or not adopted_since(named, event.received_at):
        return False
    log.warning(
        "event %s from an ingest-only key was received before the shop's sign-up adopted the "
        "profile it names: not applied to it",
        event.event_id,
    )
    return True


def _named_by_event(db: Session, event: LoggedEvent) -> Customer | None:
    """The profile an event names: by its Rapport id, else as :func:`_named_profile`."""
    named = None
    if event.user_id and event.user_id.startswith("cus_"):
        named = get_customer(db, customer_id=event.user_id)
    return named or _named_profile(db, event)


def _unguarded(profile: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in profile.items() if name not in GUARDED_FIELDS}


def _log_withheld(event: LoggedEvent, fields: list[str]) -> None:
    """Say in the worker's log which fields an ingest-only key's event did not set: values a
    trusted source gave the profile (``traits.public_may_say``), as its contact details are
    (:data:`GUARDED_FIELDS`). The event is stored and answered as usual."""
    if fields:
        log.warning(
            "event %s from an ingest-only key: its %s not applied, a trusted source set them "
            "(send them with a key that may also write)",
            event.event_id,
            ", ".join(sorted(set(fields))),
        )


def _publicly_said(
    customer: Customer, event: LoggedEvent, said: dict[str, Any], field: Callable[[str], str] = str
) -> dict[str, Any]:
    """``said`` (field name → value) without what an ingest-only key's event may not set
    (``traits.public_may_say``), which is logged; all of it for any other event."""
    if not _public(event):
        return said
    kept = {
        name: value
        for name, value in said.items()
        if public_may_say(customer, field(name), held_value(customer, field(name)))
    }
    _log_withheld(event, [name for name in said if name not in kept])
    return kept


def resolve_event_customer(
    db: Session,
    event: LoggedEvent,
    cache: IdentityCache | None = None,
    *,
    protected: bool = False,
) -> Customer | None:
    """The customer an event belongs to, linking identities as it learns them. An erased
    customer named by their Rapport id is returned as they are (erased): nothing is linked.
    A ``protected`` event (:func:`guarded`) links no identity its traits name and sets none
    of the ``GUARDED_FIELDS``."""
    if event.customer_id is not None:
        return get_customer(db, customer_id=event.customer_id)
    if cache is not None:
        known = _already_known(cache, event)
        if known is not None:
            return known
        # Resolution may link identities and merge profiles: cached answers go stale.
        cache.forget()
    customer: Customer | None = None
    identities: dict[str, str] = {}
    profile: dict[str, Any] = {}
    if event.user_id:
        direct = (
            get_customer(db, customer_id=event.user_id)
            if event.user_id.startswith("cus_")
            else None
        )
        if direct is not None and direct.status != "active":
            return direct
        if direct is not None:
            customer = direct
        elif _usable_user_id(db, event):
            identities["external_id"] = event.user_id
    if event.type == "identified":
        traits = _event_traits(event)
        profile = _profile(traits)
        said = _identity_traits(traits)
        if protected:
            withheld = sorted({*said, *(name for name in profile if name in GUARDED_FIELDS)})
            if withheld:
                log.warning(
                    "identify event %s from an ingest-only key names a known customer: its %s "
                    "not applied (send them with a key that may also write)",
                    event.event_id,
                    ", ".join(withheld),
                )
            profile, said = _unguarded(profile), {}
        named = customer or _named_profile(db, event)
        for kind in _withheld(db, said, named, event, by_traits=not _public(event)):
            del said[kind]
            profile.pop(kind, None)  # nor made the contact detail of the named profile
        identities.update(said)
    if identities:
        kept_out: list[str] = []
        resolved = resolve_identities(
            db,
            identities=identities,
            profile=profile,
            source=f"event:{event.type}",
            at=event.occurred_at,
            public=_public(event),
            withheld=kept_out,
        )
        _log_withheld(event, kept_out)
        if customer is None or customer.customer_id == resolved.customer_id:
            customer = resolved
    if event.anonymous_id:
        owner = _anonymous_owner(db, event.anonymous_id)
        if customer is None:
            customer = owner or resolve_identities(
                db,
                identities={"anonymous_id": event.anonymous_id},
                source="event",
                public=_public(event),
            )
        elif owner is None:
            resolve_identities(
                db,
                identities={"anonymous_id": event.anonymous_id, **_first_unique(db, customer)},
                source=f"event:{event.type}",
                public=_public(event),
            )
            event_log.claim_anonymous_events(
                db, anonymous_id=event.anonymous_id, customer_id=customer.customer_id
            )
        elif (
            owner.customer_id != customer.customer_id
            and owner.is_anonymous
            and owner.status == "active"
        ):
            # The visitor identified themselves: their anonymous history joins their profile.
            merge_profiles(
                db,
                source_id=owner.customer_id,
                target_id=customer.customer_id,
                reason="anonymous visitor identified",
                actor="profile processor",
            )
    return customer


def _usable_user_id(db: Session, event: LoggedEvent) -> bool:
    """Whether the event's user id may be a customer number: one that cannot name a customer
    in a path (a ``/``, or ``.`` or ``..``: ``customer_number_problem``) is never made one
    (the event is its visitor id's, if any), unless a customer already holds it."""
    try:
        refuse_new_customer_number(db, event.user_id, field="userId")
    except InvalidInput as refusal:
        log.warning(
            "event %s: its user id cannot be a customer number (%s); not linked",
            event.event_id,
            refusal.detail,
        )
        return False
    return True


def _named_profile(db: Session, event: LoggedEvent) -> Customer | None:
    """The live profile a tracking call names by itself: its user id's (the shop's customer
    number), else, with no user id, its visitor id's; ``None`` when nobody holds it yet."""
    if event.user_id:
        return find_customer(db, kind="external_id", value=event.user_id)
    if event.anonymous_id:
        return find_customer(db, kind="anonymous_id", value=event.anonymous_id)
    return None


def _withheld(
    db: Session,
    said: dict[str, str],
    named: Customer | None,
    event: LoggedEvent,
    *,
    by_traits: bool = True,
) -> list[str]:
    """The identities an identify call's traits name that another known profile holds.
    Tracking never merges two known people (a shop's write key sits in its pages for anyone
    to read): such an identity is left out, and the call applies to the profile it names.
    A call with no user id from a visitor not known yet is named by its traits: the first
    known profile they name (email, then phone, then card) is the person, and the visitor's
    anonymous profile joins it, as a sign-in does; identities of any other are left out.
    Anonymous visitor profiles hold none of these kinds, so they never count here. Without
    ``by_traits`` (an ingest-only key's call) traits name nobody: a known profile's identity
    is left out, as another's is."""
    withheld: list[str] = []
    anchor = named.customer_id if named is not None and not named.is_anonymous else None
    by_traits = by_traits and anchor is None and not event.user_id
    for kind, value in said.items():
        normal = normalise_identity(kind, value)
        if not normal:
            continue
        holder = db.execute(
            select(Customer.customer_id, Customer.is_anonymous)
            .join(Identity, Identity.customer_id == Customer.customer_id)
            .where(Identity.kind == kind, Identity.value == normal)
            .limit(1)
        ).first()
        if holder is None or holder.is_anonymous:
            continue
        if anchor is None and by_traits:
            anchor = holder.customer_id
        if holder.customer_id == anchor:
            continue
        withheld.append(kind)
        log.warning(
            "identify event %s: its %s belongs to another known customer; not linked, no merge "
            "(merge them with POST /v1/customers/merge if they are one person)",
            event.event_id,
            kind,
        )
    return withheld


def _first_unique(db: Session, customer: Customer) -> dict[str, str]:
    """One identity the customer already holds, so resolution lands on them."""
    held = db.scalar(
        select(Identity)
        .where(Identity.customer_id == customer.customer_id, Identity.is_unique.is_(True))
        .order_by(Identity.id)
        .limit(1)
    )
    if held is not None:
        return {held.kind: held.value}
    return {}


def _apply_consent(db: Session, customer: Customer, event: LoggedEvent) -> None:
    properties = event.properties or {}
    purpose, granted = properties.get("purpose"), properties.get("granted")
    if purpose in CONSENT_PURPOSES and isinstance(granted, bool):
        record_consent(
            db,
            customer_id=customer.customer_id,
            purpose=str(purpose),
            granted=granted,
            source=clipped_consent_source(
                str(properties.get("source") or f"event:{event.channel}")
            ),
            at=event.occurred_at,
        )


def _apply_traits(
    db: Session, customer: Customer, event: LoggedEvent, *, located: bool, protected: bool
) -> None:
    """What a tracking event says about its person: an identify call's traits (profile
    fields were set by resolution) and any call's ``context.traits`` fill custom attributes,
    names, home city, time zone and birthday, and any call's ``context.timezone`` the time
    zone where its traits say none. Identities and contact details come from identify calls
    only: ``context.traits`` are a copy an SDK kept, not a statement to link by. Coordinates
    in traits become attributes only while the profile's standing choice on ``location`` is
    yes (``located``): one stored with a grant withdrawn before it was read adds none. A
    ``protected`` event (:func:`guarded`) changes no name."""
    if event.source == "command":
        return  # commands' events carry their own facts, not traits
    stated: dict[str, Any] = dict(_context_traits(event))
    properties = event.properties or {}
    said = properties.get("traits") if event.type == "identified" else None
    if isinstance(said, dict):
        stated.update(said)
    if not located:
        stated = event_log.without_coordinate_traits(stated)
    # The device's zone (Segment's SDKs send context.timezone on every call), where no trait
    # says one; a zone zoneinfo does not know is passed over (the shop cannot fix a device).
    device_zone = known_time_zone((event.context or {}).get("timezone"))
    if not stated and device_zone is None:
        return
    changed = False
    at = event.occurred_at
    said_fields = profile_fields(stated)
    if protected:
        said_fields = _unguarded(said_fields)
    if device_zone is not None:
        said_fields.setdefault("time_zone", device_zone)
    # Each field keeps the value said last (by occurred_at), whatever order events arrive in.
    fields = _publicly_said(
        customer,
        event,
        {
            name: value
            for name, value in said_fields.items()
            if name in _CONTEXT_PROFILE_FIELDS and value and is_current(customer, name, at)
        },
    )
    for name, value in fields.items():
        if getattr(customer, name) != value:
            setattr(customer, name, value)
            changed = True
    custom = _publicly_said(
        customer,
        event,
        {
            name: value
            for name, value in custom_traits(stated).items()
            if is_current(customer, attribute_field(name), at)
        },
        attribute_field,
    )
    if custom:
        attributes = kept_attributes(customer.attributes or {}, custom)
        if attributes != customer.attributes:
            customer.attributes = attributes  # a new dict: JSON columns track assignment
            changed = True
        custom = {name: value for name, value in custom.items() if name in attributes}
    said = [*fields, *(attribute_field(name) for name in custom)]
    stamp(customer, said, at, public=_public(event))
    if said and not _public(event):
        trusted_write(customer)
    day = birthday(stated)
    if day is not None:
        _share_birthday(db, customer.customer_id, day, source=f"event:{event.type}")
    if changed:
        customer.updated_at = clock.now()


def _share_birthday(db: Session, customer_id: str, day: str, *, source: str) -> None:
    """The birthday tracking sent, as the ``birthday`` preference the loyalty bonus reads,
    only while the profile holds none: tracking never changes one (its own earlier one, or
    the customer's from the preference centre), so a page cannot move it to today."""
    held = db.get(Preference, (customer_id, "birthday"))
    if held is None:
        db.add(
            Preference(
                customer_id=customer_id,
                field="birthday",
                value=day,
                source=source,
                updated_at=clock.now(),
            )
        )


def _apply_alias(db: Session, customer: Customer, event: LoggedEvent, *, protected: bool) -> None:
    """``aliased``: the previous id's profile is merged into the event's (the new id's) when
    it is an anonymous visitor's; a known person's profile is never merged from tracking (it
    is left as it is, logged). A previous id nobody holds becomes an identity of the event's
    profile, as a user id and a visitor id; only as a visitor id when the call is
    ``protected`` (:func:`guarded`: an ingest-only key's, naming a known customer)."""
    previous = _previous_id(event)
    if previous is None:
        return
    owners: set[str] = set()
    for kind, value in alias_identities(event):
        owner = db.scalar(
            select(Identity.customer_id)
            .where(Identity.kind == kind, Identity.value == value)
            .limit(1)
        )
        if owner is not None:
            owners.add(owner)
    if previous.startswith("cus_") and db.get(Customer, previous) is not None:
        owners.add(previous)
    if not owners:
        for kind, value in alias_identities(event):
            if kind == "external_id" and (protected or customer_number_problem(value)):
                continue  # a visitor id may hold '/', a customer number may not
            attach_identity(
                db, customer_id=customer.customer_id, kind=kind, value=value, source="event:aliased"
            )
        return
    for owner_id in sorted(owners):
        other = get_customer(db, customer_id=owner_id)
        if other is None or other.status != "active" or other.customer_id == customer.customer_id:
            continue  # already one profile, or an erased one (its ids are on the blocklist)
        if not other.is_anonymous:
            log.warning(
                "alias event %s names a known customer's id as its previous id: no merge "
                "(merge them with POST /v1/customers/merge if they are one person)",
                event.event_id,
            )
            continue
        merge_profiles(
            db,
            source_id=other.customer_id,
            target_id=customer.customer_id,
            reason="alias",
            actor="profile processor",
        )


def _apply_group(db: Session, customer: Customer, event: LoggedEvent) -> None:
    """``grouped``: the customer now belongs to this account or household, whose traits
    the call updates (a name not held yet is added while the group has fewer than
    ``MAX_CUSTOM_TRAITS``)."""
    if event.source == "command":
        return
    properties = event.properties or {}
    group_id = properties.get("group_id")
    if not isinstance(group_id, str) or not group_id.strip() or len(group_id) > 100:
        return
    group_id = group_id.strip()
    said = properties.get("traits")
    # A group's "name" or "email" is its own: no trait name is a profile field here.
    traits = custom_traits(said, known=frozenset()) if isinstance(said, dict) else {}
    now = clock.now()
    group = db.get(CustomerGroup, group_id)
    if group is None:
        group = CustomerGroup(group_id=group_id, traits={}, created_at=now, updated_at=now)
        db.add(group)
    if customer.group_id != group_id and not _publicly_said(
        customer, event, {"group_id": group_id}
    ):
        return  # an ingest-only key does not move a customer out of a group a trusted source set
    kept = dict(group.traits or {})
    for name, value in traits.items():
        if name in kept and _public(event):
            continue  # nor change a trait a group has: the public key only adds
        if name in kept or len(kept) < MAX_CUSTOM_TRAITS:
            kept[name] = value
    if kept != group.traits:
        group.traits = kept
    group.updated_at = now
    if customer.group_id != group_id:
        customer.group_id = group_id
        customer.updated_at = now
        stamp(customer, ["group_id"], event.occurred_at, public=_public(event))
    db.flush()


def _resolve_unless_erased(
    db: Session,
    event: LoggedEvent,
    named: dict[str, str],
    cache: IdentityCache,
    blocklist: Blocklist,
    protected: bool = False,
) -> Customer | None:
    """``resolve_event_customer``, taking in its stride what other transactions did since the
    batch began. A profile the same identities created at this moment (an identify call)
    breaks a unique key: it is committed by then, and resolution runs again and finds it. A
    person erased meanwhile (an erasure waits for a running batch, but one may commit
    between the blocklist's read and a processor's first cursor) has their identities
    refused: the event is then an erased person's like any other. Each try runs in a
    savepoint, so a refused or clashing try leaves nothing behind."""
    if event.customer_id is not None:
        return get_customer(db, customer_id=event.customer_id)
    known = _already_known(cache, event)
    if known is not None:
        return known  # the usual case: writes nothing, needs no savepoint
    for attempt in (1, 2):
        try:
            with db.begin_nested():
                return resolve_event_customer(db, event, cache, protected=protected)
        except IntegrityError:
            if attempt == 2:
                raise
            cache.forget()
        except InvalidInput as refused:
            if refused.extra.get("code") != "suppressed" or not named:
                raise
            break
    cache.forget()
    blocklist.refresh(named)
    if blocklist.shared_browser(named):
        event.anonymous_id = None  # someone else, on a browser an erased person used
        with db.begin_nested():
            return resolve_event_customer(db, event, cache, protected=protected)
    blocklist.forget(event, named)
    return None


def _refused_browsing(db: Session, customer_id: str, known: dict[str, bool]) -> bool:
    """Whether the customer has refused ``analytics`` (read once per batch, ``known``)."""
    if customer_id not in known:
        granted = db.scalar(
            select(Consent.granted).where(
                Consent.customer_id == customer_id,
                Consent.purpose == event_log.ANALYTICS_PURPOSE,
            )
        )
        known[customer_id] = granted is False
    return known[customer_id]


def process_profile_events(db: Session, events: list[LoggedEvent]) -> None:
    """Resolve and fold a batch of events into profiles (called by the processor runner)."""
    traits_by_customer: dict[str, CustomerTraits] = {}
    location_allowed: dict[str, bool] = {}
    browsing_refused: dict[str, bool] = {}
    assigned: dict[str, list[int]] = {}
    cache = IdentityCache(db)
    blocklist = Blocklist(db, events)
    for event in events:
        named = named_identities(event) if event.customer_id is None else {}
        if named and blocklist.names_erased(named):
            if blocklist.shared_browser(named):
                # Someone else signed in on a browser an erased person used: the event is
                # theirs, without the erased person's visitor id.
                event.anonymous_id = None
            else:
                # Queued before the erasure, or a late event: it must not bring them back.
                blocklist.forget(event, named)
                cache.forget()
                continue
        previous = alias_identities(event)
        if previous and any(blocklist.names_erased({kind: value}) for kind, value in previous):
            # An alias of an erased person's old id: the new id is theirs too, and stays out.
            blocklist.forget(event, named)
            cache.forget()
            continue
        # Whether it may change the customer's contact details: read before resolution, which
        # may create the profile it names (a sign-up).
        protected = guarded(db, event)
        if _before_adoption(db, event):
            continue
        customer = _resolve_unless_erased(db, event, named, cache, blocklist, protected)
        if customer is None:
            continue
        if customer.status != "active":
            # An erased person named by their Rapport id: the event keeps only what the
            # aggregates need, under that random id, and refills nothing.
            if named:
                blocklist.forget(event, named)
            else:
                _scrub(event, named)
            event.customer_id = customer.customer_id
            continue
        cid = customer.customer_id
        if event_log.is_behaviour(event.type, event.source) and _refused_browsing(
            db, cid, browsing_refused
        ):
            # Stored before ingestion knew of the refusal: it joins no profile, and keeps
            # nothing of the person (event_log.is_behaviour).
            _scrub(event, named)
            continue
        if event.customer_id != cid:
            assigned.setdefault(cid, []).append(event.position)
        if event.type == "consent_changed" and event.source != "command":
            _apply_consent(db, customer, event)
            location_allowed.pop(cid, None)
            browsing_refused.pop(cid, None)
        if event.type in NOT_ACTIVITY:
            continue
        if previous:
            _apply_alias(db, customer, event, protected=protected)
            cache.forget()  # identities moved
        if event.type == "grouped":
            _apply_group(db, customer, event)
        if cid not in location_allowed:
            location_allowed[cid] = bool(
                db.scalar(
                    select(Consent.granted).where(
                        Consent.customer_id == cid, Consent.purpose == "location"
                    )
                )
            )
        _apply_traits(db, customer, event, located=location_allowed[cid], protected=protected)
        traits = traits_by_customer.get(cid) or db.get(CustomerTraits, cid)
        if traits is None:
            traits = CustomerTraits(customer_id=cid, updated_at=clock.now())
            db.add(traits)
        traits_by_customer[cid] = traits
        apply_event(traits, event, location_allowed=location_allowed[cid])
        traits.updated_at = clock.now()
    for cid, positions in assigned.items():
        live = get_customer(db, customer_id=cid)
        event_log.assign_customer(
            db, positions=positions, customer_id=live.customer_id if live else cid
        )
