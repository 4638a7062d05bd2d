"""Admin page for CX targets and action plans: set the score a business, a store or a channel
should stay at or above (NPS, CSAT, CES), see where each stands, and keep the action plans
that answer them (owner, action, due date, status, for a target or a comment theme). Mounted
by rapport.feedback.admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from rapport.catalog import service as catalog
from rapport.feedback import service
from rapport.feedback.models import PLAN_STATUSES
from rapport.feedback.schemas import ActionPlanIn, TargetIn
from rapport.platform import clock
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    redirect_saying,
    render,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Problem, pinpointed
from rapport.platform.paging import PageParams

router = APIRouter(prefix="/targets", include_in_schema=False)

KINDS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
SCOPES = {"all": "Whole business", "store": "A store", "channel": "A channel"}
CHANNELS = ("web", "app", "store", "call_center", "email")
STATUS_NAMES = {
    "planned": "Planned",
    "in_progress": "In progress",
    "done": "Done",
    "dropped": "Dropped",
}
TARGET_MESSAGES = {
    "target": "A score from -100 to 100",
    "window_days": "A number of days from 1 to 365",
    "min_responses": "A number of answers from 1 to 100,000",
    "kind": "Pick a score",
    "scope": "Pick what the target is for",
}
PLAN_MESSAGES = {
    "owner": "Name who owns it",
    "action": "Say what will be done",
    "due_on": "Pick the date it is due",
    "status": "Pick a status",
    "target_id": "Pick a target",
}


def _back(request: Request, message: str) -> RedirectResponse:
    return redirect_saying(request, "/admin/feedback/targets", message)


def _errors(failure: ValidationError, messages: dict[str, str], prefix: str = "") -> dict[str, str]:
    errors: dict[str, str] = {}
    for detail in failure.errors(include_url=False, include_input=False):
        loc, message = pinpointed(detail)
        name = str(loc[0]) if loc else "kind"
        errors.setdefault(prefix + name, messages.get(name, message))
    return errors


def _page(
    request: Request,
    db: DbSession,
    user: Any,
    paging_request: Any,
    *,
    status: str = "",
    message: str = "",
    target_values: dict[str, str] | None = None,
    plan_values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    status = status if status in PLAN_STATUSES else ""
    paging = paging_request.of(service.count_action_plans(db, status=status or None))
    targets = service.target_status(db)
    themes = service.comment_themes(db, since=clock.now() - timedelta(days=92), per_period=6)
    return render(
        request,
        "feedback/targets.html",
        {
            "user": user,
            "message": message,
            "targets": targets,
            "target_names": {
                t.target.id: f"{t.target.kind.upper()} · {_scope_text(t.target)}" for t in targets
            },
            "plans": service.list_action_plans(
                db, status=status or None, offset=paging.offset, limit=paging.per_page
            ),
            "paging": paging,
            "status": status,
            "kinds": KINDS,
            "scopes": SCOPES,
            "channels": CHANNELS,
            "stores": catalog.list_stores(db),
            "statuses": STATUS_NAMES,
            "theme_names": sorted({t.phrase for t in themes}),
            "target_values": target_values
            or {"kind": "nps", "scope": "all", "window_days": "30", "min_responses": "10"},
            "plan_values": plan_values
            or {
                "status": "planned",
                "due_on": (clock.now() + timedelta(days=30)).date().isoformat(),
            },
            "errors": errors or {},
            "today": clock.now().date(),
        },
        status_code=status_code,
    )


def _scope_text(target: Any) -> str:
    if target.scope == "all":
        return "whole business"
    return f"{target.scope} {target.scope_value}"


@router.get("", response_class=HTMLResponse)
def targets_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    status: str = "",
    edit: int | None = None,
) -> HTMLResponse:
    plan_values = None
    if edit is not None:
        plan = service.get_action_plan(db, plan_id=edit)
        if plan is not None:
            plan_values = {
                "plan_id": str(plan.id),
                "owner": plan.owner,
                "action": plan.action,
                "due_on": plan.due_on.isoformat(),
                "status": plan.status,
                "target_id": str(plan.target_id or ""),
                "theme": plan.theme,
            }
    return _page(request, db, user, paging_request, status=status, plan_values=plan_values)


@router.post("", dependencies=[CsrfChecked])
def set_target(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    fields: FormFields,
) -> Response:
    values = {name: fields.get(name, "").strip() for name in TargetIn.model_fields}
    if values["scope"] == "all":
        values["scope_value"] = ""
    elif values["scope"] == "store":
        values["scope_value"] = fields.get("store", "").strip()
    else:
        values["scope_value"] = fields.get("channel", "").strip()
    document = {name: value for name, value in values.items() if value != ""}
    try:
        target = TargetIn.model_validate_strings(document)
        row = service.set_target(db, target=target)
    except ValidationError as failure:
        errors = _errors(failure, TARGET_MESSAGES)
        return _page(
            request, db, user, paging_request,
            target_values={**values, "store": fields.get("store", ""),
                           "channel": fields.get("channel", "")},
            errors=errors, message="Target not saved: see the fields marked", status_code=422,
        )  # fmt: skip
    except Problem as problem:
        db.rollback()
        name = "store" if values["scope"] == "store" else "channel"
        field = name if problem.field == "scope_value" else problem.field or "target"
        return _page(
            request, db, user, paging_request,
            target_values={**values, "store": fields.get("store", ""),
                           "channel": fields.get("channel", "")},
            errors={field: problem.detail}, message="Target not saved", status_code=422,
        )  # fmt: skip
    return _back(request, f"{row.kind.upper()} target for {_scope_text(row)} set to {row.target:g}")


@router.post("/plans", dependencies=[CsrfChecked])
def save_plan(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
    fields: FormFields,
) -> Response:
    values = {name: fields.get(name, "").strip() for name in ActionPlanIn.model_fields}
    plan_id_text = fields.get("plan_id", "").strip()
    document: dict[str, Any] = {name: value for name, value in values.items() if value != ""}
    try:
        plan = ActionPlanIn.model_validate_strings(document)
        saved = service.save_action_plan(
            db,
            plan=plan,
            actor=user.email,
            plan_id=int(plan_id_text) if plan_id_text.isdigit() else None,
        )
    except ValidationError as failure:
        return _page(
            request, db, user, paging_request,
            plan_values={**values, "plan_id": plan_id_text},
            errors=_errors(failure, PLAN_MESSAGES, prefix="plan_"),
            message="Action plan not saved: see the fields marked", status_code=422,
        )  # fmt: skip
    except Problem as problem:
        db.rollback()
        return _page(
            request, db, user, paging_request,
            plan_values={**values, "plan_id": plan_id_text},
            errors={f"plan_{problem.field or 'action'}": problem.detail},
            message="Action plan not saved", status_code=422,
        )  # fmt: skip
    return _back(request, f"Action plan for {saved.owner} saved")


@router.post("/plans/{plan_id}/status", dependencies=[CsrfChecked])
def change_plan_status(
    request: Request, plan_id: int, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    plan = service.get_action_plan(db, plan_id=plan_id)
    if plan is None:
        return _back(request, f"No action plan {plan_id}")
    try:
        changed = ActionPlanIn(
            owner=plan.owner,
            action=plan.action,
            due_on=plan.due_on,
            status=fields.get("status", ""),
            target_id=plan.target_id,
            theme=plan.theme,
        )
        service.save_action_plan(db, plan=changed, actor=user.email, plan_id=plan_id)
    except (ValidationError, Problem):
        db.rollback()
        return _back(request, "Pick one of the statuses")
    return _back(request, f"Action plan {plan_id}: {STATUS_NAMES[changed.status].lower()}")
