"""Who has granted ``location`` or ``analytics``, for ingestion: it stores a tracking event's
coordinates only where the person the event names has granted ``location``, and no browsing
event of a person who refused ``analytics`` (``events.location``, ``events.behaviour``;
registered in ``tasks.py``)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.orm import Session, aliased

from rapport.customers.models import Consent, Customer, Identity
from rapport.events import service as events
from rapport.platform.db import among


def location_choices(
    db: Session, people: Collection[events.TrackedPerson], purposes: Collection[str]
) -> dict[str, dict[events.TrackedPerson, events.LocationChoice]]:
    """By purpose, the standing choice on each of ``purposes`` (``location``, ``analytics``)
    of the person each ``(user id, visitor id)`` names, found as the profile processor will
    find them: the user id's customer (Rapport's id
    ``cus_…``, following merges, else the customer number's holder), else, when nobody holds
    the user id (or there is none), the visitor id's. Left out: people nobody holds yet (a
    new visitor), who made no choice, or whose profile is erased (no choice means no). Two
    queries for the whole batch, each list of ids one parameter (``platform.db.among``)."""
    user_ids = {user for user, _ in people if user}
    visitor_ids = {visitor for _, visitor in people if visitor}
    held: list[ColumnElement[bool]] = []
    if user_ids:
        held.append(and_(Identity.kind == "external_id", among(db, Identity.value, user_ids)))
    if visitor_ids:
        held.append(and_(Identity.kind == "anonymous_id", among(db, Identity.value, visitor_ids)))
    if not held or not purposes:
        return {}
    holders = {
        (kind, value): customer_id
        for kind, value, customer_id in db.execute(
            select(Identity.kind, Identity.value, Identity.customer_id).where(or_(*held))
        )
    }
    direct = {user for user in user_ids if user.startswith("cus_")}
    survivor = aliased(Customer)
    # A merged profile's choice is its survivor's (merges point straight at the survivor).
    merged = Customer.status == "merged"
    live_id = case((merged, survivor.customer_id), else_=Customer.customer_id)
    live_status = case((merged, survivor.status), else_=Customer.status)
    # By purpose and the id named (a merged one's too).
    choices: dict[tuple[str, str], events.LocationChoice] = {}
    known: set[str] = set()
    for customer_id, purpose, granted, at in db.execute(
        select(Customer.customer_id, Consent.purpose, Consent.granted, Consent.updated_at)
        .outerjoin(survivor, survivor.customer_id == Customer.merged_into)
        .outerjoin(
            Consent,
            and_(
                Consent.customer_id == live_id,
                Consent.purpose.in_(sorted(purposes)),
                live_status == "active",  # an erased profile has granted nothing
            ),
        )
        .where(among(db, Customer.customer_id, direct | set(holders.values())))
    ):
        known.add(customer_id)
        if granted is not None:
            choices[(purpose, customer_id)] = events.LocationChoice(bool(granted), at)

    def holder(user: str | None, visitor: str | None) -> str | None:
        if user and user in direct and user in known:
            return user
        if user and ("external_id", user) in holders:
            return holders[("external_id", user)]
        return holders.get(("anonymous_id", visitor)) if visitor else None

    found: dict[str, dict[events.TrackedPerson, events.LocationChoice]] = {}
    for user, visitor in people:
        named = holder(user, visitor)
        for purpose in purposes:
            if named is not None and (purpose, named) in choices:
                found.setdefault(purpose, {})[(user, visitor)] = choices[(purpose, named)]
    return found
