"""Customer verbs: registration, consent per purpose, idempotent bulk import."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.customers.service import ImportedCustomer
from rapport.events.models import Event
from rapport.platform.errors import Conflict, InvalidInput, NotFound


def imported(n: int, *, consents: dict[str, bool] | None = None) -> ImportedCustomer:
    return ImportedCustomer(
        external_id=f"C{n:07d}",
        email=f"person{n}@example.com",
        first_name="Ana",
        last_name="Silva",
        locale="en",
        home_city="London",
        home_latitude=51.5,
        home_longitude=-0.12,
        consents=consents
        if consents is not None
        else {"analytics": True, "marketing_email": False},
    )


def test_create_customer_logs_event_and_consents(db) -> None:
    customer = customers.create_customer(
        db,
        customer=CustomerIn(
            external_id="X-1", email="ana@example.com", consents={"personalization": True}
        ),
    )
    assert customers.has_consent(db, customer_id=customer.customer_id, purpose="personalization")
    assert not customers.has_consent(
        db, customer_id=customer.customer_id, purpose="marketing_email"
    )
    logged = db.scalars(select(Event).where(Event.customer_id == customer.customer_id)).all()
    assert [e.type for e in logged] == ["customer_created"]


def test_duplicate_external_id_is_a_conflict(db) -> None:
    customers.create_customer(db, customer=CustomerIn(external_id="X-1"))
    with pytest.raises(Conflict) as error:
        customers.create_customer(db, customer=CustomerIn(external_id="X-1"))
    assert error.value.field == "external_id"
    assert customers.count_customers(db) == 1


def test_set_consent_changes_choice_and_logs_it(db) -> None:
    customer = customers.create_customer(
        db, customer=CustomerIn(consents={"marketing_email": True})
    )
    customers.set_consent(
        db,
        customer_id=customer.customer_id,
        purpose="marketing_email",
        granted=False,
        source="preference_centre",
    )
    assert not customers.has_consent(
        db, customer_id=customer.customer_id, purpose="marketing_email"
    )
    types = db.scalars(
        select(Event.type).where(Event.customer_id == customer.customer_id).order_by(Event.position)
    ).all()
    assert list(types) == ["customer_created", "consent_changed"]


def test_unknown_purpose_and_customer_are_refused(db) -> None:
    customer = customers.create_customer(db, customer=CustomerIn())
    with pytest.raises(InvalidInput):
        customers.set_consent(
            db, customer_id=customer.customer_id, purpose="telepathy", granted=True, source="x"
        )
    with pytest.raises(NotFound):
        customers.set_consent(
            db, customer_id="cus_missing", purpose="analytics", granted=True, source="x"
        )


def test_import_is_idempotent(db) -> None:
    batch = [imported(n) for n in range(1, 6)]
    assert customers.import_customers(db, customers=batch) == 5
    assert customers.import_customers(db, customers=batch) == 0
    assert customers.count_customers(db) == 5
    assert customers.consent_counts(db) == {"analytics": 5}
    found = customers.find_customer_by_external_id(db, external_id="C0000003")
    assert found is not None
    assert found.email == "person3@example.com"
