"""The loyalty domain's part of export and erasure (``rapport.flows.privacy``): the tables it
covers, what an erasure does to a member's loyalty data, and what an export gives them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.accounts import close_account
from rapport.loyalty.ledger.tables import ACCOUNTS, TRANSACTIONS
from rapport.loyalty.models import (
    AppliedCheckout,
    Award,
    Coupon,
    LedgerTransaction,
    MemberDebt,
    Membership,
    MembershipPayment,
    PointLot,
    QualifyingActivity,
    Referral,
    ReferralCode,
    TierChangeRecord,
    TierStanding,
)
from rapport.platform import clock
from rapport.platform.privacy import ExportedColumns, PrivacySubject

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


# How the export shows each table's rows: every column exported or left out saying why (see
# ``ExportedColumns``; a test holds every column of PRIVACY_TABLES to one or the other).
_THEIR_ID = "the person's own customer id: the document's customer_id (or a profile merged into it)"
_JOURNAL_ROW = "the journal's row number, internal to Rapport (the movement is under transactions)"
EXPORTED_COLUMNS = {
    e.table: e
    for e in (
        ExportedColumns(
            "loyalty_accounts",
            ("kind", "balance", "debt", "created_at", "updated_at"),
            left_out={"account_id": _THEIR_ID, "customer_id": _THEIR_ID},
            renamed={"created_at": "opened_at"},
        ),
        ExportedColumns(
            "loyalty_transactions",
            (
                "kind",
                "points",
                "debt_change",
                "reason",
                "order_id",
                "rule_id",
                "details",
                "created_at",
            ),
            left_out={"id": _JOURNAL_ROW, "customer_id": _THEIR_ID},
            renamed={"created_at": "at"},
        ),
        ExportedColumns(
            "loyalty_lots",
            ("order_id", "amount", "remaining", "earned_at", "expires_at"),
            left_out={
                "id": "the lot's row number, internal to Rapport",
                "transaction_id": _JOURNAL_ROW,
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "loyalty_debts",
            ("order_id", "amount", "remaining", "created_at"),
            left_out={
                "id": "the debt's row number, internal to Rapport",
                "transaction_id": _JOURNAL_ROW,
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "loyalty_awards",
            (
                "rule_id",
                "once_key",
                "points",
                "order_id",
                "line_points",
                "reason",
                "config_id",
                "awarded_at",
            ),
            left_out={
                "id": "the award's row number, internal to Rapport",
                "transaction_id": _JOURNAL_ROW,
                "event_position": "the place in Rapport's event log of the fact it rewards",
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "loyalty_qualifying",
            ("source_key", "spend_minor", "points", "occurred_at"),
            left_out={"id": "the row number, internal to Rapport", "customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "loyalty_tier_standings",
            ("tier_id", "since", "review_at", "qualifying_value", "updated_at"),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "loyalty_tier_changes",
            ("from_tier", "to_tier", "change", "qualifying_value", "changed_at", "reason"),
            left_out={"id": "the row number, internal to Rapport", "customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "loyalty_memberships",
            (
                "plan_id",
                "status",
                "started_at",
                "current_period_start",
                "current_period_end",
                "auto_renew",
                "cancelled_at",
                "ended_at",
            ),
            left_out={
                "id": "the membership's row number, internal to Rapport",
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "loyalty_membership_payments",
            ("plan_id", "amount_minor", "currency", "period_start", "period_end", "paid_at"),
            left_out={
                "id": "the payment's row number, internal to Rapport",
                "membership_id": "the membership's row number, internal to Rapport",
                "customer_id": _THEIR_ID,
            },
        ),
        ExportedColumns(
            "loyalty_checkouts",
            (
                "order_id",
                "effects",
                "plan_savings_minor",
                "tier_savings_minor",
                "coupon_savings_minor",
                "points_used",
                "placed_at",
            ),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "loyalty_coupons",
            (
                "code",
                "rule",
                "kind",
                "value",
                "min_subtotal_minor",
                "categories",
                "stackable",
                "issued_at",
                "expires_at",
                "used_at",
                "used_order_id",
            ),
            left_out={
                "transaction_id": _JOURNAL_ROW,
                "customer_id": _THEIR_ID,
                "issued_by": "who on the retailer's staff issued it (an admin's login or an API "
                "key): staff's data, not theirs",
            },
        ),
        ExportedColumns(
            "loyalty_referral_codes",
            ("code", "created_at"),
            left_out={"customer_id": _THEIR_ID},
        ),
        ExportedColumns(
            "loyalty_referrals",
            ("code", "referred_at", "completed_at"),
            left_out={
                "friend_id": "one side is the person (role says which), the other another "
                "person, whose id is theirs",
                "referrer_id": "as friend_id",
                "order_id": "the friend's first order: the friend's own data (a friend finds "
                "it under orders)",
            },
        ),
    )
}


def _rows(db: Session, table: str, *where: Any, order_by: Any = None) -> list[dict[str, Any]]:
    """The person's rows of ``table`` (its model's rows matching ``where``) as exported."""
    columns = EXPORTED_COLUMNS[table]
    model = _MODELS[table]
    query = select(model).where(*where)
    if order_by is not None:
        query = query.order_by(order_by)
    return [columns.row(row) for row in db.scalars(query)]


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """The member's account, every ledger movement with its lots, debts and awards, the
    activity that counts toward their tier, tier and its history, paid memberships and their
    payments, checkouts, coupons, referral codes and referrals: every column of every table
    that is about them but those ``EXPORTED_COLUMNS`` leaves out, saying why."""
    from rapport.loyalty.tiers.standing import member_tier

    ids = list(subject.customer_ids)
    tier = member_tier(db, customer_id=subject.customer_id)
    referrals = []
    for r in db.scalars(
        select(Referral)
        .where(Referral.referrer_id.in_(ids) | Referral.friend_id.in_(ids))
        .order_by(Referral.referred_at)
    ):
        shown = EXPORTED_COLUMNS["loyalty_referrals"].row(r)
        role = "referrer" if r.referrer_id in ids else "friend"
        referrals.append({"role": role, **shown})
    return {
        "loyalty": {
            "accounts": [
                EXPORTED_COLUMNS["loyalty_accounts"].row(a)
                for a in db.execute(select(ACCOUNTS).where(ACCOUNTS.c.account_id.in_(ids)))
            ],
            "transactions": [
                _without_staff(EXPORTED_COLUMNS["loyalty_transactions"].row(t))
                for t in db.execute(
                    select(TRANSACTIONS)
                    .where(TRANSACTIONS.c.customer_id.in_(ids))
                    .order_by(TRANSACTIONS.c.id)
                )
            ],
            "lots": _rows(db, "loyalty_lots", PointLot.customer_id.in_(ids), order_by=PointLot.id),
            "debts": _rows(
                db, "loyalty_debts", MemberDebt.customer_id.in_(ids), order_by=MemberDebt.id
            ),
            "awards": _rows(db, "loyalty_awards", Award.customer_id.in_(ids), order_by=Award.id),
            "qualifying": _rows(
                db,
                "loyalty_qualifying",
                QualifyingActivity.customer_id.in_(ids),
                order_by=QualifyingActivity.id,
            ),
            "tier": tier.tier_id,
            "tier_standing": _rows(db, "loyalty_tier_standings", TierStanding.customer_id.in_(ids)),
            "tier_history": _rows(
                db,
                "loyalty_tier_changes",
                TierChangeRecord.customer_id.in_(ids),
                order_by=TierChangeRecord.id.desc(),
            ),
            "memberships": _rows(
                db, "loyalty_memberships", Membership.customer_id.in_(ids), order_by=Membership.id
            ),
            "membership_payments": _rows(
                db,
                "loyalty_membership_payments",
                MembershipPayment.customer_id.in_(ids),
                order_by=MembershipPayment.id,
            ),
            "checkouts": _rows(
                db,
                "loyalty_checkouts",
                AppliedCheckout.customer_id.in_(ids),
                order_by=AppliedCheckout.placed_at,
            ),
            "coupons": _rows(
                db, "loyalty_coupons", Coupon.customer_id.in_(ids), order_by=Coupon.issued_at
            ),
            "referral_codes": _rows(
                db, "loyalty_referral_codes", ReferralCode.customer_id.in_(ids)
            ),
            "referrals": referrals,
        }
    }


def _without_staff(shown: dict[str, Any]) -> dict[str, Any]:
    """A journal row as exported: an adjustment's ``details.by`` (who on the retailer's staff
    made it) is staff's data, not theirs, and is left out."""
    details = shown.get("details")
    if isinstance(details, dict) and "by" in details:
        shown["details"] = {k: v for k, v in details.items() if k != "by"}
    return shown


_MODELS: dict[str, Any] = {
    "loyalty_lots": PointLot,
    "loyalty_debts": MemberDebt,
    "loyalty_awards": Award,
    "loyalty_qualifying": QualifyingActivity,
    "loyalty_tier_standings": TierStanding,
    "loyalty_tier_changes": TierChangeRecord,
    "loyalty_memberships": Membership,
    "loyalty_membership_payments": MembershipPayment,
    "loyalty_checkouts": AppliedCheckout,
    "loyalty_coupons": Coupon,
    "loyalty_referral_codes": ReferralCode,
}
