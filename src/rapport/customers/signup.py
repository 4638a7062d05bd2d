"""Registering a customer with their identities and consent choices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers.consent import new_home_point, record_consent
from rapport.customers.events import CustomerCreated
from rapport.customers.identities import (
    ADOPTED,
    attach_identity,
    identity_owners,
    normalised_identities,
    refuse_erased,
)
from rapport.customers.models import (
    Consent,
    ConsentChange,
    Customer,
    CustomerTraits,
    Identity,
)
from rapport.customers.schemas import CustomerIn
from rapport.customers.traits import SAID_FIELDS, only_public, stamp
from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.errors import Conflict
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.ids import new_id


def create_customer(
    db: Session,
    *,
    customer: CustomerIn,
    channel: str = "web",
    before_commit: BeforeCommit | None = None,
) -> Customer:
    """Register a customer with their identities and consent choices; logs ``customer_created``.
    ``before_commit`` runs last in the same transaction (the API stores its answer there)."""
    identities = {
        kind: value
        for kind, value in (
            ("external_id", customer.external_id),
            ("email", customer.email),
            ("phone", customer.phone),
        )
        if value
    }
    refuse_erased(db, normalised_identities(identities), field="{kind}")
    owners = identity_owners(db, normalised_identities(identities))
    adopted = _adoptable(db, owners)
    if owners and adopted is None:
        raise Conflict(
            "A customer with this external_id, email or phone already exists",
            field="external_id" if customer.external_id else "email",
        )
    now = clock.now()
    fields = customer.model_dump(exclude={"consents"})
    fields["home_latitude"], fields["home_longitude"] = new_home_point(
        customer.consents.get("location"), customer.home_latitude, customer.home_longitude
    )
    if adopted is not None:
        record = _adopt(db, adopted, fields, now)
    else:
        record = Customer(
            customer_id=new_id("cus"),
            created_at=now,
            updated_at=now,
            status="active",
            is_anonymous=False,
            attributes={},
            **fields,
        )
        db.add(record)
    # What sign-up says is as of now: an identify from before it, sent late, does not undo it.
    stamp(record, [name for name in SAID_FIELDS if getattr(record, name, None)], now)
    db.flush()
    for kind, value in normalised_identities(identities).items():
        attach_identity(db, customer_id=record.customer_id, kind=kind, value=value, source="signup")
    for purpose, granted in customer.consents.items():
        record_consent(
            db,
            customer_id=record.customer_id,
            purpose=purpose,
            granted=granted,
            source="signup",
            at=now,
        )
    events.append_event(
        db,
        CustomerCreated(consents=dict(customer.consents)),
        channel=channel,
        customer_id=record.customer_id,
    )
    if before_commit is not None:
        before_commit(db, record)
    try:
        db.commit()
    except IntegrityError as error:
        db.rollback()
        raise Conflict(
            "A customer with this external_id, email or phone already exists", field="email"
        ) from error
    return record


def _adoptable(db: Session, owners: list[str]) -> Customer | None:
    """The one profile the sign-up's identities name, when only the public tracking key
    (an ingest-only key's identify: anyone may send one, naming any unused customer number)
    ever wrote it: the shop's sign-up adopts it instead of answering 409."""
    if len(owners) != 1:
        return None
    held = db.get(Customer, owners[0], with_for_update=True, populate_existing=True)
    if held is None or held.status != "active" or not only_public(held):
        return None
    return held


def _adopt(db: Session, record: Customer, fields: dict[str, Any], now: datetime) -> Customer:
    """``record`` (:func:`_adoptable`) as the sign-up says: its fields replace what the public
    key said (contact, names, city, zone, custom traits, group), and every identity the public
    key gave it goes, so none of them finds the customer any more (the sign-up's own are
    attached next). What the page's events made of it (its events, the consents they recorded
    and the traits they derived: location, favourite categories) moves to a new anonymous
    profile, the page visitor's, so the real customer starts clean; the sign-up's
    ``customer_created`` (and its consents) come next. ``identities.ADOPTED`` in ``field_times``
    says when: a public-key event received before it is not applied to the profile."""
    db.execute(delete(Identity).where(Identity.customer_id == record.customer_id))
    visitor = Customer(
        customer_id=new_id("cus"),
        created_at=record.created_at,
        updated_at=now,
        status="active",
        is_anonymous=True,
        attributes={},
    )
    db.add(visitor)
    db.flush()
    for table in (Consent, ConsentChange, CustomerTraits):
        db.execute(
            update(table)
            .where(table.customer_id == record.customer_id)
            .values(customer_id=visitor.customer_id)
            .execution_options(synchronize_session=False)
        )
    events.reassign_customer_events(
        db, from_customer_id=record.customer_id, to_customer_id=visitor.customer_id
    )
    for name, value in fields.items():
        setattr(record, name, value)
    record.is_anonymous = False
    record.attributes = {}
    record.group_id = None
    record.field_times = {ADOPTED: now.isoformat()}
    record.updated_at = now
    return record
