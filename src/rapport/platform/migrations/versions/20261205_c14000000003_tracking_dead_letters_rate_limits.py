"""tracking dead letters rate limits

Revision ID: c14000000003
Revises: c14000000002
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c14000000003"
down_revision: str | None = "c14000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracking_dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(length=40), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("customer_ref", sa.String(length=100), nullable=True),
        sa.Column("anonymous_id", sa.String(length=100), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_dead_letters")),
    )
    op.create_index(
        "ix_tracking_dead_letters_customer_ref",
        "tracking_dead_letters",
        ["customer_ref"],
        unique=False,
    )
    op.create_index(
        "ix_tracking_dead_letters_anonymous_id",
        "tracking_dead_letters",
        ["anonymous_id"],
        unique=False,
    )
    op.create_index(
        "ix_tracking_dead_letters_reason", "tracking_dead_letters", ["reason"], unique=False
    )
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("rate_limit", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("rate_limit")
    op.drop_index("ix_tracking_dead_letters_reason", table_name="tracking_dead_letters")
    op.drop_index("ix_tracking_dead_letters_anonymous_id", table_name="tracking_dead_letters")
    op.drop_index("ix_tracking_dead_letters_customer_ref", table_name="tracking_dead_letters")
    op.drop_table("tracking_dead_letters")
