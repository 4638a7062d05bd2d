"""Migration c25000000008: profiles whose standing choice on location is no lose the
coordinates tracking's traits left in their custom attributes (and those attributes' times),
on SQLite and PostgreSQL; profiles that grant it, or made no choice, keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import JsonDocument, create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

BEFORE = "c25000000007"
SAID = "2026-12-01T00:00:00+00:00"
PLACED = {
    "location": {"lat": 48.1, "lon": 2.1, "city": "Orléans"},
    "lat": 48.1,
    "longitude": 2.1,
    "tier": "gold",
}
TIMES = {"attributes.lat": SAID, "attributes.tier": SAID, "first_name": SAID}
# customer id -> standing choice on location (None: no choice), attributes after
PROFILES = {
    "cus_withdrawn": (False, {"location": {"city": "Orléans"}, "tier": "gold"}),
    "cus_granted": (True, PLACED),
    "cus_undecided": (None, PLACED),
}

customers = sa.table(
    "customers",
    sa.column("customer_id", sa.String),
    sa.column("locale", sa.String),
    sa.column("attributes", JsonDocument),
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


def test_withdrawn_profiles_keep_no_coordinate_attributes(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given profiles that kept coordinates from traits, one of which withdrew location
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            for customer_id, (granted, _) in PROFILES.items():
                connection.execute(
                    customers.insert().values(
                        customer_id=customer_id,
                        locale="en",
                        attributes=PLACED,
                        field_times=TIMES,
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
                            source="test",
                            updated_at=at,
                        )
                    )

        # when the database is migrated
        upgrade(url)

        # then only the withdrawn profile lost its coordinates, and their times
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(customers.c.customer_id, customers.c.attributes, customers.c.field_times)
            ).all()
        found = {customer_id: (attributes, times) for customer_id, attributes, times in rows}
        assert {cid: attributes for cid, (attributes, _) in found.items()} == {
            cid: after for cid, (_, after) in PROFILES.items()
        }
        assert found["cus_withdrawn"][1] == {"attributes.tier": SAID, "first_name": SAID}
        assert found["cus_granted"][1] == TIMES
    finally:
        engine.dispose()
        remove()
