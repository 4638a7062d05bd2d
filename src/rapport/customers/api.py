"""Customer endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from rapport.customers import service
from rapport.customers.schemas import ConsentIn, ConsentOut, CustomerIn, CustomerOut, Purpose
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def _customer_out(db: DbSession, customer_id: str) -> CustomerOut:
    customer = service.get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    out = CustomerOut.model_validate(customer)
    out.consents = [
        ConsentOut.model_validate(c) for c in service.get_consents(db, customer_id=customer_id)
    ]
    return out


@router.post("", status_code=status.HTTP_201_CREATED)
def create_customer(body: CustomerIn, db: DbSession, _key: WriteKey) -> CustomerOut:
    """Register a customer with their consent choices."""
    customer = service.create_customer(db, customer=body)
    return _customer_out(db, customer.customer_id)


@router.get("/{customer_id}")
def get_customer(customer_id: str, db: DbSession, _key: ReadKey) -> CustomerOut:
    """A customer's profile and consents."""
    return _customer_out(db, customer_id)


@router.put("/{customer_id}/consents/{purpose}")
def set_consent(
    customer_id: str,
    purpose: Annotated[Purpose, Path()],
    body: ConsentIn,
    db: DbSession,
    _key: WriteKey,
) -> ConsentOut:
    """Record the customer's choice for one purpose."""
    consent = service.set_consent(
        db, customer_id=customer_id, purpose=purpose, granted=body.granted, source=body.source
    )
    return ConsentOut.model_validate(consent)
