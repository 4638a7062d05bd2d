"""Helpers that more than one migration uses."""

from __future__ import annotations

from alembic import op


def replace_kind_check(table: str, old: str, new: str) -> None:
    """Replace the table's ``kind IN (old)`` check with ``kind IN (new)``."""
    replace_in_check(table, "kind", old, new)


def replace_in_check(table: str, column: str, old: str, new: str) -> None:
    """Replace the table's ``<column> IN (old)`` check (named ``<column>_known``) with
    ``<column> IN (new)``."""
    name = op.f(f"ck_{table}_{column}_known")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, f"{column} IN ({new})")
        return
    # SQLite cannot alter a CHECK, and rebuilding these tables (batch mode) would drop a
    # parent of the ledger's foreign keys while they are enforced. SQLite documents editing
    # the stored CREATE TABLE instead for changes that leave every stored row valid, which
    # a wider list of kinds does (sqlite.org/lang_altertable.html, "other kinds of changes").
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    before, after = f"{column} IN ({old})", f"{column} IN ({new})"
    assert before in sql, f"{table}: {before} not found in its schema"
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(before, after), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")
