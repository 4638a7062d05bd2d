"""job heartbeats: a running job's worker refreshes jobs.heartbeat_at while it runs the job,
and a job is queued again once its heartbeat is stale (2 minutes) rather than 30 minutes after
it started. Jobs running now take their start as their last heartbeat.

Revision ID: c25000000005
Revises: c25000000004
Create Date: 2026-12-07 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000005"
down_revision: str | None = "c25000000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET heartbeat_at = started_at WHERE status = 'running'")


def downgrade() -> None:
    op.drop_column("jobs", "heartbeat_at")
