"""consent outbound

Revision ID: c14000000005
Revises: c14000000004
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c14000000005"
down_revision: str | None = "c14000000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each announcement delivery records the channel its member consented to.
    with op.batch_alter_table("loyalty_announcement_deliveries") as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=10), nullable=False, server_default="email")
        )
    # Deliveries still waiting that the consent gate would not have queued go: members who
    # granted no marketing channel, or whose profile is no longer active. Push-only members'
    # go out by push.
    op.execute(
        """
        DELETE FROM loyalty_announcement_deliveries
        WHERE status = 'queued' AND (
            NOT EXISTS (
                SELECT 1 FROM consents c
                WHERE c.customer_id = loyalty_announcement_deliveries.customer_id
                  AND c.purpose IN ('marketing_email', 'marketing_push') AND c.granted
            )
            OR NOT EXISTS (
                SELECT 1 FROM customers p
                WHERE p.customer_id = loyalty_announcement_deliveries.customer_id
                  AND p.status = 'active'
            )
        )
        """
    )
    op.execute(
        """
        UPDATE loyalty_announcement_deliveries SET channel = 'push'
        WHERE NOT EXISTS (
            SELECT 1 FROM consents c
            WHERE c.customer_id = loyalty_announcement_deliveries.customer_id
              AND c.purpose = 'marketing_email' AND c.granted
        )
        """
    )
    op.execute(
        """
        UPDATE loyalty_announcements SET queued_count = (
            SELECT count(*) FROM loyalty_announcement_deliveries d
            WHERE d.announcement_id = loyalty_announcements.id
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("loyalty_announcement_deliveries") as batch_op:
        batch_op.drop_column("channel")
