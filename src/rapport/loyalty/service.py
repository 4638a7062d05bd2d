"""The loyalty domain's face: the verbs and reads other code calls to move or read points.

Every command (``earn``, ``redeem``, ``adjust``, ``reverse_for_return``, ``expire_lots``) owns its
transaction, writes a journal transaction whose entries sum to zero, keeps the member's lots and
running balance in step, appends its event to the log, and commits.

Concurrency: every command that changes a member's points first takes that member's account row
(a guarded ``UPDATE … WHERE balance >= n`` for redemption, ``SELECT … FOR UPDATE`` elsewhere),
so one member's commands run one at a time on PostgreSQL; on SQLite every write transaction
begins ``IMMEDIATE`` and writers are already serialised. The database refuses a negative
balance (a CHECK constraint) as a last line of defence. Batch jobs lock members in key order.

The code lives in the ledger sub-package (``loyalty.ledger``: accounts, journal, lots,
movements, returns, expiry, the PostgreSQL statements, reads and checks), ``loyalty.benefits``
and ``loyalty.privacy``; this module only names what other code may use.
"""

from __future__ import annotations

from rapport.loyalty.audiences import membership_audience, points_audience, tier_audience
from rapport.loyalty.benefits import MemberBenefits, member_benefits
from rapport.loyalty.goodwill import GoodwillRoom, give_goodwill, goodwill_room
from rapport.loyalty.ledger.balances import (
    Member,
    Movement,
    OpenLot,
    balance,
    balances,
    get_member,
    statement,
)
from rapport.loyalty.ledger.expiry import ExpiryRun, expire_lots
from rapport.loyalty.ledger.invariants import invariant_violations
from rapport.loyalty.ledger.journal import (
    MANUAL_POINTS_MAX,
    MAX_POINTS_PER_COMMAND,
    BeforeCommit,
    Posted,
)
from rapport.loyalty.ledger.liability import Liability, liability
from rapport.loyalty.ledger.movements import InsufficientPoints, adjust, earn, redeem
from rapport.loyalty.ledger.one_statement import earn_now, redeem_now
from rapport.loyalty.ledger.redemptions import points_redeemed_in_window
from rapport.loyalty.ledger.returns import (
    OrderPoints,
    order_points,
    points_paid,
    refund_points_paid,
    reverse_for_return,
)
from rapport.loyalty.ledger.settings import (
    GOODWILL_WINDOW_DAYS_MAX,
    GOODWILL_WINDOW_POINTS_MAX,
    Program,
    add_months,
    configure_program,
    get_program,
)
from rapport.loyalty.privacy import PRIVACY_TABLES, erase_customer_data, export_customer_data

__all__ = [
    "GOODWILL_WINDOW_DAYS_MAX",
    "GOODWILL_WINDOW_POINTS_MAX",
    "MANUAL_POINTS_MAX",
    "MAX_POINTS_PER_COMMAND",
    "PRIVACY_TABLES",
    "BeforeCommit",
    "ExpiryRun",
    "GoodwillRoom",
    "InsufficientPoints",
    "Liability",
    "Member",
    "MemberBenefits",
    "Movement",
    "OpenLot",
    "OrderPoints",
    "Posted",
    "Program",
    "add_months",
    "adjust",
    "balance",
    "balances",
    "configure_program",
    "earn",
    "earn_now",
    "erase_customer_data",
    "expire_lots",
    "export_customer_data",
    "get_member",
    "get_program",
    "give_goodwill",
    "goodwill_room",
    "invariant_violations",
    "liability",
    "member_benefits",
    "order_points",
    "points_paid",
    "points_redeemed_in_window",
    "redeem",
    "redeem_now",
    "refund_points_paid",
    "reverse_for_return",
    "statement",
]

# --- Program, tiers, membership, rewards and checkout: what other code uses of them. -------
from rapport.loyalty.earning.apologies import apology_points, apology_rule_ids
from rapport.loyalty.membership.announcements import (
    announcement_audience,
    get_announcement,
    record_delivery_counts,
)
from rapport.loyalty.membership.lifecycle import current_plan, join
from rapport.loyalty.membership.plans import save_plan
from rapport.loyalty.program.versions import tier_policy
from rapport.loyalty.rewards.catalogue import save_reward
from rapport.loyalty.rewards.coupons import redeem_reward
from rapport.loyalty.rewards.order_checkout import (
    MEMBER_PRICE_CHANNEL,
    CartItem,
    apply_to_order,
)
from rapport.loyalty.tiers.reviews import review_due_tiers
from rapport.loyalty.tiers.standing import member_tier, tier_names, tiers_by_customer

__all__ += [
    "MEMBER_PRICE_CHANNEL",
    "CartItem",
    "announcement_audience",
    "apology_points",
    "apology_rule_ids",
    "apply_to_order",
    "current_plan",
    "get_announcement",
    "join",
    "member_tier",
    "record_delivery_counts",
    "redeem_reward",
    "review_due_tiers",
    "save_plan",
    "save_reward",
    "tier_names",
    "tier_policy",
    "tiers_by_customer",
]
# --- end of program, tiers, membership, rewards and checkout ------------------------------

# --- audiences: customer ids as SELECTs, for campaigns' segments ---
__all__ += ["membership_audience", "points_audience", "tier_audience"]

# --- analytics: who the members are, and who moved points lately ---
from datetime import datetime  # noqa: E402

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from rapport.loyalty.ledger.tables import ACCOUNTS, TRANSACTIONS  # noqa: E402


def member_ids(db: Session, *, moved_since: datetime | None = None) -> set[str]:
    """The members (customers with a points account, opened on their first points); with
    ``moved_since``, only those with a points movement (earned, redeemed, expired, adjusted,
    reversed) at or after it. Read-only (the admin overview)."""
    if moved_since is None:
        query = select(ACCOUNTS.c.account_id).where(ACCOUNTS.c.kind == "member")
    else:
        query = (
            select(TRANSACTIONS.c.customer_id)
            .where(TRANSACTIONS.c.created_at >= moved_since)
            .join(ACCOUNTS, ACCOUNTS.c.account_id == TRANSACTIONS.c.customer_id)
            .where(ACCOUNTS.c.kind == "member")
            .distinct()
        )
    return {str(found) for found in db.scalars(query)}


from rapport.loyalty.overview import LifetimeFlows, lifetime_flows  # noqa: E402

__all__ += ["LifetimeFlows", "lifetime_flows", "member_ids"]
