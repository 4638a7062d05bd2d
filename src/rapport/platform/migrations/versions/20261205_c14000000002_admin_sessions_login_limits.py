"""admin sessions login limits

Revision ID: c14000000002
Revises: c14000000001
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rapport.platform.db

revision: str = "c14000000002"
down_revision: str | None = "c14000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("admin_user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["admin_user_id"],
            ["admin_users.id"],
            name=op.f("fk_admin_sessions_admin_user_id_admin_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index(
        op.f("ix_admin_sessions_admin_user_id"), "admin_sessions", ["admin_user_id"], unique=False
    )
    op.create_table(
        "admin_login_failures",
        sa.Column("subject", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "last_failure_at", rapport.platform.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", rapport.platform.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_admin_login_failures")),
    )


def downgrade() -> None:
    op.drop_table("admin_login_failures")
    op.drop_index(op.f("ix_admin_sessions_admin_user_id"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
