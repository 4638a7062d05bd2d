"""The loyalty domain's part of export and erasure (``rapport.flows.privacy``): the tables it
covers, what an erasure does to a member's loyalty data, and what an export gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import close_account
from rapport.loyalty.ledger.tables import ACCOUNTS, TRANSACTIONS
from rapport.loyalty.models import (
    Award,
    Coupon,
    LedgerTransaction,
    Membership,
    MembershipPayment,
    Referral,
    ReferralCode,
    TierStanding,
)
from rapport.platform import clock
from rapport.platform.privacy import PrivacySubject

# What an erased member's journal and awards say instead of their reasons (free text that
# staff or a client wrote, which may name the person: "Zoetrope bonus").
ERASED_REASON = "erased"

PRIVACY_TABLES = (
    "loyalty_accounts",
    "loyalty_transactions",
    "loyalty_lots",
    "loyalty_debts",
    "loyalty_awards",
    "loyalty_qualifying",
    "loyalty_tier_standings",
    "loyalty_tier_changes",
    "loyalty_memberships",
    "loyalty_membership_payments",
    "loyalty_checkouts",
    "loyalty_coupons",
    "loyalty_referral_codes",
    "loyalty_referrals",
)


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    """Close the member's account (see ``close_account``), end their paid membership now
    (its payments stay: revenue), drop their tier standing and referral code, expire their
    unused coupons. Ledger, awards, tier history, referrals and checkouts stay under the random
    customer id, the journal's and the awards' reasons (free text) replaced by
    :data:`ERASED_REASON` (points and entries untouched: the journal still balances).
    (Announcements queued for them are the campaigns domain's deliveries, which its own
    erasure and consent gate handle.)"""
    ids = list(subject.customer_ids)
    now = clock.now()
    for table in (LedgerTransaction, Award):
        db.execute(
            update(table)
            .where(table.customer_id.in_(ids), table.reason != ERASED_REASON)
            .values(reason=ERASED_REASON)
            .execution_options(synchronize_session=False)
        )
    for customer_id in ids:
        close_account(db, customer_id=customer_id, now=now)
    db.execute(
        update(Membership)
        .where(Membership.customer_id.in_(ids), Membership.status != "lapsed")
        .values(status="lapsed", auto_renew=False, ended_at=now)
    )
    db.execute(delete(TierStanding).where(TierStanding.customer_id.in_(ids)))
    db.execute(delete(ReferralCode).where(ReferralCode.customer_id.in_(ids)))
    db.execute(
        update(Coupon)
        .where(Coupon.customer_id.in_(ids), Coupon.used_at.is_(None), Coupon.expires_at > now)
        .values(expires_at=now)
    )


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The member's account, every ledger movement, tier and its history, paid memberships
    and their payments, coupons, referral code and referrals."""
    from rapport.loyalty.tiers.standing import member_tier, tier_history

    ids = list(subject.customer_ids)

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    tier = member_tier(db, customer_id=subject.customer_id)
    return {
        "loyalty": {
            "accounts": [
                {
                    "kind": a.kind,
                    "balance": a.balance,
                    "debt": a.debt,
                    "opened_at": iso(a.created_at),
                }
                for a in db.execute(select(ACCOUNTS).where(ACCOUNTS.c.account_id.in_(ids)))
            ],
            "transactions": [
                {
                    "kind": t.kind,
                    "points": t.points,
                    "debt_change": t.debt_change,
                    "reason": t.reason,
                    "order_id": t.order_id,
                    "at": iso(t.created_at),
                }
                for t in db.execute(
                    select(TRANSACTIONS)
                    .where(TRANSACTIONS.c.customer_id.in_(ids))
                    .order_by(TRANSACTIONS.c.id)
                )
            ],
            "tier": tier.tier_id,
            "tier_history": tier_history(db, customer_id=subject.customer_id),
            "memberships": [
                {
                    "plan_id": m.plan_id,
                    "status": m.status,
                    "started_at": iso(m.started_at),
                    "current_period_end": iso(m.current_period_end),
                    "ended_at": iso(m.ended_at),
                }
                for m in db.scalars(select(Membership).where(Membership.customer_id.in_(ids)))
            ],
            "membership_payments": [
                {
                    "plan_id": p.plan_id,
                    "amount_minor": p.amount_minor,
                    "currency": p.currency,
                    "paid_at": iso(p.paid_at),
                }
                for p in db.scalars(
                    select(MembershipPayment).where(MembershipPayment.customer_id.in_(ids))
                )
            ],
            "coupons": [
                {
                    "code": c.code,
                    "rule": c.rule,
                    "issued_at": iso(c.issued_at),
                    "expires_at": iso(c.expires_at),
                    "used_at": iso(c.used_at),
                }
                for c in db.scalars(select(Coupon).where(Coupon.customer_id.in_(ids)))
            ],
            "referral_codes": [
                r.code
                for r in db.scalars(select(ReferralCode).where(ReferralCode.customer_id.in_(ids)))
            ],
            "referrals": [
                {
                    "role": "referrer" if r.referrer_id in ids else "friend",
                    "referred_at": iso(r.referred_at),
                    "completed_at": iso(r.completed_at),
                }
                for r in db.scalars(
                    select(Referral).where(
                        Referral.referrer_id.in_(ids) | Referral.friend_id.in_(ids)
                    )
                )
            ],
        }
    }
