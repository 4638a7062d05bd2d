"""recommend: model versions, merchandising rules and their audit

Revision ID: 7ec0a11d0001
Revises: fee0dbac7001
Create Date: 2026-11-22 15:40:00.000000
"""

from collections.abc import Sequence

revision: str = "7ec0a11d0001"
down_revision: str | None = "fee0dbac7001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
