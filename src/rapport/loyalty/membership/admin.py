"""Admin pages for paid membership: plans, membership analytics (paying vs free vs
non-members), and announcements with their queue button.

Included by ``loyalty.admin`` under its ``/admin/loyalty`` prefix; forms are CSRF-checked
and call the same verbs as the API. A save changes only the settings its form carried: each
plan has an edit page showing every setting, and a setting a form leaves out keeps
its stored value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.membership import analytics as segment_analytics
from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import MembershipPlan
from rapport.loyalty.program.versions import tier_policy
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    field_messages,
    money_field,
    redirect_saying,
    render,
    settings_after_save,
    typed_money,
)
from rapport.platform.charts import Chart, Series
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem
from rapport.platform.formatting import currencies, money

NAV = [NavItem("Paid membership", "/admin/loyalty/plans", "Loyalty")]
router = APIRouter(include_in_schema=False)

SEGMENT_LABELS = {"paying": "Paying members", "free": "Free members", "non_member": "Non-members"}


def _back(request: Request, path: str, message: str) -> RedirectResponse:
    return redirect_saying(request, path, message)


PLAN_LABELS = {
    "plan_id": "Plan id",
    "name": "Name",
    "fee": "Fee",
    "currency": "Currency",
    "period": "Period",
    "early_access_hours": "Early access",
    "points_multiplier": "Points multiplier",
    "free_shipping": "Free shipping",
    "member_prices": "Member prices",
    "active": "Offered",
}


def _plan_values(plan: MembershipPlan | None, default_currency: str) -> dict[str, Any]:
    """What the plan form shows: every setting, the fee in the plan's currency as the pages
    show amounts ("4.99", "1,000.00")."""
    if plan is None:
        return {
            "plan_id": "",
            "name": "",
            "fee": "",
            "currency": default_currency,
            "period": "month",
            "early_access_hours": 0,
            "points_multiplier": 1,
            "free_shipping": False,
            "member_prices": False,
            "active": True,
        }
    return {
        "plan_id": plan.plan_id,
        "name": plan.name,
        "fee": money_field(plan.fee_minor, plan.currency),
        "currency": plan.currency,
        "period": plan.period,
        "early_access_hours": plan.early_access_hours,
        "points_multiplier": plan.points_multiplier,
        "free_shipping": plan.free_shipping,
        "member_prices": plan.member_prices,
        "active": plan.active,
    }


def _typed_values(fields: dict[str, str], shown: dict[str, Any]) -> dict[str, Any]:
    """The form as the user sent it, to show again beside its messages."""
    values = dict(shown)
    for name in values:
        if name in fields:
            sent = fields[name]
            values[name] = sent == "true" if isinstance(values[name], bool) else sent
    return values


def _plan_json(plan: MembershipPlan) -> str:
    return json.dumps(
        {
            "name": plan.name,
            "fee_minor": plan.fee_minor,
            "currency": plan.currency,
            "period": plan.period,
            "free_shipping": plan.free_shipping,
            "member_prices": plan.member_prices,
            "early_access_hours": plan.early_access_hours,
            "points_multiplier": plan.points_multiplier,
            "active": plan.active,
        },
        indent=2,
    )


def _plans_context(db: Session, user: Any) -> dict[str, Any]:
    return {
        "user": user,
        "plans": membership_plans.list_plans(db),
        "paying": len(memberships.paying_members(db)),
        "values": _plan_values(None, get_program(db).currency),
        "errors": {},
    }


@router.get("/plans", response_class=HTMLResponse)
def plans_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(request, "loyalty/membership_plans.html", _plans_context(db, user))


class PlanForm(BaseModel):
    """A plan's settings as its admin form sends them; each one optional, since a save
    changes only what the form carried. The form's fee ("4.99") arrives here as
    ``fee_minor`` (499), converted in the plan's currency."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=100)
    fee_minor: int = Field(default=0, ge=0, le=membership_plans.MAX_FEE_MINOR)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
    period: Literal["month", "year"] = "month"
    free_shipping: bool = False
    member_prices: bool = False
    early_access_hours: int = Field(default=0, ge=0, le=24 * 90)
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
        {
            "user": user,
            "plan": plan,
            "plan_id": plan_id,
            "values": _plan_values(plan, get_program(db).currency),
            "errors": {},
            "plan_json": _plan_json(plan) if plan is not None else "",
        },
        status_code=200 if plan is not None else 404,
    )


def _plan_fields(fields: dict[str, str], currency: str, errors: dict[str, str]) -> dict[str, str]:
    """The posted fields with the fee ("4.99", "1,000", in ``currency``) as ``fee_minor``; a
    fee that cannot be read one way only gets its message in ``errors``, saying how to type
    it."""
    carried = dict(fields)
    if "fee" in carried:
        try:
            minor = typed_money(carried.pop("fee"), currency)
        except ValueError as unreadable:
            errors["fee"] = f"Fee: {unreadable}"
            return carried
        if not 0 <= minor <= membership_plans.MAX_FEE_MINOR:
            errors["fee"] = _fee_range(currency)
        carried["fee_minor"] = str(minor)
    return carried


