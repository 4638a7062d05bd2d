"""Migration c25000000016: the free-text reason of a merge either of whose profiles is an
erased person's (erased, or merged into an erased profile) becomes ``erased``, on SQLite and
PostgreSQL; other merges keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url
from tests.platform.migration_rows import insert_profiles

NOTE = "Jane Doe phoned from +44 7700 900999 (jane@example.com)"
# customer id -> (status, merged into)
PROFILES = {
    "cus_erased": ("erased", None),
    "cus_dup": ("merged", "cus_erased"),  # merged into the erased one
    "cus_older": ("merged", "cus_erased"),  # merged into cus_dup, then moved along
    "cus_live": ("active", None),
    "cus_live_dup": ("merged", "cus_live"),
}
# (source, target)
MERGES = [
    ("cus_dup", "cus_erased"),
    ("cus_older", "cus_dup"),
    ("cus_live_dup", "cus_live"),
]

merges = sa.table(
    "customer_merges",
    sa.column("source_customer_id", sa.String),
    sa.column("target_customer_id", sa.String),
    sa.column("reason", sa.String),
    sa.column("actor", sa.String),
    sa.column("moved", sa.JSON),
    sa.column("merged_at", sa.DateTime),
)


def test_merges_of_erased_people_lose_their_reason(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given merges noted in free text, some of an erased person's profiles
        command.upgrade(alembic_config(url), "c25000000015")
        with engine.begin() as connection:
            insert_profiles(connection, PROFILES, at=at)
            for source, target in MERGES:
                connection.execute(
                    merges.insert().values(
                        source_customer_id=source,
                        target_customer_id=target,
                        reason=NOTE,
                        actor="agent@example.com",
                        moved={},
                        merged_at=at,
                    )
                )

        # when the database is migrated
        upgrade(url)

        # then only the erased person's merges lost their reason
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(merges.c.source_customer_id, merges.c.reason, merges.c.actor)
            ).all()
        assert {row.source_customer_id: row.reason for row in rows} == {
            "cus_dup": "erased",
            "cus_older": "erased",
            "cus_live_dup": NOTE,
        }
        assert {row.actor for row in rows} == {"agent@example.com"}
    finally:
        engine.dispose()
        remove()
