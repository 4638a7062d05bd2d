"""profile field times: each profile field and custom trait tracking sets keeps when its value
was said (``customers.field_times``), so an older identify that arrives late (an app's offline
queue) no longer overwrites newer profile data; existing profiles start without times (any
value may replace theirs, as before)

Revision ID: c24000000002
Revises: c24000000001
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c24000000002"
down_revision: str | None = "c24000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column(
                "field_times",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("field_times")
