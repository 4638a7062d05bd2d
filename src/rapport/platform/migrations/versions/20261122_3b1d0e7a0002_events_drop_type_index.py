"""events: drop the index on (type, position)

No query reads the event log by type (processors follow positions, timelines and identity
stitching go by customer or anonymous id), and every index costs each of the thousands of
inserts a second the log takes.

Revision ID: 3b1d0e7a0002
Revises: 7ec0a11d0001
Create Date: 2026-11-22 19:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3b1d0e7a0002"
down_revision: str | None = "7ec0a11d0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_type_position", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_type_position", "events", ["type", "position"], unique=False)
