"""Rows the data-migration tests write at an older revision, through plain tables (the models
describe today's schema, not the revision's)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

CUSTOMERS = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("locale", sa.String),
    sa.column("attributes", sa.JSON),
    sa.column("is_anonymous", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("merged_into", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)


def insert_profiles(
    connection: sa.Connection, profiles: dict[str, tuple[str, str | None]], *, at: datetime
) -> None:
    """One customer row per ``profiles`` entry: customer id -> (status, merged into)."""
    for customer_id, (status, into) in profiles.items():
        connection.execute(
            CUSTOMERS.insert().values(
                customer_id=customer_id,
                locale="en",
                attributes={},
                is_anonymous=False,
                status=status,
                merged_into=into,
                created_at=at,
                updated_at=at,
            )
        )
