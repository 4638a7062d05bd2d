"""privacy erasure: member accounts can be closed, by a 'close' ledger transaction

Revision ID: c14000000001
Revises: 3b1d0e7a0002
Create Date: 2026-12-05 02:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c14000000001"
down_revision: str | None = "3b1d0e7a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_KINDS = (
    "'member', 'issued', 'redeemed', 'expired', 'adjustments', 'breakage', 'member_debt'"
)
TRANSACTION_KINDS = "'earn', 'redeem', 'expire', 'adjust', 'reverse'"


def _kinds(table: str, old: str, new: str) -> None:
    """Replace the table's ``kind IN (old)`` check with ``kind IN (new)``."""
    name = op.f(f"ck_{table}_kind_known")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, f"kind IN ({new})")
        return
    # SQLite cannot alter a CHECK, and rebuilding these tables (batch mode) would drop a
    # parent of the ledger's foreign keys while they are enforced. SQLite documents editing
    # the stored CREATE TABLE instead for changes that leave every stored row valid, which
    # a wider list of kinds does (sqlite.org/lang_altertable.html, "other kinds of changes").
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    before, after = f"kind IN ({old})", f"kind IN ({new})"
    assert before in sql, f"{table}: {before} not found in its schema"
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(before, after), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    _kinds("loyalty_accounts", ACCOUNT_KINDS, f"{ACCOUNT_KINDS}, 'closed'")
    _kinds("loyalty_transactions", TRANSACTION_KINDS, f"{TRANSACTION_KINDS}, 'close'")


def downgrade() -> None:
    # Refused by PostgreSQL while closed accounts or 'close' transactions exist (the ledger's
    # rows are never deleted to let a downgrade pass); on SQLite such rows must be gone first.
    _kinds("loyalty_accounts", f"{ACCOUNT_KINDS}, 'closed'", ACCOUNT_KINDS)
    _kinds("loyalty_transactions", f"{TRANSACTION_KINDS}, 'close'", TRANSACTION_KINDS)
