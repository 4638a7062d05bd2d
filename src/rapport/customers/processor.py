"""The profile processor: resolves who each event belongs to and folds it into their traits.

It runs on the worker, in log order, one batch per transaction with its cursor (see
``rapport.events.processors``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service
from rapport.customers.models import CONSENT_PURPOSES, Consent, Customer, CustomerTraits, Identity
from rapport.customers.traits import apply_event
from rapport.events import log as event_log
from rapport.events.models import Event
from rapport.platform import clock

IDENTIFYING_TRAITS = ("email", "phone", "loyalty_card")
# Bookkeeping, not activity: these must not move "last seen" or count as events.
NOT_ACTIVITY = frozenset({"customers_merged", "customer_erased"})
_PROFILE_KEYS = {
    "first_name": ("first_name", "firstName"),
    "last_name": ("last_name", "lastName"),
    "email": ("email",),
    "phone": ("phone",),
}


def _event_traits(event: Event) -> dict[str, Any]:
    properties = event.properties or {}
    nested = properties.get("traits")
    return nested if isinstance(nested, dict) else properties


def _profile(traits: dict[str, Any]) -> dict[str, Any]:
    profile = {}
    for name, keys in _PROFILE_KEYS.items():
        for key in keys:
            if isinstance(traits.get(key), str) and traits[key].strip():
                profile[name] = traits[key].strip()
                break
    return profile


def _anonymous_owner(db: Session, anonymous_id: str) -> Customer | None:
    owner = db.scalar(
        select(Identity.customer_id).where(
            Identity.kind == "anonymous_id", Identity.value == anonymous_id
        )
    )
    return service.get_customer(db, customer_id=owner) if owner else None


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
        return service.get_customer(self.db, customer_id=customer_id) if customer_id else None

    def forget(self) -> None:
        self.owners.clear()


def _already_known(cache: IdentityCache, event: Event) -> Customer | None:
    """The fast path: an ordinary event from a person whose identities are all linked."""
    if event.type == "identified" or event.customer_id is not None:
        return None
    by_user = None
    if event.user_id:
        if event.user_id.startswith("cus_"):
            by_user = service.get_customer(cache.db, customer_id=event.user_id)
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


def resolve_event_customer(
    db: Session, event: Event, cache: IdentityCache | None = None
) -> Customer | None:
    """The live customer an event belongs to, linking identities as it learns them."""
    if event.customer_id is not None:
        return service.get_customer(db, customer_id=event.customer_id)
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
            service.get_customer(db, customer_id=event.user_id)
            if event.user_id.startswith("cus_")
            else None
        )
        if direct is not None:
            customer = direct
        else:
            identities["external_id"] = event.user_id
    if event.type == "identified":
        traits = _event_traits(event)
        profile = _profile(traits)
        for kind in IDENTIFYING_TRAITS:
            value = traits.get(kind)
            if isinstance(value, str) and value.strip():
                identities[kind] = value
    if identities:
        resolved = service.resolve_identities(
            db, identities=identities, profile=profile, source=f"event:{event.type}"
        )
        if customer is None or customer.customer_id == resolved.customer_id:
            customer = resolved
    if event.anonymous_id:
        owner = _anonymous_owner(db, event.anonymous_id)
        if customer is None:
            customer = owner or service.resolve_identities(
                db, identities={"anonymous_id": event.anonymous_id}, source="event"
            )
        elif owner is None:
            service.resolve_identities(
                db,
                identities={"anonymous_id": event.anonymous_id, **_first_unique(db, customer)},
                source=f"event:{event.type}",
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
            service._merge(
                db,
                source_id=owner.customer_id,
                target_id=customer.customer_id,
                reason="anonymous visitor identified",
                actor="profile processor",
            )
    return customer


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


def _apply_consent(db: Session, customer: Customer, event: Event) -> None:
    properties = event.properties or {}
    purpose, granted = properties.get("purpose"), properties.get("granted")
    if purpose in CONSENT_PURPOSES and isinstance(granted, bool):
        service._record_consent(
            db,
            customer_id=customer.customer_id,
            purpose=str(purpose),
            granted=granted,
            source=str(properties.get("source") or f"event:{event.channel}"),
            at=event.occurred_at,
        )


def process_profile_events(db: Session, events: list[Event]) -> None:
    """Resolve and fold a batch of events into profiles (called by the processor runner)."""
    traits_by_customer: dict[str, CustomerTraits] = {}
    location_allowed: dict[str, bool] = {}
    assigned: dict[str, list[int]] = {}
    cache = IdentityCache(db)
    for event in events:
        customer = resolve_event_customer(db, event, cache)
        if customer is None or customer.status != "active":
            continue
        cid = customer.customer_id
        if event.customer_id != cid:
            assigned.setdefault(cid, []).append(event.position)
        if event.type == "consent_changed" and event.source != "command":
            _apply_consent(db, customer, event)
            location_allowed.pop(cid, None)
        if event.type in NOT_ACTIVITY:
            continue
        traits = traits_by_customer.get(cid) or db.get(CustomerTraits, cid)
        if traits is None:
            traits = CustomerTraits(customer_id=cid, updated_at=clock.now())
            db.add(traits)
        traits_by_customer[cid] = traits
        if cid not in location_allowed:
            location_allowed[cid] = bool(
                db.scalar(
                    select(Consent.granted).where(
                        Consent.customer_id == cid, Consent.purpose == "location"
                    )
                )
            )
        apply_event(traits, event, location_allowed=location_allowed[cid])
        traits.updated_at = clock.now()
    for cid, positions in assigned.items():
        live = service.get_customer(db, customer_id=cid)
        event_log.assign_customer(
            db, positions=positions, customer_id=live.customer_id if live else cid
        )
