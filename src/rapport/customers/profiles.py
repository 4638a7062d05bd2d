"""Reading customer profiles: by id (following merges), by the retailer's customer number,
by search; counts, the newest, and which profiles are erased."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.customers.models import (
    IDENTITY_KINDS,
    Customer,
    Identity,
)
from rapport.customers.references import was_erased
from rapport.platform.errors import NotFound
from rapport.platform.identity import normalise_identity

PROFILE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "home_city",
    "time_zone",
)


def get_customer(db: Session, *, customer_id: str) -> Customer | None:
    """The customer, following merges to the surviving profile."""
    customer = db.get(Customer, customer_id)
    if customer is not None and customer.status == "merged" and customer.merged_into:
        return db.get(Customer, customer.merged_into)
    return customer


def merged_ids(db: Session, *, customer_id: str) -> list[str]:
    """The profiles merged into ``customer_id`` (merges keep every one pointing at the last
    survivor, so one level holds them all): what was recorded under their ids is now this
    customer's."""
    return sorted(
        db.scalars(select(Customer.customer_id).where(Customer.merged_into == customer_id))
    )


def require_customer(db: Session, customer_id: str, *, field: str = "customer_id") -> Customer:
    customer = get_customer(db, customer_id=customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id!r}", field=field)
    if customer.status == "erased":
        raise was_erased(customer_id, field=field)
    return customer


def customer_ids_by_external_id(db: Session, *, external_ids: Iterable[str]) -> dict[str, str]:
    """Live customer ids for many retailer customer numbers at once (bulk imports)."""
    wanted = list(set(external_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.execute(
            select(Identity.value, Identity.customer_id).where(
                Identity.kind == "external_id", Identity.value.in_(chunk)
            )
        ).all()
        found.update((value, customer_id) for value, customer_id in rows)
        missing = [value for value in chunk if value not in found]
        if missing:
            by_column = db.execute(
                select(Customer.external_id, Customer.customer_id).where(
                    Customer.external_id.in_(missing)
                )
            ).all()
            found.update((str(value), customer_id) for value, customer_id in by_column)
    return found


def find_customer_by_external_id(db: Session, *, external_id: str) -> Customer | None:
    return db.scalar(select(Customer).where(Customer.external_id == external_id))


def count_customers(db: Session) -> int:
    """Known, live customers (not anonymous visitors, merged or erased profiles)."""
    return (
        db.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.status == "active", Customer.is_anonymous.is_(False))
        )
        or 0
    )


def search_customers(db: Session, *, query: str, limit: int = 20) -> list[Customer]:
    """Customers whose id, identity or name matches ``query`` (exact identity, name prefix)."""
    query = query.strip()
    if not query:
        return []
    found: list[Customer] = []
    direct = get_customer(db, customer_id=query)
    if direct is not None and direct.status == "active":
        found.append(direct)
    ids = set(
        db.scalars(
            select(Identity.customer_id).where(
                Identity.value.in_(
                    {normalise_identity(kind, query) for kind in IDENTITY_KINDS} - {""}
                )
            )
        )
    )
    lowered = query.lower()
    named = db.scalars(
        select(Customer)
        .where(
            Customer.status == "active",
            (func.lower(Customer.last_name).startswith(lowered))
            | (func.lower(Customer.first_name).startswith(lowered)),
        )
        .limit(limit)
    )
    for customer in [*(db.get(Customer, i) for i in ids), *named]:
        if customer is not None and customer.status == "active" and customer not in found:
            found.append(customer)
    return found[:limit]


def recent_customers(db: Session, *, limit: int = 20) -> list[Customer]:
    """The newest known customers, for the admin list."""
    return list(
        db.scalars(
            select(Customer)
            .where(Customer.status == "active", Customer.is_anonymous.is_(False))
            .order_by(Customer.created_at.desc(), Customer.customer_id.desc())
            .limit(limit)
        )
    )


def erased_among(db: Session, customer_ids: set[str]) -> set[str]:
    """Those of ``customer_ids`` whose profile, or the profile it was merged into, is erased
    (one query, two when some were merged)."""
    if not customer_ids:
        return set()
    rows = db.execute(
        select(Customer.customer_id, Customer.status, Customer.merged_into).where(
            Customer.customer_id.in_(sorted(customer_ids))
        )
    ).all()
    erased = {row.customer_id for row in rows if row.status == "erased"}
    merged = {row.customer_id: row.merged_into for row in rows if row.merged_into}
    if merged:
        gone = set(
            db.scalars(
                select(Customer.customer_id).where(
                    Customer.customer_id.in_(sorted(set(merged.values()))),
                    Customer.status == "erased",
                )
            )
        )
        erased |= {cid for cid, target in merged.items() if target in gone}
    return erased


def lock_profiles(db: Session, customer_ids: Iterable[str]) -> None:
    """Lock these profiles' rows, by id, for the rest of the caller's transaction (PostgreSQL;
    identity resolution locks a profile before it links identities to it)."""
    db.execute(
        select(Customer.customer_id)
        .where(Customer.customer_id.in_(sorted(set(customer_ids))))
        .order_by(Customer.customer_id)
        .with_for_update()
    ).all()
