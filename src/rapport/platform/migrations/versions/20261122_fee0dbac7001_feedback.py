"""feedback: surveys, responses, reviews and screening, tickets

Revision ID: fee0dbac7001
Revises: d4c9bc6dcf79
Create Date: 2026-11-22 15:40:00.000000
"""

from collections.abc import Sequence

revision: str = "fee0dbac7001"
down_revision: str | None = "d4c9bc6dcf79"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
