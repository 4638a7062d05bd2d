"""an erased customer's reviews held for moderation leave the queue as rejected (by erasure),
as an erasure does since, so none can be published under the erased id

Revision ID: c22000000003
Revises: c21000000001
Create Date: 2026-12-07 11:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c22000000003"
down_revision: str | None = "c21000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE feedback_reviews SET status = 'rejected', moderated_by = 'erasure', "
        "moderated_at = CURRENT_TIMESTAMP "
        "WHERE status = 'flagged' AND customer_id IN "
        "(SELECT customer_id FROM customers WHERE status = 'erased')"
    )


def downgrade() -> None:
    # The erased person's reviews stay out of the queue: they may not be published.
    pass
