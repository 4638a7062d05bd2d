"""Registering a customer with their identities and consent choices."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.customers.consent import new_home_point, record_consent
from rapport.customers.events import CustomerCreated
from rapport.customers.identities import (
    attach_identity,
    identity_owners,
    normalised_identities,
    refuse_erased,
)
from rapport.customers.models import (
    Customer,
)
from rapport.customers.schemas import CustomerIn
from rapport.customers.traits import SAID_FIELDS, stamp
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
    if identity_owners(db, normalised_identities(identities)):
        raise Conflict(
            "A customer with this external_id, email or phone already exists",
            field="external_id" if customer.external_id else "email",
        )
    now = clock.now()
    fields = customer.model_dump(exclude={"consents"})
    fields["home_latitude"], fields["home_longitude"] = new_home_point(
        customer.consents.get("location"), customer.home_latitude, customer.home_longitude
    )
    record = Customer(
        customer_id=new_id("cus"),
        created_at=now,
        updated_at=now,
        status="active",
        is_anonymous=False,
        attributes={},
        **fields,
    )
    # What sign-up says is as of now: an identify from before it, sent late, does not undo it.
    stamp(record, [name for name in SAID_FIELDS if getattr(record, name, None)], now)
    db.add(record)
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
