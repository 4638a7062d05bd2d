"""operator (issue 17; reserved, filled by its part)

Revision ID: c17000000006
Revises: c17000000005
Create Date: 2026-12-05 11:46:00.000000
"""

from collections.abc import Sequence

revision: str = "c17000000006"
down_revision: str | None = "c17000000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
