"""campaign failed: a launch that cannot go out, found after the request that launched it (the
scheduled check, the launch job), ends the campaign ``failed`` with ``failure_reason``, where
it was cancelled or left sending

Revision ID: c24000000001
Revises: c20000000002
Create Date: 2026-12-07 13:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.migration_helpers import replace_in_check

revision: str = "c24000000001"
down_revision: str | None = "c20000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'draft', 'scheduled', 'sending', 'sent', 'active', 'paused', 'cancelled'"


def upgrade() -> None:
    replace_in_check("campaigns", "status", STATUSES, f"{STATUSES}, 'failed'")
    op.add_column("campaigns", sa.Column("failure_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # Refused by PostgreSQL while failed campaigns exist; on SQLite they must be gone first.
    op.drop_column("campaigns", "failure_reason")
    replace_in_check("campaigns", "status", f"{STATUSES}, 'failed'", STATUSES)
