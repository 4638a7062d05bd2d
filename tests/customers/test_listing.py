"""The admin's customer list: its filters and order, alike on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rapport.customers import service as customers
from rapport.customers.listing import CustomerFilters, count_listed_customers, list_customers
from rapport.customers.models import Customer, CustomerTraits


def _three_listwells(db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    ids = {}
    for first, created, email_consent in (
        ("Ada", datetime(2025, 3, 10, 9, tzinfo=UTC), True),
        ("Bo", datetime(2025, 8, 1, 23, 59, tzinfo=UTC), False),
        ("Cy", datetime(2026, 1, 5, tzinfo=UTC), True),
    ):
        customer = customers.identify_customer(
            db,
            identities={"email": f"{first.lower()}@list.example"},
            profile={"first_name": first, "last_name": "Listwell"},
        )
        customers.set_consent(
            db,
            customer_id=customer.customer_id,
            purpose="marketing_email",
            granted=email_consent,
            source="test",
        )
        db.get(Customer, customer.customer_id).created_at = created
        ids[first] = customer.customer_id
    # Cy's history was loaded from the shop's files: seen long before the profile was made
    db.merge(
        CustomerTraits(
            customer_id=ids["Cy"],
            first_seen_at=datetime(2024, 12, 1, tzinfo=UTC),
            order_count=2,
            spend_minor=4200,
            currency="EUR",
            updated_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
    )
    db.flush()
    return ids


def _names(db, filters: CustomerFilters) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.name for row in list_customers(db, filters, offset=0, limit=50)]


def test_filters_and_order(db) -> None:  # type: ignore[no-untyped-def]
    ids = _three_listwells(db)
    # a name search finds all three, the latest to join first (Cy joined when first seen)
    everyone = CustomerFilters(query="LISTWELL")
    assert _names(db, everyone) == ["Bo Listwell", "Ada Listwell", "Cy Listwell"]
    assert count_listed_customers(db, everyone) == 3
    rows = list_customers(db, everyone, offset=0, limit=50)
    assert rows[2].joined_at == datetime(2024, 12, 1, tzinfo=UTC)
    assert (rows[2].order_count, rows[2].spend_minor) == (2, 4200)
    assert rows[1].granted == ["marketing_email"]
    assert rows[0].granted == []
    # consent granted leaves out the one who refused
    email_ok = CustomerFilters(query="listwell", purpose="marketing_email")
    assert _names(db, email_ok) == ["Ada Listwell", "Cy Listwell"]
    # joined between two days, both days included
    in_2025 = CustomerFilters(
        query="listwell", joined_from=date(2025, 3, 10), joined_to=date(2025, 8, 1)
    )
    assert _names(db, in_2025) == ["Bo Listwell", "Ada Listwell"]
    assert count_listed_customers(db, in_2025) == 2
    # an exact identity or id finds one; part of an email too; LIKE wildcards are literal
    assert _names(db, CustomerFilters(query="ada@list.example")) == ["Ada Listwell"]
    assert _names(db, CustomerFilters(query=ids["Bo"])) == ["Bo Listwell"]
    assert _names(db, CustomerFilters(query="cy@list")) == ["Cy Listwell"]
    assert _names(db, CustomerFilters(query="%list%")) == []
    # a page of the list
    second = list_customers(db, everyone, offset=1, limit=1)
    assert [row.name for row in second] == ["Ada Listwell"]


def test_erased_and_anonymous_profiles_are_not_listed(db) -> None:  # type: ignore[no-untyped-def]
    ids = _three_listwells(db)
    db.get(Customer, ids["Bo"]).status = "erased"
    customers.identify_customer(db, identities={"anonymous_id": "anon-listwell-1"})
    db.flush()
    assert _names(db, CustomerFilters(query="listwell")) == ["Ada Listwell", "Cy Listwell"]
    assert count_listed_customers(db, CustomerFilters(query="anon-listwell-1")) == 0
