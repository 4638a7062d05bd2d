"""Migrations c25000000008 and c25000000009: profiles whose standing choice on location is no
lose the coordinates tracking's traits left in their custom attributes (and those attributes'
times), on SQLite and PostgreSQL; profiles that grant it, or made no choice, keep theirs. A
database already past c25000000008 loses those kept under other names or deeper (``lng``,
``Latitude``, ``address.lat``) at c25000000009."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from rapport.platform.db import JsonDocument, create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url

SAID = "2026-12-01T00:00:00+00:00"
PLACED = {
    "location": {"lat": 48.1, "lon": 2.1, "city": "Orléans"},
    "lat": 48.1,
    "longitude": 2.1,
    "tier": "gold",
}
SCATTERED = {
    "lng": 2.1,
    "Latitude": 48.1,
    "geo": {"latitude": 48.1, "longitude": 2.1},
    "address": {"Lat": 48.1, "Lng": 2.1, "city": "Orléans"},
    "tier": "gold",
}
# the times the profiles' fields were said, but for their coordinate attribute's
TIMES = {"attributes.tier": SAID, "first_name": SAID}
# customer id -> standing choice on location (None: no choice)
CHOICES = {"cus_withdrawn": False, "cus_granted": True, "cus_undecided": None}
# the revision the profiles were stored at, their attributes, the withdrawn one's after, and
# the coordinate whose time is kept with them
CASES = [
    ("c25000000007", PLACED, {"location": {"city": "Orléans"}, "tier": "gold"}, "lat"),
    ("c25000000008", SCATTERED, {"address": {"city": "Orléans"}, "tier": "gold"}, "lng"),
]

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


@pytest.mark.parametrize(("before", "placed", "withdrawn", "coordinate"), CASES)
def test_withdrawn_profiles_keep_no_coordinate_attributes(
    backend: str,
    tmp_path: Path,
    before: str,
    placed: dict[str, object],
    withdrawn: object,
    coordinate: str,
) -> None:
    times = {f"attributes.{coordinate}": SAID, **TIMES}
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given profiles that kept coordinates from traits, one of which withdrew location
        command.upgrade(alembic_config(url), before)
        with engine.begin() as connection:
            for customer_id, granted in CHOICES.items():
                connection.execute(
                    customers.insert().values(
                        customer_id=customer_id,
                        locale="en",
                        attributes=placed,
                        field_times=times,
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
            "cus_withdrawn": withdrawn,
            "cus_granted": placed,
            "cus_undecided": placed,
        }
        assert found["cus_withdrawn"][1] == {"attributes.tier": SAID, "first_name": SAID}
        assert found["cus_granted"][1] == times
    finally:
        engine.dispose()
        remove()
