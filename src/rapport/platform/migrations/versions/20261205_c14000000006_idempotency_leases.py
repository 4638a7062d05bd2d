"""idempotency leases

Revision ID: c14000000006
Revises: c14000000005
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c14000000006"
down_revision: str | None = "c14000000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A running command's claim names its holder and holds for a short, renewed lease, so a
    # key whose server died is free again within seconds (platform.idempotency).
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "lease_expires_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("holder")
