"""ids never reused on SQLite: recommendation rules, segments and webhook subscriptions are
deleted by users, and SQLite hands the highest deleted rowid to the next row unless the table
is AUTOINCREMENT, so a new rule inherited a deleted one's audit trail and a campaign could end
up aimed at another segment (PostgreSQL's sequences never go back)

Revision ID: c19000000001
Revises: c18000000001
Create Date: 2026-12-07 04:50:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c19000000001"
down_revision: str | None = "c18000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("recommend_rules", "campaign_segments", "campaign_webhook_subscriptions")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Reflected and copied whole (columns, keys, indexes, checks); only the table option
        # changes. AUTOINCREMENT starts above the highest id the table holds now.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
