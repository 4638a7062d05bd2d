"""Customer verbs: the only functions other code calls to read or change customers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.customers.models import CONSENT_PURPOSES, Consent, Customer
from rapport.customers.schemas import CustomerIn
from rapport.events.service import append_event
from rapport.platform import clock
from rapport.platform.db import upsert_rows
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.ids import new_id


@dataclass(frozen=True)
class ImportedCustomer:
    """A customer record from a bulk source (demo generator, importers)."""

    external_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    locale: str
    home_city: str | None
    home_latitude: float | None
    home_longitude: float | None
    consents: dict[str, bool]


def create_customer(db: Session, *, customer: CustomerIn, channel: str = "web") -> Customer:
    """Register a customer with their consent choices and log ``customer_created``."""
    if customer.external_id is not None and (
        db.scalar(select(Customer.customer_id).where(Customer.external_id == customer.external_id))
        is not None
    ):
        raise Conflict(
            f"A customer with external_id {customer.external_id!r} already exists",
            field="external_id",
        )
    now = clock.now()
    record = Customer(
        customer_id=new_id("cus"),
        created_at=now,
        updated_at=now,
        **customer.model_dump(exclude={"consents"}),
    )
    db.add(record)
    db.flush()
    for purpose, granted in customer.consents.items():
        db.add(
            Consent(
                customer_id=record.customer_id,
                purpose=purpose,
                granted=granted,
                source="signup",
                updated_at=now,
            )
        )
    append_event(
        db,
        type="customer_created",
        channel=channel,
        customer_id=record.customer_id,
        properties={"consents": dict(customer.consents)},
    )
    db.commit()
    return record


def import_customers(db: Session, *, customers: Sequence[ImportedCustomer]) -> int:
    """Bulk-load customers by ``external_id`` in one transaction; ones already present are
    left as they are, so re-running an import adds nothing."""
    if not customers:
        return 0
    now = clock.now()
    external_ids = [c.external_id for c in customers]
    existing = set(
        db.scalars(select(Customer.external_id).where(Customer.external_id.in_(external_ids)))
    )
    fresh = [c for c in customers if c.external_id not in existing]
    ids = {c.external_id: new_id("cus") for c in fresh}
    upsert_rows(
        db,
        Customer.__table__,
        [
            {
                "customer_id": ids[c.external_id],
                "external_id": c.external_id,
                "email": c.email,
                "phone": None,
                "first_name": c.first_name,
                "last_name": c.last_name,
                "locale": c.locale,
                "home_city": c.home_city,
                "home_latitude": c.home_latitude,
                "home_longitude": c.home_longitude,
                "created_at": now,
                "updated_at": now,
            }
            for c in fresh
        ],
        key_columns=["external_id"],
    )
    upsert_rows(
        db,
        Consent.__table__,
        [
            {
                "customer_id": ids[c.external_id],
                "purpose": purpose,
                "granted": granted,
                "source": "import",
                "updated_at": now,
            }
            for c in fresh
            for purpose, granted in c.consents.items()
        ],
        key_columns=["customer_id", "purpose"],
    )
    db.commit()
    return len(fresh)


def get_customer(db: Session, *, customer_id: str) -> Customer | None:
    return db.get(Customer, customer_id)


def find_customer_by_external_id(db: Session, *, external_id: str) -> Customer | None:
    return db.scalar(select(Customer).where(Customer.external_id == external_id))


def get_consents(db: Session, *, customer_id: str) -> list[Consent]:
    return list(
        db.scalars(
            select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.purpose)
        )
    )


def has_consent(db: Session, *, customer_id: str, purpose: str) -> bool:
    """Whether the customer has granted ``purpose``. No recorded choice means no."""
    granted = db.scalar(
        select(Consent.granted).where(
            Consent.customer_id == customer_id, Consent.purpose == purpose
        )
    )
    return bool(granted)


def set_consent(
    db: Session, *, customer_id: str, purpose: str, granted: bool, source: str, channel: str = "web"
) -> Consent:
    """Record the customer's choice for one purpose and log ``consent_changed``."""
    if purpose not in CONSENT_PURPOSES:
        raise InvalidInput(
            f"Unknown purpose {purpose!r}; use one of {', '.join(CONSENT_PURPOSES)}",
            field="purpose",
        )
    if db.get(Customer, customer_id) is None:
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    now = clock.now()
    consent = db.get(Consent, (customer_id, purpose))
    if consent is None:
        consent = Consent(customer_id=customer_id, purpose=purpose)
        db.add(consent)
    consent.granted = granted
    consent.source = source
    consent.updated_at = now
    append_event(
        db,
        type="consent_changed",
        channel=channel,
        customer_id=customer_id,
        properties={"purpose": purpose, "granted": granted, "source": source},
    )
    db.commit()
    return consent


def count_customers(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Customer)) or 0


def consent_counts(db: Session) -> dict[str, int]:
    """How many customers have granted each purpose."""
    rows = db.execute(
        select(Consent.purpose, func.count())
        .where(Consent.granted.is_(True))
        .group_by(Consent.purpose)
    ).all()
    return {purpose: int(count) for purpose, count in rows}
