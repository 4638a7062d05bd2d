"""Paid membership, rewards and coupons, referrals, announcements and program analytics
over HTTP. Commands take an ``Idempotency-Key``; routers parse, authorise, call one verb.

Included by ``loyalty.api`` under its ``/v1/loyalty`` prefix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from rapport.loyalty import announcements, membership, referrals
from rapport.loyalty.models import (
    Announcement,
    Coupon,
    Membership,
    MembershipPlan,
    Referral,
    Reward,
)
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.schemas import CategoryWarningOut
from rapport.platform import clock
from rapport.platform.auth import AdminKey, ReadKey, WriteKey, admit_coupon_codes
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import MinorUnits, StrictModel

router = APIRouter(tags=["loyalty membership and rewards"])

CustomerId = Annotated[str, Path(min_length=1, max_length=40, description="cus_…")]
Identifier = Annotated[str, Path(pattern=r"^[A-Za-z0-9._\-]{1,60}$")]
Code = Annotated[str, Field(min_length=1, max_length=40)]


def _iso(value: datetime | None) -> str | None:
    return clock.as_utc(value).isoformat() if value is not None else None


# ------------------------------------------------------------------------------ shapes


class PlanIn(StrictModel):
    name: str = Field(min_length=1, max_length=100, examples=["Rapport Plus"])
    fee_minor: MinorUnits = Field(examples=[499])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    period: str = Field(pattern=r"^(month|year)$", examples=["month"])
    free_shipping: bool = True
    member_prices: bool = True
    early_access_hours: int = Field(default=48, ge=0, le=2160)
    points_multiplier: float = Field(default=1.0, ge=1.0, le=10.0)
    active: bool = True


class PlanOut(BaseModel):
    plan_id: str
    name: str
    fee_minor: int
    currency: str
    period: str
    free_shipping: bool
    member_prices: bool
    early_access_hours: int
    points_multiplier: float
    active: bool


class JoinIn(StrictModel):
    plan_id: str = Field(pattern=r"^[A-Za-z0-9._\-]{1,60}$", examples=["plus"])
    auto_renew: bool = True
    channel: str = Field(default="web", pattern=r"^(web|app|store|call_center)$")


class ValueOut(BaseModel):
    period_start: str
    period_end: str
    fee_paid_minor: int
    savings_minor: int
    net_minor: int
    orders_with_savings: int
    currency: str | None


class MembershipOut(BaseModel):
    membership_id: int
    customer_id: str
    plan_id: str
    status: str
    benefits: bool
    started_at: str
    current_period_start: str
    current_period_end: str
    auto_renew: bool
    cancelled_at: str | None
    ended_at: str | None
    value: ValueOut | None = None


class RewardIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["10 EUR off"])
    points_cost: int = Field(ge=1, le=100_000_000, examples=[1000])
    coupon_kind: str = Field(pattern=r"^(percent|amount)$", examples=["amount"])
    coupon_value: int = Field(ge=1, le=100_000_000, examples=[1000])
    min_subtotal_minor: MinorUnits = 0
    categories: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    stackable: bool = True
    valid_days: int = Field(default=90, ge=1, le=reward_coupons.MAX_VALID_DAYS)
    active: bool = True


class RewardOut(BaseModel):
    reward_id: str
    name: str
    points_cost: int
    coupon_kind: str
    coupon_value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool
    valid_days: int
    active: bool
    warnings: list[CategoryWarningOut] = Field(
        default_factory=list,
        description="When saved: categories named that no product is in (not refused).",
    )


class CouponOut(BaseModel):
    code: str
    customer_id: str | None
    rule: str
    kind: str
    value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool
    issued_at: str
    expires_at: str
    used_at: str | None
    used_order_id: str | None


class ValidateIn(StrictModel):
    customer_id: str | None = Field(default=None, min_length=1, max_length=40)
    codes: list[Code] = Field(min_length=1, max_length=20)
    at: AwareDatetime | None = None


class ValidCouponOut(BaseModel):
    code: str
    rule: str
    kind: str
    value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool


class ValidateOut(BaseModel):
    valid: list[ValidCouponOut]
    refused: dict[str, str]


class ReferralCodeOut(BaseModel):
    customer_id: str
    code: str


class ReferIn(StrictModel):
    code: Code
    friend_id: str = Field(min_length=1, max_length=40)


class ReferralOut(BaseModel):
    friend_id: str
    referrer_id: str
    code: str
    referred_at: str
    completed_at: str | None
    order_id: str | None


class AnnouncementIn(StrictModel):
    kind: str = Field(pattern=r"^(rule_change|new_benefit|early_access)$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    audience: str = Field(
        default="all",
        pattern=r"^(all|paying|tier:[A-Za-z0-9._\-]{1,55})$",
        description="all, paying, or tier:<tier id>",
    )


class AnnouncementOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    audience: str
    created_at: str
    created_by: str
    queued_count: int
    queued_at: str | None


class AnnouncementQueuedOut(BaseModel):
    announcement: AnnouncementOut
    job_id: int


class SegmentOut(BaseModel):
    segment: str
    customers: int
    buyers: int
    orders: int
    spend_minor: int
    spend_per_customer_minor: int
    orders_per_customer: float
    previous_buyers: int
    retained: int
    retention: float | None


class AnalyticsOut(BaseModel):
    since: str
    until: str
    segments: list[SegmentOut]


# ------------------------------------------------------------------------------ renderers


def _plan_out(plan: MembershipPlan) -> PlanOut:
    return PlanOut(
        plan_id=plan.plan_id,
        name=plan.name,
        fee_minor=plan.fee_minor,
        currency=plan.currency,
        period=plan.period,
        free_shipping=plan.free_shipping,
        member_prices=plan.member_prices,
        early_access_hours=plan.early_access_hours,
        points_multiplier=plan.points_multiplier,
        active=plan.active,
    )


def _membership_out(
    row: Membership, *, benefits: bool, value: membership.ValueStatement | None = None
) -> dict[str, Any]:
    out = MembershipOut(
        membership_id=row.id,
        customer_id=row.customer_id,
        plan_id=row.plan_id,
        status=row.status,
        benefits=benefits,
        started_at=clock.as_utc(row.started_at).isoformat(),
        current_period_start=clock.as_utc(row.current_period_start).isoformat(),
        current_period_end=clock.as_utc(row.current_period_end).isoformat(),
        auto_renew=row.auto_renew,
        cancelled_at=_iso(row.cancelled_at),
        ended_at=_iso(row.ended_at),
        value=ValueOut(
            period_start=value.period_start.isoformat(),
            period_end=value.period_end.isoformat(),
            fee_paid_minor=value.fee_paid_minor,
            savings_minor=value.savings_minor,
            net_minor=value.net_minor,
            orders_with_savings=value.orders_with_savings,
            currency=value.currency,
        )
        if value is not None
        else None,
    )
    return out.model_dump(mode="json")


def _reward_out(reward: Reward) -> RewardOut:
    return RewardOut(
        reward_id=reward.reward_id,
        name=reward.name,
        points_cost=reward.points_cost,
        coupon_kind=reward.coupon_kind,
        coupon_value=reward.coupon_value,
        min_subtotal_minor=reward.min_subtotal_minor,
        categories=list(reward.categories),
        stackable=reward.stackable,
        valid_days=reward.valid_days,
        active=reward.active,
    )


def _coupon_out(coupon: Coupon) -> dict[str, Any]:
    return CouponOut(
        code=coupon.code,
        customer_id=coupon.customer_id,
        rule=coupon.rule,
        kind=coupon.kind,
        value=coupon.value,
        min_subtotal_minor=coupon.min_subtotal_minor,
        categories=list(coupon.categories),
        stackable=coupon.stackable,
        issued_at=clock.as_utc(coupon.issued_at).isoformat(),
        expires_at=clock.as_utc(coupon.expires_at).isoformat(),
        used_at=_iso(coupon.used_at),
        used_order_id=coupon.used_order_id,
    ).model_dump(mode="json")


def _referral_out(referral: Referral) -> dict[str, Any]:
    return ReferralOut(
        friend_id=referral.friend_id,
        referrer_id=referral.referrer_id,
        code=referral.code,
        referred_at=clock.as_utc(referral.referred_at).isoformat(),
        completed_at=_iso(referral.completed_at),
        order_id=referral.order_id,
    ).model_dump(mode="json")


def _announcement_out(row: Announcement) -> AnnouncementOut:
    return AnnouncementOut(
        id=row.id,
        kind=row.kind,
        title=row.title,
        body=row.body,
        audience=row.audience,
        created_at=clock.as_utc(row.created_at).isoformat(),
        created_by=row.created_by,
        queued_count=row.queued_count,
        queued_at=_iso(row.queued_at),
    )


# ------------------------------------------------------------------------------ plans


@router.get("/plans")
def list_plans(db: DbSession, _key: ReadKey) -> list[PlanOut]:
    """Paid plans, cheapest first (retired ones too, marked ``active: false``)."""
    return [_plan_out(plan) for plan in membership.list_plans(db)]


@router.put("/plans/{plan_id}")
def save_plan(plan_id: Identifier, body: PlanIn, db: DbSession, _key: AdminKey) -> PlanOut:
    """Create or change a plan. A new fee applies from each member's next renewal."""
    plan = membership.save_plan(db, plan_id=plan_id, **body.model_dump())
    return _plan_out(plan)


