"""Admin pages for campaigns' delivery (mounted by rapport.campaigns.admin): the deliveries log
with filters and each delivery's history, the sending policy (caps and quiet hours per
channel), and webhook endpoints with their recent tries and dead deliveries to replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from rapport.campaigns.delivery import log, policy, webhooks
from rapport.campaigns.models import (
    CHANNELS,
    DELIVERY_STATUSES,
    Campaign,
    Delivery,
    WebhookEndpoint,
    WebhookSubscription,
)
from rapport.campaigns.segments.forms import OPTION_LABELS
from rapport.customers import service as customers
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    field_messages,
    form_changes,
    redirect_saying,
    render,
)
from rapport.platform.db import DbSession
from rapport.platform.errors import Conflict, Problem
from rapport.platform.models import AdminUser

NAV: list[NavItem] = [
    NavItem("Deliveries", "/admin/deliveries", "Campaigns"),
    NavItem(
        "Webhook endpoints",
        "/admin/webhooks",
        "Settings",
        "Where webhook deliveries go: addresses, signing secrets, what was sent.",
    ),
]
router = APIRouter(include_in_schema=False)
PAGE = 50


def _page(
    request: Request,
    name: str,
    user: AdminUser,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    return render(request, name, {"user": user, **context}, status_code=status_code)


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
    except ValueError:
        return None


def _filter_errors(
    campaign_id: str, status: str, channel: str, since: str, until: str
) -> dict[str, str]:
    """What the deliveries log's filters say beside a value they cannot read."""
    errors: dict[str, str] = {}
    if campaign_id.strip() and not (campaign_id.strip().isdigit() and int(campaign_id) > 0):
        errors["campaign_id"] = "Campaign: choose one from the list (a campaign's number)"
    if status and status not in DELIVERY_STATUSES:
        errors["status"] = f"Not a delivery status: use one of {', '.join(DELIVERY_STATUSES)}"
    if channel and channel not in CHANNELS:
        errors["channel"] = f"Not a channel: use one of {', '.join(CHANNELS)}"
    for name, text in (("since", since), ("until", until)):
        if text.strip() and _day(text.strip()) is None:
            errors[name] = "A date such as 2026-03-31"
    return errors


def _campaign_names(db: DbSession) -> dict[int, str]:
    rows = db.execute(select(Campaign.id, Campaign.name).order_by(Campaign.id.desc()).limit(500))
    return {int(campaign_id): str(name) for campaign_id, name in rows}


# Ids of campaigns and deliveries as the database keeps them.
MAX_CAMPAIGN_ID = 2**31 - 1
MAX_DELIVERY_ID = 2**63 - 1


def _row_id(text: str, highest: int) -> int | None:
    """A positive whole number up to ``highest`` written as ``text``, else None."""
    text = text.strip()
    if not text.isdigit() or len(text) > 20:
        return None
    value = int(text)
    return value if 1 <= value <= highest else None


