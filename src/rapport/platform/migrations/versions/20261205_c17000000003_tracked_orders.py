"""tracked orders: Segment's Order Completed / Order Refunded as orders and returns

The ``orders.tracked`` processor turns them into orders and returns, and records each one it
handled in ``tracked_order_events`` (what became of it; refusals with their reason). On an existing install it starts at the head of the
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
INDEXES = {
    "ix_tracked_order_events_outcome_reason": ["outcome", "reason"],
    "ix_tracked_order_events_customer_ref": ["customer_ref"],
    "ix_tracked_order_events_customer_id": ["customer_id"],
}


def upgrade() -> None:
    op.create_table(
        "tracked_order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("return_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("field", sa.String(length=200), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("customer_ref", sa.String(length=100), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("occurred_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('placed', 'returned', 'refused')",
            name=op.f("ck_tracked_order_events_outcome_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_order_events")),
        sa.UniqueConstraint("event_position", name=op.f("uq_tracked_order_events_event_position")),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "tracked_order_events", columns, unique=False)
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
    for name in INDEXES:
        op.drop_index(name, table_name="tracked_order_events")
    op.drop_table("tracked_order_events")
