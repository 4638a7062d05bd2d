"""tier change reason: a tier history row says why a move happened when it was not a review
(``loyalty_tier_changes.reason``; "order cancelled" for a tier taken back because the order
that lifted the member to it was cancelled). Rows before this version have none.

Revision ID: c25000000014
Revises: c25000000013
Create Date: 2026-12-07 23:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000014"
down_revision: str | None = "c25000000013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loyalty_tier_changes", sa.Column("reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("loyalty_tier_changes") as batch:
        batch.drop_column("reason")
