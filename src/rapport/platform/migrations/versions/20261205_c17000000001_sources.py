"""tracking sources: a key's Segment e-commerce events may become orders

Keys made before this keep the mapping on (what the issue asks for by default); a shop that
posts its orders to /v1/orders switches it off for its tracking key.

Revision ID: c17000000001
Revises: c16000000006
Create Date: 2026-12-05 11:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c17000000001"
down_revision: str | None = "c16000000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(
            sa.Column(
                "orders_from_tracking", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("orders_from_tracking")
