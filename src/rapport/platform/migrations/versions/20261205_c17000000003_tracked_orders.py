"""tracked orders: Segment's Order Completed / Order Refunded as orders and returns

The ``orders.tracked`` processor turns them into orders and returns, and keeps what it
refuses in ``tracked_order_refusals``. On an existing install it starts at the head of the
log: "Order Completed" events stored before the upgrade were raw events, and the shop's
orders of that time reached Rapport another way or not at all (``/v1/orders``, a transaction
import); placing them now would count old purchases again and award points for them.

Revision ID: c17000000003
Revises: c17000000002
Create Date: 2026-12-05 11:43:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c17000000003"
down_revision: str | None = "c17000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRACKED_ORDERS_PROCESSOR = "orders.tracked"


def upgrade() -> None:
    op.create_table(
        "tracked_order_refusals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("customer_ref", sa.String(length=100), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("occurred_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_order_refusals")),
        sa.UniqueConstraint(
            "event_position", name=op.f("uq_tracked_order_refusals_event_position")
        ),
    )
    op.create_index(
        "ix_tracked_order_refusals_reason", "tracked_order_refusals", ["reason"], unique=False
    )
    op.create_index(
        "ix_tracked_order_refusals_customer_ref",
        "tracked_order_refusals",
        ["customer_ref"],
        unique=False,
    )
    op.create_index(
        "ix_tracked_order_refusals_customer_id",
        "tracked_order_refusals",
        ["customer_id"],
        unique=False,
    )
    op.execute(
        sa.text(
            "INSERT INTO processor_cursors (name, position, updated_at)"
            " SELECT :name, COALESCE(MAX(position), 0), CURRENT_TIMESTAMP FROM events"
            " WHERE NOT EXISTS (SELECT 1 FROM processor_cursors WHERE name = :name)"
        ).bindparams(name=TRACKED_ORDERS_PROCESSOR)
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM processor_cursors WHERE name = :name").bindparams(
            name=TRACKED_ORDERS_PROCESSOR
        )
    )
    op.drop_index("ix_tracked_order_refusals_customer_id", table_name="tracked_order_refusals")
    op.drop_index("ix_tracked_order_refusals_customer_ref", table_name="tracked_order_refusals")
    op.drop_index("ix_tracked_order_refusals_reason", table_name="tracked_order_refusals")
    op.drop_table("tracked_order_refusals")
