"""The events the loyalty domain appends to the log: one typed class per event type.

Their fields are the stored ``properties``; the customer, channel and time are the event's own
columns. Moments inside the properties are ISO 8601 strings, as the commands have always
stored them (``datetime.isoformat()``).
"""

from __future__ import annotations

from typing import ClassVar

from rapport.platform.domain_events import DomainEvent

__all__ = [
    "AnnouncementPublished",
    "MembershipCancelled",
    "MembershipJoined",
    "MembershipLapsed",
    "MembershipRenewed",
    "MembershipResumed",
    "PointsAdjusted",
    "PointsEarned",
    "PointsExpired",
    "PointsRedeemed",
    "PointsReversed",
    "ProgramChanged",
    "ReferralRecorded",
    "TierChanged",
]


# --- the points ledger ---------------------------------------------------------------------
# One event per journal transaction a command writes, appended in the command's transaction.
# ``points`` is the change to the member's available balance (negative when points leave it);
# ``balance`` the available balance after it.


class _PointsMovement(DomainEvent):
    """What every points event carries: the journal transaction and the points it moved."""

    transaction_id: int
    """The ledger's journal transaction (``loyalty_transactions.id``)."""
    points: int
    """The change to the member's available balance (negative when points leave it)."""


class PointsEarned(_PointsMovement):
    """Points credited to a member as a new lot, for an order, a rule or a reason (a
    member's debt from earlier returns is paid first: ``points`` is what was credited)."""

    event_type: ClassVar[str] = "points_earned"
    domain: ClassVar[str] = "loyalty"

    balance: int
    """The member's available points after it."""
    order_id: str | None
    rule_id: str | None
    """The earning rule that gave the points, if one did."""
    reason: str


class PointsRedeemed(_PointsMovement):
    """Points a member spent, taken from their oldest lots first."""

    event_type: ClassVar[str] = "points_redeemed"
    domain: ClassVar[str] = "loyalty"

    balance: int
    """The member's available points after it."""
    order_id: str | None
    reason: str


class PointsAdjusted(_PointsMovement):
    """A correction by staff: points added (a new lot) or removed (oldest lots first)."""

    event_type: ClassVar[str] = "points_adjusted"
    domain: ClassVar[str] = "loyalty"

    balance: int
    """The member's available points after it."""
    reason: str
    by: str | None = None
    """Who made it: the admin user's login, or ``api:<key name>`` for an API call."""


class PointsReversed(_PointsMovement):
    """A return took back points its order earned: ``points`` from the balance, the rest
    recorded as debt (``debt_change``) or, where the program allows no debt, written off."""

    event_type: ClassVar[str] = "points_reversed"
    domain: ClassVar[str] = "loyalty"

    balance: int
    """The member's available points after it."""
    order_id: str
    debt_change: int
    """Debt recorded by this return."""
    written_off: int
    """Points the member had already spent and the program wrote off (no debt allowed)."""


class PointsRefunded(_PointsMovement):
    """A return of an order paid partly with points gave back the points paid for the part
    returned, as a new lot (debt from earlier returns is paid first)."""

    event_type: ClassVar[str] = "points_refunded"
    domain: ClassVar[str] = "loyalty"

    balance: int
    """The member's available points after it."""
    order_id: str
    debt_change: int
    """Debt the refunded points paid off (zero or negative)."""


class PointsExpired(_PointsMovement):
    """A member's lots past their date expired (one event per member and expiry run)."""

    event_type: ClassVar[str] = "points_expired"
    domain: ClassVar[str] = "loyalty"


# --- tiers -----------------------------------------------------------------------------------


