"""The ledger's tables as SQLAlchemy Core tables: every ledger command and read writes and
reads through these, not through ORM objects (a handful of statements and little Python per
command on the hot path)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from rapport.loyalty.models import (
    LedgerEntry,
    LedgerTransaction,
    LotConsumption,
    LoyaltyAccount,
    MemberDebt,
    PointLot,
)

# The hot path writes through Core tables, not ORM objects.
ACCOUNTS = cast(Table, LoyaltyAccount.__table__)
TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
ENTRIES = cast(Table, LedgerEntry.__table__)
LOTS = cast(Table, PointLot.__table__)
CONSUMPTIONS = cast(Table, LotConsumption.__table__)
DEBTS = cast(Table, MemberDebt.__table__)
