"""points refunded: a return of an order paid partly with points gives those points back, by
a 'refund' ledger transaction (the redemption's reverse)

Revision ID: c19000000002
Revises: c19000000001
Create Date: 2026-12-07 07:40:00.000000
"""

from collections.abc import Sequence

from rapport.platform.migration_helpers import replace_kind_check

revision: str = "c19000000002"
down_revision: str | None = "c19000000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "'earn', 'redeem', 'expire', 'adjust', 'reverse', 'close'"


def upgrade() -> None:
    replace_kind_check("loyalty_transactions", KINDS, f"{KINDS}, 'refund'")


def downgrade() -> None:
    # Refused by PostgreSQL while 'refund' transactions exist (the ledger's rows are never
    # deleted to let a downgrade pass); on SQLite such rows must be gone first.
    replace_kind_check("loyalty_transactions", f"{KINDS}, 'refund'", KINDS)
