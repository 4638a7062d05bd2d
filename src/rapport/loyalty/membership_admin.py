"""Admin pages for paid membership and rewards: plans, membership analytics (paying vs free
vs non-members), the reward catalogue, and announcements with their queue button.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked
and call the same verbs as the API. A save changes only the settings its form carried: each
plan and reward has an edit page showing every setting, and a setting a form leaves out keeps
its stored value.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from rapport.loyalty import announcements, membership
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    render,
    settings_after_save,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem

NAV = [NavItem("Membership", "/admin/loyalty/plans")]
router = APIRouter(include_in_schema=False)

SEGMENT_LABELS = {"paying": "Paying members", "free": "Free members", "non_member": "Non-members"}


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'message': message})}", status_code=303)


@router.get("/plans", response_class=HTMLResponse)
def plans_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    return render(
        request,
        "loyalty/membership_plans.html",
        {
            "user": user,
            "plans": membership.list_plans(db),
            "paying": len(membership.paying_members(db)),
            "message": message,
        },
    )


class PlanForm(BaseModel):
    """A plan's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=100)
    fee_minor: int = Field(default=0, ge=0, le=membership.MAX_FEE_MINOR)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    period: Literal["month", "year"] = "month"
    free_shipping: bool = True
    member_prices: bool = True
    early_access_hours: int = Field(default=48, ge=0, le=24 * 90)
    points_multiplier: float = Field(default=1.0, ge=1.0, le=10.0)
    active: bool = True

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


PLAN_NEEDS = ("name", "fee_minor", "currency", "period")


@router.get("/plans/{plan_id}", response_class=HTMLResponse)
def plan_page(request: Request, plan_id: str, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    plan = membership.get_plan(db, plan_id=plan_id)
    return render(
        request,
        "loyalty/membership_plan_edit.html",
        {"user": user, "plan": plan, "plan_id": plan_id},
        status_code=200 if plan is not None else 404,
    )


@router.post("/plans", dependencies=[CsrfChecked])
def save_plan(db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    plan_id = fields.get("plan_id", "").strip()
    try:
        settings = settings_after_save(
            PlanForm,
            fields,
            membership.get_plan(db, plan_id=plan_id),
            needs=PLAN_NEEDS,
            noun="Plan",
            id_field="plan_id",
        )
        membership.save_plan(db, plan_id=plan_id, **settings)
    except Problem as problem:
        return _back("/admin/loyalty/plans", problem.detail)
    return _back("/admin/loyalty/plans", f"Plan {plan_id} saved")


@router.get("/membership-analytics", response_class=HTMLResponse)
def analytics_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    report = membership.program_analytics(db)
    chart = {
        "type": "bar",
        "data": {
            "labels": [SEGMENT_LABELS[s.segment] for s in report.segments],
            "datasets": [
                {
                    "label": "Spend per customer",
                    "data": [s.spend_per_customer_minor / 100 for s in report.segments],
                    "backgroundColor": "#00a86b",
                    "yAxisID": "spend",
                },
                {
                    "label": "Orders per customer",
                    "data": [s.orders_per_customer for s in report.segments],
                    "backgroundColor": "#3b82f6",
                    "yAxisID": "orders",
                },
            ],
        },
        "options": {
            "scales": {
                "spend": {"type": "linear", "position": "left", "beginAtZero": True},
                "orders": {
                    "type": "linear",
                    "position": "right",
                    "beginAtZero": True,
                    "grid": {"drawOnChartArea": False},
                },
            }
        },
    }
    return render(
        request,
        "loyalty/membership_analytics.html",
        {"user": user, "report": report, "labels": SEGMENT_LABELS, "chart": chart},
    )


@router.get("/rewards", response_class=HTMLResponse)
def rewards_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    catalogue = reward_catalogue.list_rewards(db)
    # Categories a reward names that no product is in: kept, but said (it matches nothing yet).
    warnings = [
        (reward.reward_id, warning)
        for reward in catalogue
        for warning in reward_catalogue.category_warnings(db, categories=reward.categories)
    ]
    return render(
        request,
        "loyalty/membership_rewards.html",
        {"user": user, "rewards": catalogue, "message": message, "warnings": warnings},
    )


def _category_list(value: object) -> object:
    # The form shows the categories as one text field, separated by commas.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class RewardForm(BaseModel):
    """A reward's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=200)
    points_cost: int = Field(default=1, ge=1, le=100_000_000)
    coupon_kind: Literal["amount", "percent"] = "amount"
    coupon_value: int = Field(default=1, ge=1, le=100_000_000)
    min_subtotal_minor: int = Field(default=0, ge=0, le=100_000_000)
    categories: Annotated[list[str], BeforeValidator(_category_list)] = Field(
        default_factory=list, max_length=100
    )
    stackable: bool = True
    valid_days: int = Field(default=90, ge=1, le=reward_coupons.MAX_VALID_DAYS)
    active: bool = True


REWARD_NEEDS = ("name", "points_cost", "coupon_kind", "coupon_value")


@router.get("/rewards/{reward_id}", response_class=HTMLResponse)
def reward_page(
    request: Request, reward_id: str, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    reward = reward_catalogue.get_reward(db, reward_id=reward_id)
    return render(
        request,
        "loyalty/membership_reward_edit.html",
        {"user": user, "reward": reward, "reward_id": reward_id},
        status_code=200 if reward is not None else 404,
    )


@router.post("/rewards", dependencies=[CsrfChecked])
def save_reward(db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    reward_id = fields.get("reward_id", "").strip()
    try:
        settings = settings_after_save(
            RewardForm,
            fields,
            reward_catalogue.get_reward(db, reward_id=reward_id),
            needs=REWARD_NEEDS,
            noun="Reward",
            id_field="reward_id",
        )
        reward_catalogue.save_reward(db, reward_id=reward_id, **settings)
    except Problem as problem:
        return _back("/admin/loyalty/rewards", problem.detail)
    return _back("/admin/loyalty/rewards", f"Reward {reward_id} saved")


@router.get("/announcements", response_class=HTMLResponse)
def announcements_page(
    request: Request, db: DbSession, user: CurrentAdmin, message: str = ""
) -> HTMLResponse:
    return render(
        request,
        "loyalty/membership_announcements.html",
        {
            "user": user,
            "announcements": announcements.list_announcements(db),
            "kinds": announcements.KINDS,
            "message": message,
        },
    )


@router.post("/announcements", dependencies=[CsrfChecked])
def create_announcement(
    db: DbSession,
    user: CurrentAdmin,
    kind: Annotated[str, Form()],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    body: Annotated[str, Form(min_length=1, max_length=4000)],
    audience: Annotated[str, Form(min_length=1, max_length=60)] = "all",
) -> Response:
    try:
        _, job_id = announcements.create_announcement(
            db, kind=kind, title=title, body=body, audience=audience, created_by=user.email
        )
    except Problem as problem:
        return _back("/admin/loyalty/announcements", problem.detail)
    return _back("/admin/loyalty/announcements", f"Announcement queued (job {job_id})")


@router.post("/announcements/{announcement_id}/queue", dependencies=[CsrfChecked])
def queue_announcement(announcement_id: int, db: DbSession, user: CurrentAdmin) -> Response:
    try:
        job_id = announcements.requeue_announcement(db, announcement_id=announcement_id)
    except Problem as problem:
        return _back("/admin/loyalty/announcements", problem.detail)
    return _back("/admin/loyalty/announcements", f"Announcement queued (job {job_id})")
