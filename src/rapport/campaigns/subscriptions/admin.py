"""Admin pages for webhook subscriptions (mounted by rapport.campaigns.admin): the list with a
form to add one (its signing secret shown on the answer only), and each subscription's page
to change its event types and active flag, or delete it.

The edit form carries a hidden ``false`` before each checkbox of the same name, so a box
left unticked arrives as ``false`` while a setting the form does not show is absent and
keeps its value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rapport.campaigns.subscriptions import managing
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    redirect_saying,
    render,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Conflict, Problem
from rapport.platform.models import AdminUser

NAV: list[NavItem] = [
    NavItem(
        "Event subscriptions",
        "/admin/webhooks/subscriptions",
        "Settings",
        "The retailer's systems told of Rapport's events (signed webhooks).",
    )
]
router = APIRouter(include_in_schema=False)
TYPE_FIELD = "type_"


def _ticked(fields: dict[str, str], name: str) -> bool | None:
    """A checkbox's state: True, False (shown, unticked) or None (not on the form)."""
    if name not in fields:
        return None
    return fields[name] in ("true", "on", "1")


def _chosen_types(fields: dict[str, str], current: list[str]) -> list[str]:
    chosen = list(current)
    for event_type in managing.EVENT_TYPES:
        ticked = _ticked(fields, TYPE_FIELD + event_type)
        if ticked is True and event_type not in chosen:
            chosen.append(event_type)
        elif ticked is False and event_type in chosen:
            chosen.remove(event_type)
    return [t for t in managing.EVENT_TYPES if t in chosen]


# What the add form starts with, and what a refused field says beside it (a URL: the
# service's own words, as the API says them).
FORM_VALUES = {"name": "", "url": "", "max_attempts": "6"}
SAID = {
    "name": "Name: give 1 to 200 characters",
    "max_attempts": "Tries before dead: a whole number from 1 to 20",
    "event_types": "Events: tick at least one event type",
}


def _list_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    *,
    created: managing.CreatedSubscription | None = None,
    values: dict[str, str] | None = None,
    chosen: list[str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context: dict[str, Any] = {
        "user": user,
        "subscriptions": managing.list_subscriptions(db, limit=managing.MAX_LISTED),
        "event_types": managing.EVENT_TYPES,
        "created": created,
        "values": values or FORM_VALUES,
        "chosen": chosen or [],
        "errors": errors or {},
    }
    return render(request, "campaigns/subscriptions_list.html", context, status_code=status_code)


@router.get("/admin/webhooks/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return _list_page(request, db, user)


@router.post(
    "/admin/webhooks/subscriptions", dependencies=[CsrfChecked], response_class=HTMLResponse
)
def create_subscription(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> HTMLResponse:
    """Creates the subscription and shows its secret on this answer only (never in a URL); a
    refusal keeps what was typed and ticked and says beside each refused field what is wrong
    (every one at once: the service's ``subscription_problems``)."""
    typed = {name: fields.get(name, value) for name, value in FORM_VALUES.items()}
    chosen = _chosen_types(fields, [])
    attempts_typed = typed["max_attempts"].strip() or FORM_VALUES["max_attempts"]
    # Digits are read as the number; anything else goes as typed, for the service to refuse.
    attempts: int | str = (
        int(attempts_typed)
        if attempts_typed.isascii() and attempts_typed.isdigit()
        else attempts_typed
    )
    wanted: dict[str, Any] = {
        "name": typed["name"],
        "url": typed["url"].strip(),
        "max_attempts": attempts,
        "event_types": chosen,
    }
    problems = managing.subscription_problems(db, **wanted)
    if not problems:
        try:
            created = managing.create_subscription(db, **wanted, created_by=user.email)
        except Problem as late:  # a name taken in the meantime
            db.rollback()
            problems = [late]
        else:
            return _list_page(request, db, user, created=created)
    errors: dict[str, str] = {}
    for problem in problems:
        field = (problem.field or "name").split(".")[0]
        field = field if field in SAID or field == "url" else "name"
        if field == "url":  # what the address is and what allows it, as the API says
            said = f"URL: {problem.detail}"
        elif isinstance(problem, Conflict):
            said = f"Name: {problem.detail}"
        else:
            said = SAID[field]
        errors.setdefault(field, said)
    return _list_page(
        request, db, user, values=typed, chosen=chosen, errors=errors, status_code=422
    )


@router.get("/admin/webhooks/subscriptions/{subscription_id:int}", response_class=HTMLResponse)
def subscription_page(
    request: Request, subscription_id: int, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    try:
        view: managing.SubscriptionView | None = managing.get_subscription(
            db, subscription_id=subscription_id
        )
    except Problem:
        view = None
    return render(
        request,
        "campaigns/subscriptions_edit.html",
        {"user": user, "view": view, "event_types": managing.EVENT_TYPES},
        status_code=200 if view else 404,
    )


@router.post("/admin/webhooks/subscriptions/{subscription_id:int}", dependencies=[CsrfChecked])
def save_subscription(
    request: Request, subscription_id: int, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    try:
        view = managing.get_subscription(db, subscription_id=subscription_id)
        changes: dict[str, Any] = {}
        chosen = _chosen_types(fields, list(view.subscription.event_types))
        if chosen != list(view.subscription.event_types):
            changes["event_types"] = chosen
        active = _ticked(fields, "active")
        if active is not None:
            changes["active"] = active
        managing.update_subscription(db, subscription_id=subscription_id, changes=changes)
        message = "Saved"
    except Problem as problem:
        db.rollback()
        message = f"Not saved: {problem.detail}"
    return redirect_saying(request, f"/admin/webhooks/subscriptions/{subscription_id}", message)


@router.post(
    "/admin/webhooks/subscriptions/{subscription_id:int}/delete", dependencies=[CsrfChecked]
)
def delete_subscription(subscription_id: int, db: DbSession, user: CurrentAdmin) -> Response:
    try:
        managing.delete_subscription(db, subscription_id=subscription_id)
    except Problem:
        db.rollback()
    return RedirectResponse("/admin/webhooks/subscriptions", status_code=303)
