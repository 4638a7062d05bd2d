"""producers through campaigns: announcements sent by campaigns, the producers' starting point

Member announcements are now deliveries of the campaigns domain: loyalty's own delivery table
goes (its rows were queued and never sent), announcements gain the count of deliveries sent,
and their queued counts start again from what campaigns queues. The producers' event processor
starts at the head of the log: facts logged before the upgrade were handled the old way, and
old late deliveries, invitations, tickets or alerts must not become messages now. Late-delivery
notice jobs still waiting (they stamped a notice "sent" with no channel behind it) go.

Revision ID: c16000000006
Revises: c16000000005
Create Date: 2026-12-05 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c16000000006"
down_revision: str | None = "c16000000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRODUCERS_PROCESSOR = "campaigns.producers"


def upgrade() -> None:
    with op.batch_alter_table("loyalty_announcements") as batch_op:
        batch_op.add_column(
            sa.Column("sent_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE loyalty_announcements SET queued_count = 0")
    op.drop_table("loyalty_announcement_deliveries")
    op.execute("DELETE FROM jobs WHERE kind = 'orders.send_notice' AND status = 'queued'")
    op.execute(
        sa.text(
            "INSERT INTO processor_cursors (name, position, updated_at)"
            " SELECT :name, COALESCE(MAX(position), 0), CURRENT_TIMESTAMP FROM events"
            " WHERE NOT EXISTS (SELECT 1 FROM processor_cursors WHERE name = :name)"
        ).bindparams(name=PRODUCERS_PROCESSOR)
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM processor_cursors WHERE name = :name").bindparams(
            name=PRODUCERS_PROCESSOR
        )
    )
    op.create_table(
        "loyalty_announcement_deliveries",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("queued_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False, server_default="email"),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["loyalty_announcements.id"],
            name=op.f("fk_loyalty_announcement_deliveries_announcement_id_loyalty_announcements"),
        ),
        sa.PrimaryKeyConstraint(
            "announcement_id", "customer_id", name=op.f("pk_loyalty_announcement_deliveries")
        ),
    )
    with op.batch_alter_table("loyalty_announcements") as batch_op:
        batch_op.drop_column("sent_count")