class TierChanged(DomainEvent):
    """A member moved on the tier ladder: up as qualifying activity came in, or down at a
    review after the grace period (a renewal in the same tier is not a change). Appended in
    the transaction that records the change in the tier history."""

    event_type: ClassVar[str] = "tier_changed"
    domain: ClassVar[str] = "loyalty"

    from_tier: str
    """The tier id the member held (the base tier's for a member placed the first time)."""
    to_tier: str
    """The tier id the member holds now."""
    change: str
    """``upgrade`` or ``downgrade``."""
    qualifying_value: int
    """The member's qualifying value over the window (spend in minor units or points, by the
    ladder's basis)."""
    review_at: str
    """When the new tier is next reviewed (ISO 8601)."""
    reason: str | None = None
    """Why, when the move was not a review's: ``order cancelled`` for a tier taken back
    because the order that lifted the member to it was cancelled."""


# --- the program's configuration -----------------------------------------------------------


class ProgramChanged(DomainEvent):
    """An operator saved a new version of the earning rules, the tier ladder or the checkout
    caps (no customer: the program's own fact)."""

    event_type: ClassVar[str] = "loyalty_program_changed"
    domain: ClassVar[str] = "loyalty"

    kind: str
    """``rules``, ``tiers`` or ``checkout``."""
    version: int
    """The id of the saved version."""
    changed_by: str
    """Who saved it: an admin's email or ``api key <name>``."""
    note: str


# --- paid membership -----------------------------------------------------------------------


class MembershipJoined(DomainEvent):
    """A customer started a paid membership: benefits from now, the first period's fee
    recorded as revenue."""

    event_type: ClassVar[str] = "membership_joined"
    domain: ClassVar[str] = "loyalty"

    plan_id: str
    fee_minor: int
    currency: str
    period_end: str
    """When the first paid period ends (ISO 8601)."""


class MembershipRenewed(DomainEvent):
    """The renewal job charged a membership's next period (once per period)."""

    event_type: ClassVar[str] = "membership_renewed"
    domain: ClassVar[str] = "loyalty"

    plan_id: str
    fee_minor: int
    currency: str
    period_start: str
    """ISO 8601."""
    period_end: str
    """ISO 8601."""


class MembershipCancelled(DomainEvent):
    """A member stopped renewal; the benefits stay until the paid period ends."""

    event_type: ClassVar[str] = "membership_cancelled"
    domain: ClassVar[str] = "loyalty"

    plan_id: str
    benefits_until: str
    """The end of the period already paid for (ISO 8601)."""


class MembershipResumed(DomainEvent):
    """A cancelled member took the cancellation back before the paid period ended: renewal
    is on again, with no new fee (the period already paid runs on)."""

    event_type: ClassVar[str] = "membership_resumed"
    domain: ClassVar[str] = "loyalty"

    plan_id: str
    renews_at: str
    """The end of the period already paid for, when it next renews (ISO 8601)."""


class MembershipLapsed(DomainEvent):
    """A membership ended: ended by staff, or a cancelled (or retired plan's) membership
    reached the end of its paid period."""

    event_type: ClassVar[str] = "membership_lapsed"
    domain: ClassVar[str] = "loyalty"

    plan_id: str
    reason: str


# --- referrals -----------------------------------------------------------------------------


class ReferralRecorded(DomainEvent):
    """A member's code was used by a friend (the event is the referrer's); both sides earn
    when the friend completes a first purchase."""

    event_type: ClassVar[str] = "referral_recorded"
    domain: ClassVar[str] = "loyalty"

    friend_id: str
    code: str
    """The referrer's code the friend used."""


# --- announcements -------------------------------------------------------------------------


class AnnouncementPublished(DomainEvent):
    """An operator published a program announcement (a rule change, a new benefit, early
    access to a sale) to an audience of members, or published it again for members who joined
    since (no customer: the program's own fact). The campaigns domain sends it to the members
    who consented to marketing on a channel."""

    event_type: ClassVar[str] = "announcement_published"
    domain: ClassVar[str] = "loyalty"

    announcement_id: int
    kind: str
    """``rule_change``, ``new_benefit`` or ``early_access``."""
    audience: str
    """``all`` (every member), ``paying`` (a paid plan's benefits now) or ``tier:<tier id>``."""
