"""issued and opened by: who issued a coupon (loyalty_coupons.issued_by) and who opened a
ticket (feedback_tickets.opened_by): the admin user's login, or ``api:<key name>`` for an API
call, as a ticket's ``resolved_by`` and a goodwill adjustment's ``details.by`` say. Rows from
before stay null (who gave them was not recorded).

Revision ID: c25000000004
Revises: c25000000003
Create Date: 2026-12-07 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c25000000004"
down_revision: str | None = "c25000000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loyalty_coupons", sa.Column("issued_by", sa.String(length=200), nullable=True))
    op.add_column("feedback_tickets", sa.Column("opened_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("feedback_tickets", "opened_by")
    op.drop_column("loyalty_coupons", "issued_by")
