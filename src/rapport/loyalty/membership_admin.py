"""Admin pages for paid membership and rewards: plans, membership analytics (paying vs free
vs non-members), the reward catalogue, and announcements with their queue button.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked
and call the same verbs as the API.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rapport.loyalty import announcements, membership, rewards
from rapport.platform.admin import CsrfChecked, CurrentAdmin, NavItem, render
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


@router.post("/plans", dependencies=[CsrfChecked])
def save_plan(
    db: DbSession,
    user: CurrentAdmin,
    plan_id: Annotated[str, Form(min_length=1, max_length=60)],
    name: Annotated[str, Form(min_length=1, max_length=100)],
    fee_minor: Annotated[int, Form(ge=0, le=membership.MAX_FEE_MINOR)],
    currency: Annotated[str, Form(min_length=3, max_length=3)],
    period: Annotated[str, Form()],
    active: Annotated[bool, Form()] = False,
) -> Response:
    try:
        membership.save_plan(
            db,
            plan_id=plan_id.strip(),
            name=name,
            fee_minor=fee_minor,
            currency=currency.strip().upper(),
            period=period,
            active=active,
        )
    except Problem as problem:
        return _back("/admin/loyalty/plans", problem.detail)
    return _back("/admin/loyalty/plans", f"Plan {plan_id.strip()} saved")


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
    return render(
        request,
        "loyalty/membership_rewards.html",
        {"user": user, "rewards": rewards.list_rewards(db), "message": message},
    )


@router.post("/rewards", dependencies=[CsrfChecked])
def save_reward(
    db: DbSession,
    user: CurrentAdmin,
    reward_id: Annotated[str, Form(min_length=1, max_length=60)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    points_cost: Annotated[int, Form(ge=1, le=100_000_000)],
    coupon_kind: Annotated[str, Form()],
    coupon_value: Annotated[int, Form(ge=1, le=100_000_000)],
    valid_days: Annotated[int, Form(ge=1, le=rewards.MAX_VALID_DAYS)] = 90,
    min_subtotal_minor: Annotated[int, Form(ge=0, le=100_000_000)] = 0,
    active: Annotated[bool, Form()] = False,
) -> Response:
    try:
        rewards.save_reward(
            db,
            reward_id=reward_id.strip(),
            name=name,
            points_cost=points_cost,
            coupon_kind=coupon_kind,
            coupon_value=coupon_value,
            valid_days=valid_days,
            min_subtotal_minor=min_subtotal_minor,
            active=active,
        )
    except Problem as problem:
        return _back("/admin/loyalty/rewards", problem.detail)
    return _back("/admin/loyalty/rewards", f"Reward {reward_id.strip()} saved")


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
