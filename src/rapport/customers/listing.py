"""The admin's customer list: known, live customers a page at a time, filtered by a search
(name, email, phone, card, customer number or id), a consent purpose granted and the day they
joined (the earlier of the profile's creation and the first event seen from them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, false, func, or_, select
from sqlalchemy.orm import Session

from rapport.customers.audiences import CustomerIds, as_customer_ids
from rapport.customers.models import IDENTITY_KINDS, Consent, Customer, CustomerTraits, Identity
from rapport.platform.identity import normalise_identity


@dataclass(frozen=True)
class CustomerFilters:
    """What the list is narrowed to; empty fields do not narrow it."""

    query: str = ""
    purpose: str = ""
    joined_from: date | None = None
    joined_to: date | None = None


@dataclass(frozen=True)
class ListedCustomer:
    customer_id: str
    name: str
    email: str | None
    external_id: str | None
    joined_at: datetime
    last_seen_at: datetime | None
    order_count: int
    spend_minor: int
    currency: str | None
    granted: list[str] = field(default_factory=list)
    # Net spend in each currency, by code (never added across currencies).
    spend_by_currency: dict[str, int] = field(default_factory=dict)


# When a customer joined: their first event when it is older than the profile (history
# loaded from files, tracking before sign-up), else the profile's creation.
joined_at_expression = case(
    (
        CustomerTraits.first_seen_at < Customer.created_at,
        CustomerTraits.first_seen_at,
    ),
    else_=Customer.created_at,
)


def _filtered(columns: list[Any], filters: CustomerFilters) -> Select[Any]:
    query = (
        select(*columns)
        .select_from(Customer)
        .outerjoin(CustomerTraits, CustomerTraits.customer_id == Customer.customer_id)
        .where(Customer.status == "active", Customer.is_anonymous.is_(False))
    )
    text = filters.query.strip()
    if text:
        query = query.where(_matches(text))
    if filters.purpose:
        query = query.where(
            Customer.customer_id.in_(
                select(Consent.customer_id).where(
                    Consent.purpose == filters.purpose, Consent.granted.is_(True)
                )
            )
        )
    if filters.joined_from is not None:
        query = query.where(joined_at_expression >= _start_of(filters.joined_from))
    if filters.joined_to is not None:
        query = query.where(joined_at_expression < _start_of(filters.joined_to + timedelta(days=1)))
    return query


def _matches(text: str) -> ColumnElement[bool]:
    """The search: part of a name or email, or exactly a Rapport id, customer number or
    identity (a phone, a loyalty card, ...)."""
    lowered = text.lower()
    full_name = func.lower(
        func.coalesce(Customer.first_name, "") + " " + func.coalesce(Customer.last_name, "")
    )
    identities = {normalise_identity(kind, text) for kind in IDENTITY_KINDS} - {""}
    return or_(
        full_name.contains(lowered, autoescape=True),
        func.lower(Customer.email).contains(lowered, autoescape=True),
        Customer.customer_id == text,
        Customer.external_id == text,
        Customer.customer_id.in_(
            select(Identity.customer_id).where(Identity.value.in_(sorted(identities)))
        ),
    )


def search_audience(text: str) -> CustomerIds:
    """The ids of the profiles the admin's customer search finds for ``text`` (part of a name
    or email, or exactly a Rapport id, customer number or identity), of any status (a merged
    or anonymous profile's orders are found too), as a SELECT for another domain to nest
    (the orders list's search); ``text`` empty, none."""
    text = text.strip()
    query = select(Customer.customer_id)
    return as_customer_ids(query.where(_matches(text)) if text else query.where(false()))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def count_listed_customers(db: Session, filters: CustomerFilters) -> int:
    """How many customers the filters leave."""
    found = db.scalar(
        select(func.count()).select_from(_filtered([Customer.customer_id], filters).subquery())
    )
    return int(found or 0)


def list_customers(
    db: Session, filters: CustomerFilters, *, offset: int, limit: int
) -> list[ListedCustomer]:
    """A page of the filtered customers, newest joined first, each with their order count,
    spend, last activity and the consent purposes they granted."""
    rows = db.execute(
        _filtered(
            [
                Customer.customer_id,
                Customer.first_name,
                Customer.last_name,
                Customer.email,
                Customer.external_id,
                joined_at_expression.label("joined_at"),
                CustomerTraits.last_seen_at,
                CustomerTraits.order_count,
                CustomerTraits.spend_minor,
                CustomerTraits.currency,
                CustomerTraits.spend_by_currency,
            ],
            filters,
        )
        .order_by(joined_at_expression.desc(), Customer.customer_id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    ids = [row.customer_id for row in rows]
    granted: dict[str, list[str]] = {}
    if ids:
        for customer_id, purpose in db.execute(
            select(Consent.customer_id, Consent.purpose)
            .where(Consent.customer_id.in_(ids), Consent.granted.is_(True))
            .order_by(Consent.purpose)
        ):
            granted.setdefault(customer_id, []).append(purpose)
    return [
        ListedCustomer(
            customer_id=row.customer_id,
            name=" ".join(part for part in (row.first_name, row.last_name) if part)
            or row.customer_id,
            email=row.email,
            external_id=row.external_id,
            joined_at=row.joined_at,
            last_seen_at=row.last_seen_at,
            order_count=row.order_count or 0,
            spend_minor=row.spend_minor or 0,
            currency=row.currency,
            granted=granted.get(row.customer_id, []),
            spend_by_currency={
                currency: int(minor)
                for currency, minor in sorted((row.spend_by_currency or {}).items())
            },
        )
        for row in rows
    ]
