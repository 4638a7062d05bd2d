"""Migration c25000000017: a profile an import stored with the home point of a row refusing
location loses it, on SQLite and PostgreSQL; the city stays, and profiles that grant location,
or made no choice, keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url
from tests.platform.test_withdrawn_home_points_migration import customers, seed_madrid_homes


def test_imported_refusing_profiles_keep_no_home_point(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 7, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given profiles imported (after c25000000010) with a point, one refusing location
        command.upgrade(alembic_config(url), "c25000000016")
        with engine.begin() as connection:
            seed_madrid_homes(connection, at=at, field_times={}, source="import:crm.csv")

        # when the database is migrated
        upgrade(url)

        # then only the refusing profile lost its point; the city stays
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    customers.c.customer_id,
                    customers.c.home_city,
                    customers.c.home_latitude,
                    customers.c.home_longitude,
                )
            ).all()
        assert {row.customer_id: (row.home_latitude, row.home_longitude) for row in rows} == {
            "cus_withdrawn": (None, None),
            "cus_granted": (40.4, -3.7),
            "cus_undecided": (40.4, -3.7),
        }
        assert {row.home_city for row in rows} == {"Madrid"}
    finally:
        engine.dispose()
        remove()
