"""tracked order cancelled: a shop's Segment "Order Cancelled" cancels the order, and what
became of the message is kept as the outcome ``cancelled``

Revision ID: c23000000001
Revises: c22000000003
Create Date: 2026-12-07 11:15:00.000000
"""

from collections.abc import Sequence

from rapport.platform.migration_helpers import replace_in_check

revision: str = "c23000000001"
down_revision: str | None = "c22000000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = "'placed', 'returned', 'refused'"


def upgrade() -> None:
    replace_in_check("tracked_order_events", "outcome", OUTCOMES, f"{OUTCOMES}, 'cancelled'")


def downgrade() -> None:
    # Refused by PostgreSQL while cancelled outcomes exist; on SQLite they must be gone first.
    replace_in_check("tracked_order_events", "outcome", f"{OUTCOMES}, 'cancelled'", OUTCOMES)
