"""merged orders: the orders, return lines and order notices left under a merged-away
profile's id by merges made before a merge moved them go to the profile it was merged into,
and merged-away profiles keep no lifetime value (the next fit gives the survivor theirs)

Revision ID: c19000000003
Revises: c19000000002
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c19000000003"
down_revision: str | None = "c19000000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A merged profile's merged_into is its survivor (chains point straight at it).
MERGED = "SELECT customer_id FROM customers WHERE status = 'merged' AND merged_into IS NOT NULL"


def upgrade() -> None:
    for table in ("orders", "return_lines", "customer_notices"):
        op.execute(
            f"UPDATE {table} SET customer_id = (SELECT c.merged_into FROM customers c "
            f"WHERE c.customer_id = {table}.customer_id) WHERE customer_id IN ({MERGED})"
        )
    op.execute(f"DELETE FROM customer_values WHERE customer_id IN ({MERGED})")


def downgrade() -> None:
    # Which rows were moved is not recorded; they stay with the survivor.
    pass
