"""held events behind: an order-sensitive processor holds the later events of a held event's
customer or order behind it (``behind``: the held event's log position), so that a retry
applies them in their order

Revision ID: c20000000002
Revises: c23000000001
Create Date: 2026-12-07 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c20000000002"
down_revision: str | None = "c23000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processor_held_events") as batch:
        batch.add_column(sa.Column("behind", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # Events held behind another stay held, and the earlier `rapport events retry` applies them.
    with op.batch_alter_table("processor_held_events") as batch:
        batch.drop_column("behind")
