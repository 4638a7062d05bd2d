"""Migration c25000000013: customers' stored spend becomes spend per currency, on SQLite and
PostgreSQL. One whose logged orders are in one currency keeps their spend under it; one with
euro and dollar orders and a euro return gets each currency's worked out again from the log,
where the stored spend added them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import JsonDocument, create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("locale", sa.String),
    sa.column("is_anonymous", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
traits = sa.table(
    "customer_traits",
    sa.column("customer_id", sa.String),
    sa.column("channels", JsonDocument),
    sa.column("event_count", sa.Integer),
    sa.column("order_count", sa.Integer),
    sa.column("spend_minor", sa.BigInteger),
    sa.column("currency", sa.String),
    sa.column("category_counts", JsonDocument),
    sa.column("store_counts", JsonDocument),
    sa.column("updated_at", sa.DateTime),
    sa.column("spend_by_currency", JsonDocument),
)
events = sa.table(
    "events",
    sa.column("event_id", sa.String),
    sa.column("type", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("channel", sa.String),
    sa.column("occurred_at", sa.DateTime),
    sa.column("received_at", sa.DateTime),
    sa.column("properties", JsonDocument),
    sa.column("context", JsonDocument),
    sa.column("source", sa.String),
)
# customer id -> (orders, stored spend, latest currency, logged order events)
STORED: dict[str, tuple[int, int, str | None, list[tuple[str, dict[str, Any]]]]] = {
    "cus_mixed": (
        2,
        6500,  # 40.00 EUR + 30.00 USD - 5.00 EUR, added as one
        "USD",
        [
            ("order_placed", {"order_id": "O-1", "total_minor": 4000, "currency": "EUR"}),
            ("order_placed", {"order_id": "O-2", "total_minor": 3000, "currency": "USD"}),
            ("order_returned", {"order_id": "O-1", "refund_minor": 500}),  # said no currency
        ],
    ),
    "cus_euros": (
        1,
        3500,
        "EUR",
        [
            ("order_placed", {"order_id": "O-3", "total_minor": 4000, "currency": "EUR"}),
            ("order_returned", {"order_id": "O-3", "refund_minor": 500}),
        ],
    ),
    "cus_browsing": (0, 0, None, []),
}


def test_stored_spend_becomes_spend_per_currency(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given traits folded before spend was kept per currency
        command.upgrade(alembic_config(url), "c25000000012")
        with engine.begin() as connection:
            n = 0
            for customer_id, (orders, spend, currency, logged) in STORED.items():
                connection.execute(
                    customers.insert().values(
                        customer_id=customer_id,
                        locale="en",
                        is_anonymous=False,
                        status="active",
                        created_at=at,
                        updated_at=at,
                    )
                )
                connection.execute(
                    traits.insert().values(
                        customer_id=customer_id,
                        channels=["web"],
                        event_count=len(logged),
                        order_count=orders,
                        spend_minor=spend,
                        currency=currency,
                        category_counts={},
                        store_counts={},
                        updated_at=at,
                    )
                )
                for kind, properties in logged:
                    n += 1
                    connection.execute(
                        events.insert().values(
                            event_id=f"evt-{n}",
                            type=kind,
                            customer_id=customer_id,
                            channel="web",
                            occurred_at=at,
                            received_at=at,
                            properties=properties,
                            context={},
                            source="api",
                        )
                    )

        # when the database is migrated
        upgrade(url)

        # then each currency's spend is its own, and spend_minor the latest currency's
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(traits.c.customer_id, traits.c.spend_by_currency, traits.c.spend_minor)
            ).all()
        assert {row.customer_id: (row.spend_by_currency, row.spend_minor) for row in rows} == {
            "cus_mixed": ({"EUR": 3500, "USD": 3000}, 3000),
            "cus_euros": ({"EUR": 3500}, 3500),
            "cus_browsing": ({}, 0),
        }
    finally:
        engine.dispose()
        remove()
