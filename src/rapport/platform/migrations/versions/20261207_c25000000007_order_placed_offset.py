"""order placed offset: each order keeps the UTC offset its ``placed_at`` was sent with (in
minutes; null for orders placed in UTC, loaded from history or placed before this version,
read as UTC), so its promise is judged in the day it was read in: delivered on the promised
day at the sender's clock is kept.

Revision ID: c25000000007
Revises: c25000000006
Create Date: 2026-12-07 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000007"
down_revision: str | None = "c25000000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("placed_offset_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("placed_offset_minutes")
