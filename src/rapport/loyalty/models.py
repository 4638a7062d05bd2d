"""Loyalty tables: the program's configuration and its double-entry points ledger.

Accounts hold points: one per member (their available points) and one per program purpose
(issued, redeemed, expired, adjustments, breakage, member debt). Every movement is a journal
transaction whose entries sum to zero; rows are never edited, corrections are new transactions.
A member's points arrive in lots with an expiry date and leave first-in first-out; every
consumption of a lot is recorded. Only the member account carries a running balance (a
denormalised sum of its entries, kept in the same transaction), so that redemption can check
and take points with one guarded UPDATE; program balances are summed from entries when asked,
which keeps the hot path free of a single row every command would queue on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64 bits.
LedgerId = BigInteger().with_variant(Integer(), "sqlite")

# Program accounts. Member accounts are keyed by the customer id itself.
ISSUED = "program:issued"
REDEEMED = "program:redeemed"
EXPIRED = "program:expired"
ADJUSTMENTS = "program:adjustments"
BREAKAGE = "program:breakage"
MEMBER_DEBT = "program:member_debt"
PROGRAM_ACCOUNTS = (ISSUED, REDEEMED, EXPIRED, ADJUSTMENTS, BREAKAGE, MEMBER_DEBT)

TRANSACTION_KINDS = ("earn", "redeem", "expire", "adjust", "reverse")


class LoyaltyProgram(Base):
    """The program's settings: one row (id 1), created with sensible defaults."""

    __tablename__ = "loyalty_program"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("expiry_months BETWEEN 1 AND 120", name="expiry_months_range"),
        CheckConstraint("point_value_minor_per_100 >= 0", name="point_value_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    name: Mapped[str] = mapped_column(String(100), default="Rapport Rewards")
    expiry_months: Mapped[int] = mapped_column(Integer, default=12)
    # What 100 points are worth, in minor units of ``currency`` (liability reporting).
    point_value_minor_per_100: Mapped[int] = mapped_column(Integer, default=100)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # A return reversing points already spent: record the shortfall as the member's debt
    # (cleared by later earning), or reverse only what the balance still holds.
    allow_debt: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoyaltyAccount(Base):
    """A ledger account. Member accounts (``kind`` 'member') carry the available ``balance``
    and the ``debt`` owed from returns; the database refuses either going negative."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('member', 'issued', 'redeemed', 'expired', 'adjustments', 'breakage', "
            "'member_debt')",
            name="kind_known",
        ),
        CheckConstraint("kind <> 'member' OR balance >= 0", name="member_balance_not_negative"),
        CheckConstraint("debt >= 0", name="debt_not_negative"),
    )

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    debt: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerTransaction(Base):
    """One movement of points, with why it happened. Immutable."""

    __tablename__ = "loyalty_transactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'redeem', 'expire', 'adjust', 'reverse')", name="kind_known"
        ),
        Index("ix_loyalty_transactions_customer_id", "customer_id", "id"),
        Index("ix_loyalty_transactions_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    # The change to the member's available balance (negative for redeem, expire ...).
    points: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    rule_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Debt recorded (+) or cleared (-) by this transaction, and other particulars.
    debt_change: Mapped[int] = mapped_column(BigInteger, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """One leg of a transaction. The entries of a transaction sum to zero."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_loyalty_entries_account_id", "account_id"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(
        LedgerId, ForeignKey("loyalty_transactions.id"), index=True
    )
    # No foreign key: program accounts are constants of the code, and a ledger entry must
    # not depend on a seeded row being present.
    account_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)


class PointLot(Base):
    """Points earned together, spent and expired first-in first-out. ``remaining`` is what
    is still open; a member's balance is the sum of their lots' ``remaining``."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
        Index(
            "ix_loyalty_lots_open",
            "customer_id",
            "earned_at",
            "id",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index(
            "ix_loyalty_lots_expiring",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index("ix_loyalty_lots_order_id", "order_id"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("loyalty_accounts.account_id"))
    transaction_id: Mapped[int] = mapped_column(LedgerId, ForeignKey("loyalty_transactions.id"))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LotConsumption(Base):
    """Which lot a redemption, expiry, reversal or negative adjustment took points from."""

    __tablename__ = "loyalty_lot_consumptions"
    __table_args__ = (CheckConstraint("points > 0", name="points_positive"),)

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    lot_id: Mapped[int] = mapped_column(LedgerId, ForeignKey("loyalty_lots.id"), index=True)
    transaction_id: Mapped[int] = mapped_column(
        LedgerId, ForeignKey("loyalty_transactions.id"), index=True
    )
    points: Mapped[int] = mapped_column(BigInteger)


class MemberDebt(Base):
    """Points a return took back after the member had spent them. Later earning pays debts
    oldest first; ``remaining`` is what is still owed."""

    __tablename__ = "loyalty_debts"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_within_amount"),
        Index("ix_loyalty_debts_customer_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40), ForeignKey("loyalty_accounts.account_id"))
    transaction_id: Mapped[int] = mapped_column(LedgerId, ForeignKey("loyalty_transactions.id"))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
