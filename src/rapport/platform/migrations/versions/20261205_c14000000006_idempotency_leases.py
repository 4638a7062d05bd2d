"""idempotency leases

Revision ID: c14000000006
Revises: c14000000005
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

revision: str = "c14000000006"
down_revision: str | None = "c14000000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