@router.get("/admin/deliveries", response_class=HTMLResponse)
def deliveries_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    campaign_id: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=12)] = "",
    channel: Annotated[str, Query(max_length=10)] = "",
    customer_id: Annotated[str, Query(max_length=40)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The deliveries log; a filter it cannot read (an unknown status or channel, a campaign
    that is not a number or not there, a customer Rapport does not know, a date that is not
    one, an older page that is not a delivery's number) is said beside it and lists nothing
    (422), as the API refuses it, where it would list every delivery or none without saying
    why. The customer is read as the API reads it (``customers.resolve_customer_ref``: the
    shop's customer number too)."""
    errors = _filter_errors(campaign_id, status, channel, since, until)
    campaign = _row_id(campaign_id, MAX_CAMPAIGN_ID) if campaign_id.strip() else None
    if campaign_id.strip() and "campaign_id" not in errors:
        if campaign is None:
            errors["campaign_id"] = "Campaign: choose one from the list (a campaign's number)"
        elif db.get(Campaign, campaign) is None:
            errors["campaign_id"] = f"No such campaign ({campaign}): choose one from the list"
    customer: str | None = None
    if customer_id.strip():
        try:
            customer = customers.resolve_customer_ref(db, ref=customer_id.strip())
        except Problem as problem:
            errors["customer_id"] = problem.detail
    older_than = _row_id(before, MAX_DELIVERY_ID) if before.strip() else None
    if before.strip() and older_than is None:
        errors["before"] = "Older page: follow the Older link (a delivery's number)"
    filters = log.DeliveryFilters(
        campaign_id=campaign,
        status=status or None,
        channel=channel or None,
        customer_id=customer,
        since=_day(since),
        until=_day(until),
    )
    page = (
        log.DeliveryPage([], None)
        if errors
        else log.find_deliveries(db, filters=filters, before=older_than, limit=PAGE)
    )
    chosen = {
        "campaign_id": campaign_id,
        "status": status,
        "channel": channel,
        "customer_id": customer_id,
        "since": since,
        "until": until,
    }
    older = (
        "/admin/deliveries?" + urlencode({**chosen, "before": page.next_before})
        if page.next_before
        else None
    )
    return _page(
        request,
        "campaigns/deliveries_list.html",
        user,
        {
            "rows": page.rows,
            "campaigns": _campaign_names(db),
            "statuses": DELIVERY_STATUSES,
            "channels": CHANNELS,
            "chosen": chosen,
            "older": older,
            "errors": errors,
        },
        422 if errors else 200,
    )


@router.get("/admin/deliveries/{delivery_id:int}", response_class=HTMLResponse)
def delivery_page(
    request: Request, delivery_id: int, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    row = db.get(Delivery, delivery_id)
    if row is None:
        return _page(request, "campaigns/deliveries_detail.html", user, {"row": None}, 404)
    return _page(
        request,
        "campaigns/deliveries_detail.html",
        user,
        {
            "row": row,
            "campaign": db.get(Campaign, row.campaign_id),
            "history": log.delivery_history(db, delivery_id=delivery_id),
            "attempts": log.delivery_attempts(db, delivery_id=delivery_id),
        },
    )


@router.post("/admin/deliveries/{delivery_id:int}/replay", dependencies=[CsrfChecked])
def replay_delivery(
    request: Request, delivery_id: int, db: DbSession, user: CurrentAdmin
) -> Response:
    try:
        webhooks.replay_delivery(db, delivery_id=delivery_id)
        message = "Queued again: the dispatcher sends it within seconds"
    except Problem as problem:
        message = problem.detail
    return redirect_saying(request, f"/admin/deliveries/{delivery_id}", message)


# ---------------------------------------------------------------------- sending policy


class PolicyForm(BaseModel):
    """A channel's policy as its form sends it; a save changes only what the form carried."""

    model_config = ConfigDict(extra="ignore")
    cap_messages: int = Field(default=policy.DEFAULTS["cap_messages"], ge=0, le=1000)
    cap_hours: int = Field(default=policy.DEFAULTS["cap_hours"], ge=1, le=24 * 90)
    quiet_start: int = Field(default=policy.DEFAULTS["quiet_start"], ge=0, le=23)
    quiet_end: int = Field(default=policy.DEFAULTS["quiet_end"], ge=0, le=23)
    default_time_zone: str = Field(
        default=policy.DEFAULTS["default_time_zone"], min_length=1, max_length=50
    )


POLICY_LABELS = {
    "cap_messages": "At most (messages)",
    "cap_hours": "Per (hours)",
    "quiet_start": "Quiet from (hour)",
    "quiet_end": "Until (hour)",
    "default_time_zone": "Default time zone",
}
# What a refused setting says, for people (the form's bounds).
POLICY_SAID = {
    "cap_messages": "At most: a whole number of messages from 0 (no cap) to 1,000",
    "cap_hours": "Per: a whole number of hours from 1 to 2,160 (90 days)",
    "quiet_start": "Quiet from: an hour from 0 to 23",
    "quiet_end": "Until: an hour from 0 to 23",
    "default_time_zone": "Default time zone: a time zone name such as Europe/Paris",
}


def _service_refusals(
    errors: dict[str, str], said: dict[str, str], checks: dict[str, Callable[[], object]]
) -> None:
    """Add the message of each field the service's own check refuses (a URL's scheme, a time
    zone's name) where the form's check let it through, so a refused form shows every error
    at once rather than one group per try."""
    for name, check in checks.items():
        if name in errors:
            continue
        try:
            check()
        except Problem as problem:
            if problem.field == name:
                errors[name] = said[name]


@router.get("/admin/deliveries/policy", response_class=HTMLResponse)
def policy_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return _policy_page(request, db, user)


def _policy_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    *,
    channel: str = "",
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The policy of every channel, each on its form; ``channel``'s form as the user sent it
    (``typed``) with each message beside its field."""
    policies = policy.sending_policy(db)
    values = {
        name: {field: str(getattr(p, field)) for field in POLICY_LABELS}
        for name, p in policies.items()
    }
    if channel in values and typed:
        values[channel].update({k: v for k, v in typed.items() if k in POLICY_LABELS})
    return _page(
        request,
        "campaigns/deliveries_policy.html",
        user,
        {
            "policies": policies,
            "values": values,
            "errors": {channel: errors or {}},
        },
        status_code=status_code,
    )


@router.post("/admin/deliveries/policy/{channel}", dependencies=[CsrfChecked])
def save_policy(
    request: Request, channel: str, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    errors = {
        name: POLICY_SAID.get(name, said)
        for name, said in field_messages(PolicyForm, fields, labels=POLICY_LABELS).items()
    }
    if "default_time_zone" in fields:
        zone = {"default_time_zone": fields["default_time_zone"]}
        _service_refusals(
            errors,
            POLICY_SAID,
            {
                "default_time_zone": lambda: policy.check_policy_changes(
                    channel=channel, changes=zone
                )
            },
        )
    if not errors:
        try:
            policy.update_sending_policy(
                db, channel=channel, changes=form_changes(PolicyForm, fields)
            )
        except Problem as problem:
            name = problem.field if problem.field in POLICY_SAID else "form"
            errors[name] = POLICY_SAID.get(name, problem.detail)
    if errors:
        db.rollback()
        return _policy_page(
            request, db, user, channel=channel, typed=fields, errors=errors, status_code=422
        )
    return redirect_saying(request, "/admin/deliveries/policy", f"The {channel} policy is saved")


# ---------------------------------------------------------------------- webhook endpoints


# The consent an endpoint's deliveries need, as the form offers it: the segment builder's labels.
WEBHOOK_PURPOSES = ("marketing_push", "marketing_email")
PURPOSE_LABELS = {purpose: OPTION_LABELS.get(purpose, purpose) for purpose in WEBHOOK_PURPOSES}


class WebhookForm(BaseModel):
    """The "add an endpoint" form, checked before the endpoint is created."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000)
    consent_purpose: Literal["marketing_push", "marketing_email"] = "marketing_push"
    max_attempts: int = Field(default=6, ge=1, le=20)


WEBHOOK_LABELS = {
    "name": "Name",
    "url": "URL",
    "consent_purpose": "Consent needed",
    "max_attempts": "Tries before dead",
}
# What a refused field says, for people.
WEBHOOK_SAID = {
    "name": "Name: give 1 to 200 characters",
    "url": "URL: give an http:// or https:// address, such as https://gateway.example/hooks",
    "consent_purpose": "Consent needed: choose one from the list",
    "max_attempts": "Tries before dead: a whole number from 1 to 20",
}
WEBHOOK_VALUES = {"name": "", "url": "", "consent_purpose": "marketing_push", "max_attempts": "6"}
# What an event subscription's endpoint needs, said instead of its stored consent purpose:
# its campaign has purpose service (docs/webhooks.md), so no marketing consent applies.
SUBSCRIPTION_CONSENT = "none: an event subscription (purpose service)"


def _subscription_endpoints(db: DbSession) -> set[int]:
    """The endpoints that belong to an event subscription."""
    return set(db.scalars(select(WebhookSubscription.endpoint_id)))


def _webhooks_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    *,
    created: webhooks.CreatedEndpoint | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    endpoints = webhooks.list_endpoints(db)
    return _page(
        request,
        "campaigns/webhooks_list.html",
        user,
        {
            "endpoints": endpoints,
            "names": {e.id: e.name for e in endpoints},
            "attempts": webhooks.recent_attempts(db, limit=30),
            "created": created,
            "values": values or WEBHOOK_VALUES,
            "errors": errors or {},
            "purposes": PURPOSE_LABELS,
            "subscription_endpoints": _subscription_endpoints(db),
            "subscription_consent": SUBSCRIPTION_CONSENT,
        },
        status_code=status_code,
    )


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, db: DbSession, user: CurrentAdmin) -> HTMLResponse:
    return _webhooks_page(request, db, user)


@router.post("/admin/webhooks", dependencies=[CsrfChecked], response_class=HTMLResponse)
def create_webhook(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> HTMLResponse:
    """Creates the endpoint and shows its secret on this answer only (never in a URL); a
    field refused comes back beside it, with what was typed kept."""
    typed = {name: fields.get(name, value) for name, value in WEBHOOK_VALUES.items()}
    errors = {
        name: WEBHOOK_SAID.get(name, said)
        for name, said in field_messages(WebhookForm, typed, labels=WEBHOOK_LABELS).items()
    }
    if "url" not in errors:  # said as the API says it: what the address is, what allows it
        try:
            webhooks.check_url(typed["url"])
        except Problem as problem:
            errors["url"] = f"URL: {problem.detail}"
    if not errors:
        form = WebhookForm.model_validate(typed)
        try:
            created = webhooks.create_endpoint(
                db,
                name=form.name,
                url=form.url,
                consent_purpose=form.consent_purpose,
                max_attempts=form.max_attempts,
            )
        except Problem as problem:
            db.rollback()
            name = problem.field if problem.field in WEBHOOK_SAID else "name"
            errors[name] = (
                f"Name: an endpoint is called {form.name!r} already; choose another name"
                if isinstance(problem, Conflict)
                else WEBHOOK_SAID[name]
            )
        else:
            return _webhooks_page(request, db, user, created=created)
    return _webhooks_page(request, db, user, values=typed, errors=errors, status_code=422)


@router.get("/admin/webhooks/{endpoint_id:int}", response_class=HTMLResponse)
def webhook_page(
    request: Request, endpoint_id: int, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    endpoint = db.get(WebhookEndpoint, endpoint_id)
    dead = []
    if endpoint is not None:
        campaign_ids = select(Campaign.id).where(Campaign.webhook_endpoint_id == endpoint_id)
        dead = list(
            db.scalars(
                select(Delivery)
                .where(Delivery.status == "dead", Delivery.campaign_id.in_(campaign_ids))
                .order_by(Delivery.id.desc())
                .limit(100)
            )
        )
    return _page(
        request,
        "campaigns/webhooks_detail.html",
        user,
        {
            "endpoint": endpoint,
            "attempts": webhooks.recent_attempts(db, endpoint_id=endpoint_id, limit=100)
            if endpoint
            else [],
            "dead": dead,
            "purposes": PURPOSE_LABELS,
            "subscription_endpoints": _subscription_endpoints(db),
            "subscription_consent": SUBSCRIPTION_CONSENT,
        },
        status_code=200 if endpoint else 404,
    )


STATUS_WORDS = {
    "queued": "queued",
    "sent": "sent",
    "held_out": "held out (control group)",
}


@router.get("/admin/campaigns/customers/{customer_id}/panel", response_class=HTMLResponse)
def customer_panel(
    request: Request,
    customer_id: str,
    db: DbSession,
    user: CurrentAdmin,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The customer 360's Campaigns panel (an HTML fragment): the messages sent to the
    customer, or held from them, newest first, ten at a time."""
    per_page = 10
    total, rows = log.customer_deliveries(
        db, customer_id=customer_id, offset=(page - 1) * per_page, limit=per_page
    )
    return render(
        request,
        "campaigns/customer_panel.html",
        {
            "user": user,
            "customer_id": customer_id,
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // per_page)),
            "status_words": STATUS_WORDS,
        },
    )
