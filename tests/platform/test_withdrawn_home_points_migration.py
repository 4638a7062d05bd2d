"""Migration c25000000010: profiles whose standing choice on location is no lose their home
point (and its times), on SQLite and PostgreSQL; the home city stays, and profiles that grant
it, or made no choice, keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import JsonDocument, create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

SAID = "2026-12-01T00:00:00+00:00"
TIMES = {"home_latitude": SAID, "home_longitude": SAID, "first_name": SAID}
# customer id -> standing choice on location (None: no choice)
CHOICES = {"cus_withdrawn": False, "cus_granted": True, "cus_undecided": None}

customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("locale", sa.String),
    sa.column("home_city", sa.String),
    sa.column("home_latitude", sa.Float),
    sa.column("home_longitude", sa.Float),
    sa.column("field_times", JsonDocument),
    sa.column("is_anonymous", sa.Boolean),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
consents = sa.table(
    "consents",
    sa.column("customer_id", sa.String),
    sa.column("purpose", sa.String),
    sa.column("granted", sa.Boolean),
    sa.column("source", sa.String),
    sa.column("updated_at", sa.DateTime),
)


def seed_madrid_homes(
    connection: sa.Connection, *, at: datetime, field_times: dict[str, str], source: str
) -> None:
    """A profile living in Madrid (its city and point) for each of :data:`CHOICES`, with its
    location choice on record (none for ``None``)."""
    for customer_id, granted in CHOICES.items():
        connection.execute(
            customers.insert().values(
                customer_id=customer_id,
                locale="en",
                home_city="Madrid",
                home_latitude=40.4,
                home_longitude=-3.7,
                field_times=field_times,
                is_anonymous=False,
                status="active",
                created_at=at,
                updated_at=at,
            )
        )
        if granted is not None:
            connection.execute(
                consents.insert().values(
                    customer_id=customer_id,
                    purpose="location",
                    granted=granted,
                    source=source,
                    updated_at=at,
                )
            )


def test_withdrawn_profiles_keep_no_home_point(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given profiles with a home point, one of which withdrew location
        command.upgrade(alembic_config(url), "c25000000009")
        with engine.begin() as connection:
            seed_madrid_homes(connection, at=at, field_times=TIMES, source="test")

        # when the database is migrated
        upgrade(url)

        # then only the withdrawn profile lost its point, and its times; the city stays
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    customers.c.customer_id,
                    customers.c.home_city,
                    customers.c.home_latitude,
                    customers.c.home_longitude,
                    customers.c.field_times,
                )
            ).all()
        found = {row.customer_id: row for row in rows}
        assert {cid: (r.home_latitude, r.home_longitude) for cid, r in found.items()} == {
            "cus_withdrawn": (None, None),
            "cus_granted": (40.4, -3.7),
            "cus_undecided": (40.4, -3.7),
        }
        assert {r.home_city for r in rows} == {"Madrid"}
        assert found["cus_withdrawn"].field_times == {"first_name": SAID}
        assert found["cus_granted"].field_times == TIMES
    finally:
        engine.dispose()
        remove()