# ------------------------------------------------------------------------------ membership


@router.post(
    "/members/{customer_id}/membership",
    status_code=status.HTTP_201_CREATED,
    response_model=MembershipOut,
)
def join_membership(
    customer_id: CustomerId,
    body: JoinIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Join a paid plan: benefits at once, the first period's fee recorded as revenue.
    A customer who already has a membership that has not lapsed is 409."""
    return run_idempotent(
        db,
        scope=f"loyalty.join:{key.id}:{customer_id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: membership.join(
            db,
            customer_id=customer_id,
            plan_id=body.plan_id,
            auto_renew=body.auto_renew,
            channel=body.channel,
            before_commit=hook,
        ),
        render=lambda row: _membership_out(row, benefits=True),
    )


@router.post("/members/{customer_id}/membership/cancel", response_model=MembershipOut)
def cancel_membership(
    customer_id: CustomerId,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Stop renewal; benefits stay until the end of the period already paid for."""
    return run_idempotent(
        db,
        scope=f"loyalty.cancel:{key.id}:{customer_id}",
        key=idempotency_key,
        request_body={},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: membership.cancel(db, customer_id=customer_id, before_commit=hook),
        render=lambda row: _membership_out(row, benefits=True),
    )


@router.get("/members/{customer_id}/membership", response_model=MembershipOut)
def get_membership(customer_id: CustomerId, db: DbSession, _key: ReadKey) -> JSONResponse:
    """The member's membership with this period's value statement: the fee paid against
    what the plan saved on orders."""
    row = membership.get_membership(db, customer_id=customer_id)
    if row is None:
        raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
    value = membership.value_statement(db, customer_id=customer_id)
    current = membership.current_membership(db, customer_id=customer_id)
    return JSONResponse(
        _membership_out(row, benefits=current is not None and current.id == row.id, value=value)
    )


# ------------------------------------------------------------------------------ rewards


@router.get("/rewards")
def list_rewards(
    db: DbSession, _key: ReadKey, active_only: Annotated[bool, Query()] = False
) -> list[RewardOut]:
    """The reward catalogue, cheapest first."""
    return [_reward_out(r) for r in reward_catalogue.list_rewards(db, active_only=active_only)]


@router.put("/rewards/{reward_id}")
def save_reward(reward_id: Identifier, body: RewardIn, db: DbSession, _key: AdminKey) -> RewardOut:
    """Create or change a reward. Coupons already issued keep their terms. A category no
    product is in is saved, with a warning naming the field."""
    out = _reward_out(reward_catalogue.save_reward(db, reward_id=reward_id, **body.model_dump()))
    out.warnings = [
        CategoryWarningOut(field=w.field, detail=w.detail)
        for w in reward_catalogue.category_warnings(db, categories=out.categories)
    ]
    return out


@router.post(
    "/members/{customer_id}/rewards/{reward_id}/redeem",
    status_code=status.HTTP_201_CREATED,
    response_model=CouponOut,
)
def redeem_reward(
    customer_id: CustomerId,
    reward_id: Identifier,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Spend the reward's points and answer its single-use coupon. Not enough points is 409
    ``insufficient-points``, and no coupon is issued."""
    return run_idempotent(
        db,
        scope=f"loyalty.redeem_reward:{key.id}:{customer_id}",
        key=idempotency_key,
        request_body={"reward_id": reward_id},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: reward_coupons.redeem_reward(
            db, customer_id=customer_id, reward_id=reward_id, before_commit=hook
        ),
        render=_coupon_out,
    )


@router.get("/members/{customer_id}/coupons")
def member_coupons(
    customer_id: CustomerId,
    db: DbSession,
    _key: ReadKey,
    include_used: Annotated[bool, Query()] = False,
) -> list[CouponOut]:
    """The member's coupons, soonest to expire first."""
    return [
        CouponOut.model_validate(_coupon_out(c))
        for c in reward_coupons.customer_coupons(
            db, customer_id=customer_id, include_used=include_used
        )
    ]


@router.post("/coupons/validate")
def validate_coupons(
    request: Request, body: ValidateIn, db: DbSession, key: ReadKey
) -> ValidateOut:
    """Which codes the customer may use now (as checkout will apply them), and why each
    other code is refused: unknown, expired, used, belongs to another customer, given
    twice. Changes nothing. Each code counts toward the key's coupon lookup limit."""
    admit_coupon_codes(request, key, codes=len(body.codes))
    valid, refused = reward_coupons.validate_coupons(
        db, customer_id=body.customer_id, codes=body.codes, at=body.at
    )
    return ValidateOut(
        valid=[
            ValidCouponOut(
                code=c.code,
                rule=c.rule,
                kind=c.kind,
                value=c.value,
                min_subtotal_minor=c.min_subtotal_minor,
                categories=list(c.categories),
                stackable=c.stackable,
            )
            for c in valid
        ],
        refused=refused,
    )


# ------------------------------------------------------------------------------ referrals


@router.get("/members/{customer_id}/referral-code")
def referral_code(customer_id: CustomerId, db: DbSession, _key: ReadKey) -> ReferralCodeOut:
    """The member's referral code (created on the first ask, then always the same)."""
    record = referrals.referral_code(db, customer_id=customer_id)
    return ReferralCodeOut(customer_id=record.customer_id, code=record.code)


@router.post("/referrals", status_code=status.HTTP_201_CREATED, response_model=ReferralOut)
def refer(
    body: ReferIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record a friend referred with a member's code. Self-referral and loops are 422; a
    friend already referred, or who has already bought, is 409."""
    return run_idempotent(
        db,
        scope=f"loyalty.refer:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: referrals.refer(
            db, code=body.code, friend_id=body.friend_id, before_commit=hook
        ),
        render=_referral_out,
    )


# ------------------------------------------------------------------------------ announcements


@router.post(
    "/announcements",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnnouncementQueuedOut,
)
def create_announcement(body: AnnouncementIn, db: DbSession, key: AdminKey) -> JSONResponse:
    """Store an announcement and queue the job that writes one delivery per member of the
    audience (the campaigns channels send them). Answers the job's id."""
    row, job_id = announcements.create_announcement(
        db,
        kind=body.kind,
        title=body.title,
        body=body.body,
        audience=body.audience,
        created_by=f"api key {key.name}",
    )
    return JSONResponse(
        AnnouncementQueuedOut(announcement=_announcement_out(row), job_id=job_id).model_dump(
            mode="json"
        ),
        status_code=status.HTTP_202_ACCEPTED,
    )


@router.get("/announcements")
def list_announcements(
    db: DbSession, _key: ReadKey, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[AnnouncementOut]:
    """Announcements, newest first, with how many deliveries are queued."""
    return [_announcement_out(a) for a in announcements.list_announcements(db, limit=limit)]


# ------------------------------------------------------------------------------ analytics


@router.get("/analytics/membership")
def membership_analytics(
    db: DbSession,
    _key: ReadKey,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
) -> AnalyticsOut:
    """Paying members vs free members vs non-members over a window (default the last 90
    days): customers, orders and spend per customer, retention against the window before."""
    report = membership.program_analytics(db, since=since, until=until)
    return AnalyticsOut(
        since=report.since.isoformat(),
        until=report.until.isoformat(),
        segments=[
            SegmentOut(
                segment=s.segment,
                customers=s.customers,
                buyers=s.buyers,
                orders=s.orders,
                spend_minor=s.spend_minor,
                spend_per_customer_minor=s.spend_per_customer_minor,
                orders_per_customer=s.orders_per_customer,
                previous_buyers=s.previous_buyers,
                retained=s.retained,
                retention=s.retention,
            )
            for s in report.segments
        ],
    )
