"""Admin pages for paid membership: plans, membership analytics (paying vs free vs
non-members), and announcements with their queue button.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked
and call the same verbs as the API. A save changes only the settings its form carried: each
plan has an edit page showing every setting, and a setting a form leaves out keeps
its stored value.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rapport.loyalty.membership import analytics as segment_analytics
from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
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

NAV = [NavItem("Paid membership", "/admin/loyalty/plans", "Loyalty")]
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
            "plans": membership_plans.list_plans(db),
            "paying": len(memberships.paying_members(db)),
            "message": message,
        },
    )


class PlanForm(BaseModel):
    """A plan's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=100)
    fee_minor: int = Field(default=0, ge=0, le=membership_plans.MAX_FEE_MINOR)
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
    plan = membership_plans.get_plan(db, plan_id=plan_id)
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
            membership_plans.get_plan(db, plan_id=plan_id),
            needs=PLAN_NEEDS,
            noun="Plan",
            id_field="plan_id",
        )
        membership_plans.save_plan(db, plan_id=plan_id, **settings)
    except Problem as problem:
        return _back("/admin/loyalty/plans", problem.detail)
    return _back("/admin/loyalty/plans", f"Plan {plan_id} saved")


@router.get("/membership-analytics", response_class=HTMLResponse)
def analytics_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    report = segment_analytics.program_analytics(db)
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
        announcements.create_announcement(
            db, kind=kind, title=title, body=body, audience=audience, created_by=user.email
        )
    except Problem as problem:
        return _back("/admin/loyalty/announcements", problem.detail)
    return _back(
        "/admin/loyalty/announcements",
        "Announcement published: the worker queues and sends it to consenting members",
    )


@router.post("/announcements/{announcement_id}/queue", dependencies=[CsrfChecked])
def queue_announcement(announcement_id: int, db: DbSession, user: CurrentAdmin) -> Response:
    try:
        announcements.requeue_announcement(db, announcement_id=announcement_id)
    except Problem as problem:
        return _back("/admin/loyalty/announcements", problem.detail)
    return _back(
        "/admin/loyalty/announcements",
        "Announcement published again: members who joined since will get it",
    )
