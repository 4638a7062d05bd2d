"""processor held events: an event a processor's handler raised on is tried again on the next
ticks and then set aside, so that one event never stops a processor for good

Revision ID: c20000000001
Revises: c19000000003
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rapport.platform.db import UTCDateTime

revision: str = "c20000000001"
down_revision: str | None = "c19000000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processor_held_events",
        sa.Column("processor", sa.String(60), primary_key=True),
        sa.Column("position", sa.BigInteger(), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("first_failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("held_at", UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("processor_held_events")
