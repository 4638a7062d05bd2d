"""feedback action plans: an owner, an action, a due date and a status per score target or
comment theme (the CX team's follow-up, edited on the admin targets page)

Revision ID: c18000000001
Revises: c17000000006
Create Date: 2026-12-05 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c18000000001"
down_revision: str | None = "c17000000006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback_action_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("theme", sa.String(length=120), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('planned', 'in_progress', 'done', 'dropped')",
            name=op.f("ck_feedback_action_plans_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_action_plans")),
    )
    op.create_index(
        "ix_feedback_action_plans_status_due",
        "feedback_action_plans",
        ["status", "due_on"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_action_plans_status_due", table_name="feedback_action_plans")
    op.drop_table("feedback_action_plans")
