"""Migration c25000000019: a merged-away member's debt (account and open records) becomes the
active survivor's, whose account is opened when they had none, on SQLite and PostgreSQL; a
live member's own debt stays theirs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import make_database_url
from tests.platform.migration_rows import insert_profiles

# customer id -> (status, merged into)
PROFILES = {
    "cus_kept": ("active", None),  # no account yet
    "cus_gone": ("merged", "cus_kept"),  # owes 10
    "cus_holder": ("active", None),  # owes 3 of their own
    "cus_gone_too": ("merged", "cus_holder"),  # owes 4
}
DEBTS = {"cus_gone": 10, "cus_holder": 3, "cus_gone_too": 4}

accounts = sa.table(
    "loyalty_accounts",
    sa.column("account_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("balance", sa.BigInteger),
    sa.column("debt", sa.BigInteger),
    sa.column("created_at", sa.DateTime),
    sa.column("updated_at", sa.DateTime),
)
transactions = sa.table(
    "loyalty_transactions",
    sa.column("id", sa.BigInteger),
    sa.column("customer_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("points", sa.BigInteger),
    sa.column("reason", sa.String),
    sa.column("debt_change", sa.BigInteger),
    sa.column("details", sa.JSON),
    sa.column("created_at", sa.DateTime),
)
debts = sa.table(
    "loyalty_debts",
    sa.column("customer_id", sa.String),
    sa.column("transaction_id", sa.BigInteger),
    sa.column("amount", sa.BigInteger),
    sa.column("remaining", sa.BigInteger),
    sa.column("created_at", sa.DateTime),
)


def test_merged_away_debt_moves_to_the_survivor(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        # given merged-away members who owe points from returns
        command.upgrade(alembic_config(url), "c25000000018")
        with engine.begin() as connection:
            insert_profiles(connection, PROFILES, at=at)
            for number, (customer_id, owed) in enumerate(DEBTS.items(), start=1):
                connection.execute(
                    accounts.insert().values(
                        account_id=customer_id,
                        kind="member",
                        customer_id=customer_id,
                        balance=0,
                        debt=owed,
                        created_at=at,
                        updated_at=at,
                    )
                )
                connection.execute(
                    transactions.insert().values(
                        id=number,
                        customer_id=customer_id,
                        kind="reverse",
                        points=0,
                        reason="Return",
                        debt_change=owed,
                        details={},
                        created_at=at,
                    )
                )
                connection.execute(
                    debts.insert().values(
                        customer_id=customer_id,
                        transaction_id=number,
                        amount=owed,
                        remaining=owed,
                        created_at=at,
                    )
                )

        # when the database is migrated
        upgrade(url)

        # then each survivor owes the debt, its records with it, and the old accounts nothing
        with engine.connect() as connection:
            owed = sa.select(accounts.c.account_id, accounts.c.debt)
            owed_by = {
                row.account_id: row.debt
                for row in connection.execute(owed.where(accounts.c.kind == "member"))
            }
            records = connection.execute(
                sa.select(debts.c.customer_id, sa.func.sum(debts.c.remaining)).group_by(
                    debts.c.customer_id
                )
            ).all()
        assert owed_by == {"cus_kept": 10, "cus_gone": 0, "cus_holder": 7, "cus_gone_too": 0}
        assert {row[0]: int(row[1]) for row in records} == {
            "cus_kept": 10,
            "cus_holder": 7,
        }
    finally:
        engine.dispose()
        remove()
