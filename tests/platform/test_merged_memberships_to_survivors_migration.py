"""Migration c25000000020: a merged-away member's paid membership and its fees become the active
survivor's; when both hold one, the one paid further ahead is kept and the other ends; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url
from tests.platform.migration_rows import insert_profiles

# customer id -> (status, merged into)
PROFILES = {
    "cus_kept": ("active", None),  # no membership
    "cus_gone": ("merged", "cus_kept"),  # a membership paid to +30 days
    "cus_holder": ("active", None),  # their own, paid to +10 days
    "cus_gone_too": ("merged", "cus_holder"),  # paid to +300 days: kept
}
PAID_DAYS = {"cus_gone": 30, "cus_holder": 10, "cus_gone_too": 300}

plans = sa.table(
    "loyalty_plans",
    sa.column("plan_id", sa.String),
    sa.column("name", sa.String),
    sa.column("fee_minor", sa.Integer),
    sa.column("currency", sa.String),
    sa.column("period", sa.String),
    sa.column("free_shipping", sa.Boolean),
    sa.column("member_prices", sa.Boolean),
    sa.column("early_access_hours", sa.Integer),
    sa.column("points_multiplier", sa.Float),
    sa.column("active", sa.Boolean),
    sa.column("created_at", sa.DateTime),
)
memberships = sa.table(
    "loyalty_memberships",
    sa.column("id", sa.BigInteger),
    sa.column("customer_id", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("status", sa.String),
    sa.column("started_at", sa.DateTime),
    sa.column("current_period_start", sa.DateTime),
    sa.column("current_period_end", sa.DateTime),
    sa.column("auto_renew", sa.Boolean),
)
payments = sa.table(
    "loyalty_membership_payments",
    sa.column("membership_id", sa.BigInteger),
    sa.column("customer_id", sa.String),
    sa.column("plan_id", sa.String),
    sa.column("amount_minor", sa.Integer),
    sa.column("currency", sa.String),
    sa.column("period_start", sa.DateTime),
    sa.column("period_end", sa.DateTime),
    sa.column("paid_at", sa.DateTime),
)


def test_merged_away_memberships_move_to_the_survivor(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given merged-away members whose paid membership stayed on their old profile
        command.upgrade(alembic_config(url), "c25000000019")
        with engine.begin() as connection:
            insert_profiles(connection, PROFILES, at=at)
            connection.execute(
                plans.insert().values(
                    plan_id="plus",
                    name="Plus",
                    fee_minor=499,
                    currency="EUR",
                    period="month",
                    free_shipping=False,
                    member_prices=False,
                    early_access_hours=0,
                    points_multiplier=1.0,
                    active=True,
                    created_at=at,
                )
            )
            for number, (customer_id, days) in enumerate(PAID_DAYS.items(), start=1):
                end = at + timedelta(days=days)
                connection.execute(
                    memberships.insert().values(
                        id=number,
                        customer_id=customer_id,
                        plan_id="plus",
                        status="active",
                        started_at=at,
                        current_period_start=at,
                        current_period_end=end,
                        auto_renew=True,
                    )
                )
                connection.execute(
                    payments.insert().values(
                        membership_id=number,
                        customer_id=customer_id,
                        plan_id="plus",
                        amount_minor=499,
                        currency="EUR",
                        period_start=at,
                        period_end=end,
                        paid_at=at,
                    )
                )

        # when the database is migrated
        upgrade(url)

        # then each survivor holds the membership paid further ahead, the other one ended
        with engine.connect() as connection:
            held = {
                row.id: (row.customer_id, row.status)
                for row in connection.execute(sa.select(memberships))
            }
            paid = sorted(
                (row.membership_id, row.customer_id)
                for row in connection.execute(sa.select(payments))
            )
        assert held == {
            1: ("cus_kept", "active"),
            2: ("cus_holder", "lapsed"),
            3: ("cus_holder", "active"),
        }
        assert paid == [(1, "cus_kept"), (2, "cus_holder"), (3, "cus_holder")]
    finally:
        engine.dispose()
        remove()
