"""campaign planning (reserved for changes by the campaigns work)

Revision ID: c16000000005
Revises: c16000000004
Create Date: 2026-12-05 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import rapport.platform.db  # noqa: F401

revision: str = "c16000000005"
down_revision: str | None = "c16000000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