def _fee_range(currency: str) -> str:
    return f"Fee: from {money(0, currency)} to {money(membership_plans.MAX_FEE_MINOR, currency)}"


def _field_of(name: str) -> str:
    return {"fee_minor": "fee"}.get(name, name)


@router.post("/plans", dependencies=[CsrfChecked])
def save_plan(request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields) -> Response:
    plan_id = fields.get("plan_id", "").strip()
    stored = membership_plans.get_plan(db, plan_id=plan_id) if plan_id else None
    adding = fields.get("new") == "true" or stored is None
    currency = (
        fields.get("currency", "").strip().upper()
        or (stored.currency if stored is not None else "")
        or get_program(db).currency
    )
    errors: dict[str, str] = {}
    if currency not in currencies() and (stored is None or currency != stored.currency):
        errors["currency"] = "Currency: give an ISO code such as EUR"
    carried = _plan_fields(fields, currency, errors)
    for name, said in field_messages(
        PlanForm, carried, labels=PLAN_LABELS, field_of=_field_of
    ).items():
        errors.setdefault(name, said)
    if not errors:
        try:
            settings = settings_after_save(
                PlanForm, carried, stored, needs=PLAN_NEEDS, noun="Plan", id_field="plan_id"
            )
            membership_plans.save_plan(db, plan_id=plan_id, **settings)
        except Problem as problem:
            name = _field_of(problem.field or "name")
            said = problem.detail
            if name == "fee" and "fee_minor" in said:
                said = _fee_range(currency)
            errors[name] = said
    if not errors:
        return _back(request, "/admin/loyalty/plans", f"Plan {plan_id} saved")
    if adding:
        context = _plans_context(db, user)
        context["values"] = _typed_values(fields, context["values"])
        context["errors"] = errors
        return render(request, "loyalty/membership_plans.html", context, status_code=422)
    assert stored is not None
    return render(
        request,
        "loyalty/membership_plan_edit.html",
        {
            "user": user,
            "plan": stored,
            "plan_id": plan_id,
            "values": _typed_values(fields, _plan_values(stored, currency)),
            "errors": errors,
            "plan_json": _plan_json(stored),
        },
        status_code=422,
    )


@router.get("/membership-analytics", response_class=HTMLResponse)
def analytics_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    report = segment_analytics.program_analytics(db)
    labels = [SEGMENT_LABELS[s.segment] for s in report.segments]
    currency = get_program(db).currency
    spend_chart = Chart(
        id="membership-spend",
        kind="bar",
        title="Spend per customer",
        labels=labels,
        series=[
            Series("Spend per customer", [s.spend_per_customer_minor for s in report.segments])
        ],
        unit="money",
        currency=currency,
        label_heading="Group",
    )
    orders_chart = Chart(
        id="membership-orders",
        kind="bar",
        title="Orders per customer",
        labels=labels,
        series=[
            Series(
                "Orders per customer",
                [round(s.orders_per_customer, 2) for s in report.segments],
                color="#3c71f7",
            )
        ],
        unit="score",
        label_heading="Group",
    )
    return render(
        request,
        "loyalty/membership_analytics.html",
        {
            "user": user,
            "report": report,
            "labels": SEGMENT_LABELS,
            "spend_chart": spend_chart,
            "orders_chart": orders_chart,
            "currency": currency,
        },
    )


@router.get("/announcements", response_class=HTMLResponse)
def announcements_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return render(
        request,
        "loyalty/membership_announcements.html",
        {
            "user": user,
            "announcements": announcements.list_announcements(db),
            "kinds": announcements.KINDS,
            "tiers": [(tier.id, tier.name) for tier in tier_policy(db).tiers],
        },
    )


@router.post("/announcements", dependencies=[CsrfChecked])
def create_announcement(
    request: Request,
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
        return _back(request, "/admin/loyalty/announcements", problem.detail)
    return _back(
        request,
        "/admin/loyalty/announcements",
        "Announcement published: the worker queues and sends it to consenting members",
    )


@router.post("/announcements/{announcement_id}/queue", dependencies=[CsrfChecked])
def queue_announcement(
    request: Request, announcement_id: int, db: DbSession, user: CurrentAdmin
) -> Response:
    try:
        announcements.requeue_announcement(db, announcement_id=announcement_id)
    except Problem as problem:
        return _back(request, "/admin/loyalty/announcements", problem.detail)
    return _back(
        request,
        "/admin/loyalty/announcements",
        "Announcement published again: members who joined since will get it",
    )
