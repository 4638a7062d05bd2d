"""goodwill window: the program caps the goodwill points one customer is given over a rolling
window (``loyalty_program.goodwill_window_points`` in ``goodwill_window_days``; 20,000 in 30
days until an operator changes them), besides the cap on each grant. Before this version an
agent could give the per-grant cap again and again.

Revision ID: c25000000012
Revises: c25000000011
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000012"
down_revision: str | None = "c25000000011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("loyalty_program") as batch:
        batch.add_column(
            sa.Column(
                "goodwill_window_points", sa.Integer(), nullable=False, server_default="20000"
            )
        )
        batch.add_column(
            sa.Column("goodwill_window_days", sa.Integer(), nullable=False, server_default="30")
        )


def downgrade() -> None:
    with op.batch_alter_table("loyalty_program") as batch:
        batch.drop_column("goodwill_window_days")
        batch.drop_column("goodwill_window_points")
