"""subscriptions: webhook subscriptions to Rapport's own events, tickets' breach announcement

``campaign_webhook_subscriptions`` holds what each endpoint subscribed to. The subscriptions'
event processor starts at the head of the log: events logged before the upgrade are not
delivered (no retroactive flood). ``feedback_tickets.breached_at`` records the one
``ticket_breached`` announcement; tickets already open past their due time at the upgrade
count as announced, for the same reason.

Revision ID: c17000000005
Revises: c17000000004
Create Date: 2026-12-05 11:45:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import rapport.platform.db

revision: str = "c17000000005"
down_revision: str | None = "c17000000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUBSCRIPTIONS_PROCESSOR = "campaigns.subscriptions"


def upgrade() -> None:
    op.create_table(
        "campaign_webhook_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column(
            "event_types",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_webhook_subscriptions")),
        sa.UniqueConstraint(
            "campaign_id", name=op.f("uq_campaign_webhook_subscriptions_campaign_id")
        ),
        sa.UniqueConstraint(
            "endpoint_id", name=op.f("uq_campaign_webhook_subscriptions_endpoint_id")
        ),
    )
    with op.batch_alter_table("feedback_tickets") as batch_op:
        batch_op.add_column(
            sa.Column("breached_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        sa.text(
            "UPDATE feedback_tickets SET breached_at = sla_due_at"
            " WHERE status = 'open' AND sla_due_at < :now"
        ).bindparams(
            sa.bindparam("now", datetime.now(UTC), type_=rapport.platform.db.UTCDateTime())
        )
    )
    op.execute(
        sa.text(
            "INSERT INTO processor_cursors (name, position, updated_at)"
            " SELECT :name, COALESCE(MAX(position), 0), CURRENT_TIMESTAMP FROM events"
            " WHERE NOT EXISTS (SELECT 1 FROM processor_cursors WHERE name = :name)"
        ).bindparams(name=SUBSCRIPTIONS_PROCESSOR)
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM processor_cursors WHERE name = :name").bindparams(
            name=SUBSCRIPTIONS_PROCESSOR
        )
    )
    with op.batch_alter_table("feedback_tickets") as batch_op:
        batch_op.drop_column("breached_at")
    op.drop_table("campaign_webhook_subscriptions")
