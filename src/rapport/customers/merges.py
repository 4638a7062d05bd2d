"""Merging two profiles of one person: identities, consents (with their history),
preferences, traits and events move to the surviving profile, which keeps an audit record.

Domains above customers keep rows of their own under a customer's id (orders, returns): each
registers a *merge step* (:func:`merge_step`, from its ``tasks.py``) that moves its rows in the
merge's own transaction, so a merge, by any road (the API, the admin page, a shared identity,
a tracked ``alias``), moves everything or nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.customers.consent import forget_location
from rapport.customers.events import CustomersMerged
from rapport.customers.models import (
    Consent,
    ConsentChange,
    Customer,
    CustomerMerge,
    CustomerTraits,
    Identity,
    Preference,
)
from rapport.customers.profiles import PROFILE_FIELDS, require_customer
from rapport.customers.traits import merge_traits
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit


class MergeStep(Protocol):
    """A domain's part of a merge: move its rows from ``source_id`` to ``target_id`` in the
    caller's transaction (never commit), and say how many of each moved (the merge record's
    ``moved``)."""

    def __call__(self, db: Session, *, source_id: str, target_id: str) -> Mapping[str, int]: ...


_merge_steps: dict[str, MergeStep] = {}


def merge_step(domain: str) -> Callable[[MergeStep], MergeStep]:
    """Register ``domain``'s merge step: every merge calls it, after the customers domain's own
    part and before the ``customers_merged`` event, in the same transaction; an error in it
    undoes the whole merge."""

    def register(step: MergeStep) -> MergeStep:
        _merge_steps[domain] = step
        return step

    return register


def merge_profiles(
    db: Session, *, source_id: str, target_id: str, reason: str, actor: str
) -> CustomerMerge:
    # Both profiles FOR UPDATE (in id order, so that two merges never wait on each other),
    # read anew: a money command holding one (``resolve_customer_ref(lock=True)``) commits
    # first and its points move below; one that comes after waits, then finds the source
    # merged and runs on the survivor, whose points the merge step has already moved.
    locked = {
        customer.customer_id: customer
        for customer in db.scalars(
            select(Customer)
            .where(Customer.customer_id.in_(sorted({source_id, target_id})))
            .order_by(Customer.customer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    source, target = locked.get(source_id), locked.get(target_id)
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
    moved["events"] = events.reassign_customer_events(
        db, from_customer_id=source_id, to_customer_id=target_id
    )
    # The other domains' rows (orders, returns ...), in this transaction.
    for step in _merge_steps.values():
        moved.update(step(db, source_id=source_id, target_id=target_id))
    # Profile fields the target lacks come across, with when they were said.
    came = {f"attributes.{name}" for name in source.attributes or {}} - {
        f"attributes.{name}" for name in target.attributes or {}
    }
    for name in ("external_id", *PROFILE_FIELDS, "home_latitude", "home_longitude"):
        if getattr(target, name) in (None, "") and getattr(source, name) not in (None, ""):
            value = getattr(source, name)
            if name == "external_id":
                source.external_id = None
                db.flush()
            setattr(target, name, value)
            came.add(name)
    target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
    carried = {k: v for k, v in (source.field_times or {}).items() if k in came}
    if carried:
        target.field_times = {**(target.field_times or {}), **carried}
    standing = db.get(Consent, (target_id, "location"))
    if standing is None or not standing.granted:
        # The survivor's standing choice is no: no last known location and no coordinates
        # in the surviving attributes, whichever profile brought them.
        forget_location(db, customer_id=target_id)
    # The account or household the source belonged to, when the target has none.
    target.group_id = target.group_id or source.group_id
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
    events.append_event(
        db,
        CustomersMerged(merged_customer_id=source_id, reason=reason),
        channel="web",
        customer_id=target_id,
    )
    db.flush()
    return merge


def merge_customers(
    db: Session,
    *,
    source_customer_id: str,
    target_customer_id: str,
    reason: str,
    actor: str,
    before_commit: BeforeCommit | None = None,
) -> CustomerMerge:
    """Merge one profile into another: identities, consents, preferences, traits and history
    move to the target, and every registered domain's rows (:func:`merge_step`); the source
    remains as a pointer with an audit record.
    ``before_commit`` runs last in the same transaction, with the merge record.
    A profile merged before is refused (409 ``already_merged``), saying where it went."""
    source = require_customer(db, source_customer_id, field="source_customer_id")
    target = require_customer(db, target_customer_id, field="target_customer_id")
    for given, field, survivor in (
        (source_customer_id, "source_customer_id", source),
        (target_customer_id, "target_customer_id", target),
    ):
        if survivor.customer_id == given:
            continue
        if field == "source_customer_id" and survivor.customer_id == target.customer_id:
            said = f"{given} was already merged into {target.customer_id}; nothing to merge"
        elif field == "source_customer_id":
            said = f"{given} was already merged into {survivor.customer_id}; merge that one"
        else:
            said = f"{given} was merged into {survivor.customer_id}; merge into that one"
        raise Conflict(said, field=field, code="already_merged", merged_into=survivor.customer_id)
    merge = merge_profiles(
        db, source_id=source.customer_id, target_id=target.customer_id, reason=reason, actor=actor
    )
    if before_commit is not None:
        before_commit(db, merge)
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
