"""privacy erasure

Revision ID: c14000000001
Revises: 3b1d0e7a0002
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

revision: str = "c14000000001"
down_revision: str | None = "3b1d0e7a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
