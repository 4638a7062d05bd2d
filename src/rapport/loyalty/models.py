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

TRANSACTION_KINDS = ("earn", "redeem", "expire", "adjust", "reverse", "close", "refund")


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
    # The most goodwill points (the customer page's goodwill form) one customer is given in
    # any ``goodwill_window_days`` days, whoever gives them (each grant is also capped).
    goodwill_window_points: Mapped[int] = mapped_column(Integer, default=20_000)
    goodwill_window_days: Mapped[int] = mapped_column(Integer, default=30)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoyaltyAccount(Base):
    """A ledger account. Member accounts (``kind`` 'member') carry the available ``balance``
    and the ``debt`` owed from returns; the database refuses either going negative. Erasure
    closes a member account (``kind`` 'closed', balance and debt settled to zero by a 'close'
    transaction); its journal stays, so the program's totals still add up."""

    __tablename__ = "loyalty_accounts"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('member', 'issued', 'redeemed', 'expired', 'adjustments', 'breakage', "
            "'member_debt', 'closed')",
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
            "kind IN ('earn', 'redeem', 'expire', 'adjust', 'reverse', 'close', 'refund')",
            name="kind_known",
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


# --- the program's configuration, earning, tiers ------------------------------------------


class ProgramConfig(Base):
    """One version of a part of the program's configuration (``kind`` 'rules', 'tiers' or
    'checkout'), as validated JSON. Versions are never edited: an event is evaluated with the
    version in force when it was received, so changing rules never rewrites the past."""

    __tablename__ = "loyalty_config"
    __table_args__ = (
        CheckConstraint("kind IN ('rules', 'tiers', 'checkout')", name="kind_known"),
        Index("ix_loyalty_config_kind_from", "kind", "active_from"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    document: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    active_from: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(String(500), default="")


class Award(Base):
    """Points a rule gave for one fact. Unique per member, rule and ``once_key`` (an order, a
    preference field, a review, a year), so each is given once however often it is seen."""

    __tablename__ = "loyalty_awards"
    __table_args__ = (
        Index("uq_loyalty_awards_once", "customer_id", "rule_id", "once_key", unique=True),
        Index("ix_loyalty_awards_order_id", "order_id"),
        Index("ix_loyalty_awards_rule_period", "customer_id", "rule_id", "awarded_at"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    rule_id: Mapped[str] = mapped_column(String(64))
    once_key: Mapped[str] = mapped_column(String(120))
    points: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(LedgerId, default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Points per order line (spend rules): a return reverses what its lines earned.
    line_points: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    reason: Mapped[str] = mapped_column(String(500))
    config_id: Mapped[int | None] = mapped_column(Integer, default=None)
    event_position: Mapped[int | None] = mapped_column(BigInteger, default=None)
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QualifyingActivity(Base):
    """Spend (minor units) and points that count towards tiers, dated, per order; a return
    adds a negative row. Tier reviews sum a rolling window of these."""

    __tablename__ = "loyalty_qualifying"
    __table_args__ = (
        Index("ix_loyalty_qualifying_customer_at", "customer_id", "occurred_at"),
        Index("uq_loyalty_qualifying_source", "source_key", unique=True),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    source_key: Mapped[str] = mapped_column(String(160))  # order:O-1, return:R-1 ...
    spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TierStanding(Base):
    """A member's tier now, since when, and when it is next reviewed."""

    __tablename__ = "loyalty_tier_standings"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tier_id: Mapped[str] = mapped_column(String(60), index=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    review_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    qualifying_value: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TierChangeRecord(Base):
    """Tier history: every upgrade, renewal and downgrade, with its reason when it was not a
    review's (a tier taken back after a cancelled order)."""

    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (Index("ix_loyalty_tier_changes_customer", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40))
    from_tier: Mapped[str | None] = mapped_column(String(60), default=None)
    to_tier: Mapped[str] = mapped_column(String(60))
    change: Mapped[str] = mapped_column(String(20))
    qualifying_value: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Why, when the move was not a review's: "order cancelled" for a tier taken back.
    reason: Mapped[str | None] = mapped_column(String(200), default=None)


# --- paid membership ------------------------------------------------------------------------


class MembershipPlan(Base):
    """A paid plan: a fee per period and instant benefits."""

    __tablename__ = "loyalty_plans"
    __table_args__ = (
        CheckConstraint("fee_minor >= 0", name="fee_not_negative"),
        CheckConstraint("period IN ('month', 'year')", name="period_known"),
    )

    plan_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    fee_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    period: Mapped[str] = mapped_column(String(10))
    # a benefit not named is not given (membership.plans.save_plan and the API say the same)
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    member_prices: Mapped[bool] = mapped_column(Boolean, default=False)
    early_access_hours: Mapped[int] = mapped_column(Integer, default=0)
    points_multiplier: Mapped[float] = mapped_column(default=1.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Membership(Base):
    """A customer's subscription to a plan. ``active`` until cancelled (benefits stay until
    the period ends) or lapsed (a renewal was not paid)."""

    __tablename__ = "loyalty_memberships"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'cancelled', 'lapsed')", name="status_known"),
        Index(
            "uq_loyalty_memberships_current",
            "customer_id",
            unique=True,
            postgresql_where=text("status <> 'lapsed'"),
            sqlite_where=text("status <> 'lapsed'"),
        ),
        Index("ix_loyalty_memberships_period_end", "status", "current_period_end"),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    plan_id: Mapped[str] = mapped_column(String(60), ForeignKey("loyalty_plans.plan_id"))
    status: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    auto_renew: Mapped[bool] = mapped_column(Boolean, default=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class MembershipPayment(Base):
    """A fee paid for one period: revenue, not points."""

    __tablename__ = "loyalty_membership_payments"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        Index(
            "uq_loyalty_membership_payments_period", "membership_id", "period_start", unique=True
        ),
    )

    id: Mapped[int] = mapped_column(LedgerId, primary_key=True, autoincrement=True)
    membership_id: Mapped[int] = mapped_column(LedgerId, ForeignKey("loyalty_memberships.id"))
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    plan_id: Mapped[str] = mapped_column(String(60))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AppliedCheckout(Base):
    """The checkout effects an order was placed with, and what the member saved by them."""

    __tablename__ = "loyalty_checkouts"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    effects: Mapped[list[Any]] = mapped_column(JsonDocument)
    plan_savings_minor: Mapped[int] = mapped_column(Integer, default=0)
    tier_savings_minor: Mapped[int] = mapped_column(Integer, default=0)
    coupon_savings_minor: Mapped[int] = mapped_column(Integer, default=0)
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# --- rewards, coupons, referrals, announcements ---------------------------------------------


class Reward(Base):
    """A catalogue reward: points buy a single-use coupon."""

    __tablename__ = "loyalty_rewards"
    __table_args__ = (
        CheckConstraint("points_cost > 0", name="points_cost_positive"),
        CheckConstraint("coupon_kind IN ('percent', 'amount')", name="coupon_kind_known"),
    )

    reward_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    points_cost: Mapped[int] = mapped_column(Integer)
    coupon_kind: Mapped[str] = mapped_column(String(10))
    coupon_value: Mapped[int] = mapped_column(Integer)
    min_subtotal_minor: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    valid_days: Mapped[int] = mapped_column(Integer, default=90)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Coupon(Base):
    """A single-use coupon. ``used_at`` is set once, by the order that used it."""

    __tablename__ = "loyalty_coupons"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    rule: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[int] = mapped_column(Integer)
    min_subtotal_minor: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    stackable: Mapped[bool] = mapped_column(Boolean, default=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    transaction_id: Mapped[int | None] = mapped_column(LedgerId, default=None)
    # Who issued it: the admin user's login, ``api:<key name>``; None where no one asked.
    issued_by: Mapped[str | None] = mapped_column(String(200), default=None)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    used_order_id: Mapped[str | None] = mapped_column(String(64), default=None)


class ReferralCode(Base):
    __tablename__ = "loyalty_referral_codes"

    customer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Referral(Base):
    """A friend referred by a member. One referral per friend (the primary key), so a friend
    can never be claimed twice."""

    __tablename__ = "loyalty_referrals"

    friend_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    referrer_id: Mapped[str] = mapped_column(String(40), index=True)
    code: Mapped[str] = mapped_column(String(20))
    referred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)


class Announcement(Base):
    """A program announcement (rule change, new benefit, early access) for members, sent by
    the campaigns domain."""

    __tablename__ = "loyalty_announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(4000))
    audience: Mapped[str] = mapped_column(String(60), default="all")  # all, paying, tier:<id>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    # Reported by the campaigns domain, which sends it: deliveries queued (members who had
    # consented to marketing on a channel) and sent.
    queued_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
