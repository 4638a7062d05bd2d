"""Paid membership, announcements and program analytics over HTTP: plans, joining, cancelling,
resuming and reading a membership with its value statement, announcements to members, and paying vs
free vs non-members. Commands take an ``Idempotency-Key``; routers parse, authorise, call one verb.

Included by ``loyalty.api`` under its ``/v1/loyalty`` prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.membership import analytics as segment_analytics
from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.membership import value as value_statements
from rapport.loyalty.models import (
    Announcement,
    Membership,
    MembershipPlan,
)
from rapport.loyalty.schemas import iso_or_none
from rapport.platform import clock
from rapport.platform.auth import AdminKey, ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import NotFound
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import MinorUnits, QueryAwareDatetime, StrictModel
from rapport.platform.service import Principal

router = APIRouter(tags=["loyalty membership and rewards"])

# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
CustomerId = customers.CustomerRefPath
Identifier = Annotated[str, Path(pattern=r"^[A-Za-z0-9._\-]{1,60}$")]


# ------------------------------------------------------------------------------ shapes


class PlanIn(StrictModel):
    name: str = Field(min_length=1, max_length=100, examples=["Rapport Plus"])
    fee_minor: MinorUnits = Field(examples=[499])
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    period: str = Field(pattern=r"^(month|year)$", examples=["month"])
    free_shipping: bool = Field(
        default=False, description="Free shipping for members; off unless given."
    )
    member_prices: bool = Field(
        default=False,
        description="Members pay the catalogue's member prices; off unless given.",
    )
    early_access_hours: int = Field(
        default=0, ge=0, le=2160, description="Hours of early access to sales; 0 unless given."
    )
    points_multiplier: float = Field(
        default=1.0, ge=1.0, le=10.0, description="Points earned are multiplied; 1 unless given."
    )
    active: bool = Field(default=True, description="Offered to new members.")


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


class CurrencyValueOut(BaseModel):
    currency: str
    fee_paid_minor: int
    savings_minor: int


class ValueOut(BaseModel):
    """Fees and savings in the plan's ``currency`` (``net_minor`` is savings less the fee,
    both in it); money in any other currency is listed apart in ``other_currencies``, never
    added or subtracted across currencies."""

    period_start: str
    period_end: str
    fee_paid_minor: int
    savings_minor: int
    net_minor: int
    orders_with_savings: int
    currency: str | None
    other_currencies: list[CurrencyValueOut] = Field(
        default_factory=list,
        description="Fees paid and plan savings on orders in other currencies, one entry each.",
    )


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


class AnnouncementIn(StrictModel):
    kind: str = Field(pattern=r"^(rule_change|new_benefit|early_access)$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    audience: str = Field(
        default="all",
        pattern=r"^(all|paying|tier:[A-Za-z0-9._\-]{1,55})$",
        description="all, paying, or tier:<tier id> of a tier the program has (422 naming"
        " audience, with the tiers there are, otherwise)",
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
    """Deliveries the campaigns domain queued: members who had consented to marketing on a
    channel when it was published."""
    sent_count: int
    """Deliveries sent so far (refreshed by the campaigns worker)."""
    queued_at: str | None


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
    row: Membership, *, benefits: bool, value: value_statements.ValueStatement | None = None
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
        cancelled_at=iso_or_none(row.cancelled_at),
        ended_at=iso_or_none(row.ended_at),
        value=ValueOut(
            period_start=value.period_start.isoformat(),
            period_end=value.period_end.isoformat(),
            fee_paid_minor=value.fee_paid_minor,
            savings_minor=value.savings_minor,
            net_minor=value.net_minor,
            orders_with_savings=value.orders_with_savings,
            currency=value.currency,
            other_currencies=[
                CurrencyValueOut(
                    currency=other.currency,
                    fee_paid_minor=other.fee_paid_minor,
                    savings_minor=other.savings_minor,
                )
                for other in value.other_currencies
            ],
        )
        if value is not None
        else None,
    )
    return out.model_dump(mode="json")


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
        sent_count=row.sent_count,
        queued_at=iso_or_none(row.queued_at),
    )


# ------------------------------------------------------------------------------ plans


@router.get("/plans")
def list_plans(db: DbSession, _key: ReadKey) -> list[PlanOut]:
    """Paid plans, cheapest first (retired ones too, marked ``active: false``)."""
    return [_plan_out(plan) for plan in membership_plans.list_plans(db)]


@router.put("/plans/{plan_id}")
def save_plan(plan_id: Identifier, body: PlanIn, db: DbSession, _key: AdminKey) -> PlanOut:
    """Create or change a plan. A new fee applies from each member's next renewal. A benefit
    left out is off (no free shipping, no member prices, no early access, points x1); a plan
    with members keeps its period and currency."""
    plan = membership_plans.save_plan(db, plan_id=plan_id, **body.model_dump())
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
    A customer who already has a membership that has not lapsed is 409 (for a cancelled one,
    saying when it lapses and that ``.../membership/resume`` keeps it)."""
    return run_idempotent(
        db,
        scope=f"loyalty.join:{key.id}",
        key=idempotency_key,
        request_body={"customer_id": customer_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: memberships.join(
            db,
            customer_id=customers.resolve_customer_ref(db, ref=customer_id),
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
    return _change_membership(
        db, "loyalty.cancel", memberships.cancel, customer_id, key, idempotency_key
    )


@router.post("/members/{customer_id}/membership/resume", response_model=MembershipOut)
def resume_membership(
    customer_id: CustomerId,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Take a cancellation back before the paid period ends: renewal on again, no new fee
    (the next is charged at the period's end). Resuming an active membership changes
    nothing; one whose period has ended is 409 saying when and why it lapsed (join again),
    and one on a retired plan is 409 saying when its benefits end (it cannot renew)."""
    return _change_membership(
        db, "loyalty.resume", memberships.resume, customer_id, key, idempotency_key
    )


def _change_membership(
    db: Session,
    scope: str,
    verb: Callable[..., Membership],
    customer_id: str,
    key: Principal,
    idempotency_key: str | None,
) -> JSONResponse:
    """Cancel or resume (``verb``) the customer's membership once per Idempotency-Key, its
    answer the membership with its benefits."""
    return run_idempotent(
        db,
        scope=f"{scope}:{key.id}",
        key=idempotency_key,
        request_body={"customer_id": customer_id},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: verb(
            db, customer_id=customers.resolve_customer_ref(db, ref=customer_id), before_commit=hook
        ),
        render=lambda row: _membership_out(row, benefits=True),
    )


@router.get("/members/{customer_id}/membership", response_model=MembershipOut)
def get_membership(customer_id: CustomerId, db: DbSession, _key: ReadKey) -> JSONResponse:
    """The member's membership with this period's value statement: the fee paid against
    what the plan saved on orders."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    row = memberships.get_membership(db, customer_id=customer_id)
    if row is None:
        raise NotFound(f"Customer {customer_id!r} has no membership", field="customer_id")
    value = value_statements.value_statement(db, customer_id=customer_id)
    current = memberships.current_membership(db, customer_id=customer_id)
    return JSONResponse(
        _membership_out(row, benefits=current is not None and current.id == row.id, value=value)
    )


# ------------------------------------------------------------------------------ rewards


# ------------------------------------------------------------------------------ announcements


@router.post(
    "/announcements",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnnouncementOut,
)
def create_announcement(
    body: AnnouncementIn, db: DbSession, key: AdminKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Store an announcement and publish it (``announcement_published``): the campaigns
    domain queues one delivery per member of the audience who consented to marketing on a
    channel, and sends them. Accepted: the counts fill in as the worker goes."""
    return run_idempotent(
        db,
        scope=f"loyalty.announcement:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        execute=lambda hook: announcements.create_announcement(
            db,
            kind=body.kind,
            title=body.title,
            body=body.body,
            audience=body.audience,
            created_by=f"api key {key.name}",
            before_commit=hook,
        ),
        render=lambda row: _announcement_out(row).model_dump(mode="json"),
    )


@router.get("/announcements")
def list_announcements(
    db: DbSession, _key: ReadKey, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[AnnouncementOut]:
    """Announcements, newest first, with how many deliveries are queued and sent."""
    return [_announcement_out(a) for a in announcements.list_announcements(db, limit=limit)]


# ------------------------------------------------------------------------------ analytics


@router.get("/analytics/membership")
def membership_analytics(
    db: DbSession,
    _key: ReadKey,
    since: Annotated[QueryAwareDatetime | None, Query()] = None,
    until: Annotated[QueryAwareDatetime | None, Query()] = None,
) -> AnalyticsOut:
    """Paying members vs free members vs non-members over a window (default the last 90
    days): customers, orders and spend per customer, retention against the window before."""
    report = segment_analytics.program_analytics(db, since=since, until=until)
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
