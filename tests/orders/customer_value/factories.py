"""Purchase histories for customer-value tests: real customers and real order rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.orders.models import Order

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def add_customer_with_orders(
    db: Session,
    *,
    name: str,
    days_ago: Sequence[int],
    total_minor: int = 2500,
    first_name: str | None = None,
    currency: str = "EUR",
    existing: str | None = None,
) -> str:
    """A customer (or the ``existing`` one) and one order in ``currency`` on each of
    ``days_ago`` (days before ``NOW``); returns the id."""
    customer = (
        customers.require_customer(db, existing)
        if existing is not None
        else customers.create_customer(
            db, customer=CustomerIn(external_id=name, first_name=first_name)
        )
    )
    for n, ago in enumerate(days_ago):
        placed = NOW - timedelta(days=ago)
        db.add(
            Order(
                order_id=f"{name}-{n}",
                customer_id=customer.customer_id,
                channel="web",
                fulfilment="ship",
                status="delivered",
                currency=currency,
                subtotal_minor=total_minor,
                total_minor=total_minor,
                placed_at=placed,
                created_at=placed,
                updated_at=placed,
            )
        )
    db.commit()
    return customer.customer_id
