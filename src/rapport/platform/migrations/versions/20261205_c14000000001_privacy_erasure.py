"""privacy erasure: member accounts can be closed, by a 'close' ledger transaction

Revision ID: c14000000001
Revises: 3b1d0e7a0002
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

from rapport.platform.migration_helpers import replace_kind_check as _kinds

revision: str = "c14000000001"
down_revision: str | None = "3b1d0e7a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_KINDS = (
    "'member', 'issued', 'redeemed', 'expired', 'adjustments', 'breakage', 'member_debt'"
)
TRANSACTION_KINDS = "'earn', 'redeem', 'expire', 'adjust', 'reverse'"


def upgrade() -> None:
    _kinds("loyalty_accounts", ACCOUNT_KINDS, f"{ACCOUNT_KINDS}, 'closed'")
    _kinds("loyalty_transactions", TRANSACTION_KINDS, f"{TRANSACTION_KINDS}, 'close'")


def downgrade() -> None:
    # Refused by PostgreSQL while closed accounts or 'close' transactions exist (the ledger's
    # rows are never deleted to let a downgrade pass); on SQLite such rows must be gone first.
    _kinds("loyalty_accounts", f"{ACCOUNT_KINDS}, 'closed'", ACCOUNT_KINDS)
    _kinds("loyalty_transactions", f"{TRANSACTION_KINDS}, 'close'", TRANSACTION_KINDS)
