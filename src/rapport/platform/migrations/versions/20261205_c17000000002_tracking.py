"""tracking: customer groups (accounts, households) from Segment group calls

Each customer may belong to one group (``customers.group_id``, the latest group call wins); the
group's traits are kept in ``customer_groups``. Custom traits need no DDL: they live in
``customers.attributes``.

Revision ID: c17000000002
Revises: c17000000001
Create Date: 2026-12-05 11:42:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rapport.platform.db

revision: str = "c17000000002"
down_revision: str | None = "c17000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_groups",
        sa.Column("group_id", sa.String(length=100), nullable=False),
        sa.Column(
            "traits",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_customer_groups")),
    )
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("group_id", sa.String(length=100), nullable=True))
        batch.create_index("ix_customers_group_id", ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_group_id")
        batch.drop_column("group_id")
    op.drop_table("customer_groups")
