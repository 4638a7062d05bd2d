"""Admin pages for campaigns: the list, the editor (settings, templates per locale, a preview
for a chosen customer, a test send, launch, schedule, pause, resume, cancel) and the results
with the uplift chart (mounted by rapport.campaigns.admin).

Forms are CSRF-checked and call the same verbs as the API. A save changes only the settings
its form carried (``form_changes``): a section the editor does not show for the campaign's
kind (the trigger of a one-off, the store of a triggered campaign) keeps its stored values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from rapport.campaigns.delivery.queueing import has_waiting
from rapport.campaigns.delivery.rendering import RenderedMessage, render_message
from rapport.campaigns.delivery.sending import send_test
from rapport.campaigns.models import CHANNELS, Segment, WebhookEndpoint
from rapport.campaigns.planning import editing, launching, results
from rapport.campaigns.planning.previews import sample_context
from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.platform import clock, formatting
from rapport.platform.admin import (
    CsrfChecked,
    CurrentAdmin,
    FormFields,
    NavItem,
    redirect_saying,
    render,
    shown_moment,
    typed_list,
)
from rapport.platform.charts import Chart, Series, Unit
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, Problem
from rapport.platform.models import AdminUser
from rapport.platform.paging import PageParams, PageRequest

NAV: list[NavItem] = [NavItem("Campaigns", "/admin/campaigns", "Campaigns")]
router = APIRouter(include_in_schema=False)

KIND_LABELS = {
    "one_off": "One-off",
    "scheduled": "Scheduled",
    "triggered": "Triggered",
    "transactional": "Transactional (Rapport's own)",
}
# A new triggered campaign starts as the venue example; the editor then shows each part.
DEFAULT_TRIGGER = {"event_type": "venue_event", "radius_km": 50, "within_minutes": 120}


def _back(request: Request, path: str, message: str) -> RedirectResponse:
    return redirect_saying(request, path, message)


# Why a launched one-off or scheduled campaign's messages show read-only (the service's rule).
MESSAGES_FIXED = editing.MESSAGES_FIXED
messages_fixed = editing.messages_fixed


def _editor(campaign_id: int) -> str:
    return f"/admin/campaigns/{campaign_id}"


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class CampaignForm(BaseModel):
    """The editor's settings as the form sends them (text); only those carried change. Its
    bounds are the service's (``CampaignSettings``), so every refused field is said at once."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(default="", min_length=1, max_length=200)
    kind: str = "one_off"
    purpose: str = "marketing"
    channel: str = "email"
    webhook_endpoint_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    segment_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    store_id: str | None = Field(default=None, max_length=64)
    radius_km: float | None = Field(default=None, gt=0, le=editing.MAX_RADIUS_KM)
    categories: str = ""
    control_percent: float = Field(default=0.0, ge=0, le=90)
    conversion_days: int = Field(default=7, ge=1, le=90)

    _blank = field_validator(
        "webhook_endpoint_id", "segment_id", "store_id", "radius_km", mode="before"
    )(_empty_is_none)


class TriggerForm(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    trigger_event_type: str = ""
    trigger_radius_km: float | None = Field(default=None, ge=0, le=editing.MAX_RADIUS_KM)
    trigger_within_minutes: int = Field(default=120, ge=1, le=editing.MAX_WITHIN_MINUTES)
    trigger_filters: str = ""

    _blank = field_validator("trigger_radius_km", mode="before")(_empty_is_none)


# What a refused setting says beside its field, in words (the form's own bounds).
SETTINGS_SAID = {
    "name": "Name: give the campaign a name of 1 to 200 characters",
    "kind": "Kind: choose one-off, scheduled or triggered",
    "purpose": "Purpose: choose marketing or service",
    "channel": "Channel: choose email, webhook or inbox",
    "webhook_endpoint_id": "Webhook endpoint: choose one of the list",
    "segment_id": "Segment: choose one of the list",
    "store_id": "Store: choose one of the list",
    "radius_km": "Radius: give a distance over 0 and up to 500 km",
    "categories": "Categories: give the category paths, comma separated",
    "control_percent": "Control group: give a share from 0 to 90 %",
    "conversion_days": "Conversion window: give a whole number of days from 1 to 90",
    "trigger_event_type": "Event type: give the event that triggers the campaign",
    "trigger_radius_km": "Radius: give a distance from 0 to 500 km, or leave it empty",
    "trigger_within_minutes": "Send within: give a whole number of minutes from 1 to 10080",
    "trigger_filters": "Only events with: write property=value, one a line",
}
# A refusal of the service about a setting the form does not carry is said above the form.
SETTINGS_FORM = "settings"


class SettingsRefused(Exception):
    """The settings form's refusals, each beside its field (form field -> words)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _form_changes(model: type[BaseModel], fields: dict[str, str]) -> dict[str, Any]:
    carried = {name: value for name, value in fields.items() if name in model.model_fields}
    try:
        parsed = model.model_validate(carried)
    except ValidationError as error:
        said: dict[str, str] = {}
        for found in error.errors():
            where = str(found["loc"][0]) if found["loc"] else SETTINGS_FORM
            said.setdefault(where, SETTINGS_SAID.get(where, str(found["msg"])))
        raise SettingsRefused(said) from None
    return parsed.model_dump(exclude_unset=True)


def settings_field(service_field: str | None) -> str:
    """The settings form's field for a field the service names (``trigger.radius_km`` is
    ``trigger_radius_km``, ``categories[2]`` is ``categories``); the form itself otherwise."""
    name = (service_field or "").split("[", 1)[0]
    if name == "trigger" or name.startswith("trigger."):
        part = name.removeprefix("trigger").lstrip(".").split(".", 1)[0] or "event_type"
        name = f"trigger_{part}"
        if name not in TriggerForm.model_fields:
            name = "trigger_filters" if part == "filters" else "trigger_event_type"
    return name if name in SETTINGS_SAID else SETTINGS_FORM


def settings_said(problem: Problem) -> dict[str, str]:
    """A service refusal beside the settings form's field, in words: its own detail, or the
    field's sentence where the detail is a validator's ("control_percent: Input should…")."""
    field = settings_field(problem.field)
    detail = problem.detail
    if field in SETTINGS_SAID and ("Input should" in detail or detail.startswith(f"{field}:")):
        detail = SETTINGS_SAID[field]
    return {field: detail}


def _filter_value(raw: str) -> str | int | float | bool:
    """A filter's value as written: JSON for numbers, true/false and quoted text, else text."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


def filters_text(filters: dict[str, Any]) -> str:
    """The filters as the editor shows them, so that saving them unchanged keeps each value's
    type (text that would read as a number or true/false is quoted)."""
    lines = []
    for name, value in filters.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, str) and _filter_value(value) != value:
            shown = json.dumps(value)
        lines.append(f"{name}={shown}")
    return "\n".join(lines)


def _parse_filters(text: str) -> dict[str, str | int | float | bool]:
    """'name=value' per line (the event properties a trigger requires)."""
    filters: dict[str, str | int | float | bool] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(
                f"Filter line {number}: write property=value", field="trigger_filters"
            )
        filters[name.strip()] = _filter_value(value.strip())
    return filters


def campaign_changes(fields: dict[str, str], stored_trigger: dict[str, Any]) -> dict[str, Any]:
    """What the editor's save changes: the settings the form carried, with the trigger
    rebuilt from its carried parts over the stored one; :class:`SettingsRefused` with every
    field the form's bounds refuse."""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    trigger_parts: dict[str, Any] = {}
    try:
        changes = _form_changes(CampaignForm, fields)
    except SettingsRefused as refused:
        errors.update(refused.errors)
    if "categories" in changes:
        try:
            changes["categories"] = typed_list(changes["categories"])
        except ValueError as unreadable:
            errors["categories"] = f"Categories: {unreadable}"
    try:
        trigger_parts = _form_changes(TriggerForm, fields)
        if "trigger_filters" in trigger_parts:
            trigger_parts["trigger_filters"] = _parse_filters(trigger_parts["trigger_filters"])
    except SettingsRefused as refused:
        errors.update(refused.errors)
    except InvalidInput as unreadable:
        errors["trigger_filters"] = unreadable.detail
    if errors:
        raise SettingsRefused(errors)
    if trigger_parts:
        trigger = dict(stored_trigger)
        if "trigger_event_type" in trigger_parts:
            trigger["event_type"] = trigger_parts["trigger_event_type"]
        if "trigger_radius_km" in trigger_parts:
            trigger["radius_km"] = trigger_parts["trigger_radius_km"]
        if "trigger_within_minutes" in trigger_parts:
            trigger["within_minutes"] = trigger_parts["trigger_within_minutes"]
        if "trigger_filters" in trigger_parts:
            trigger["filters"] = trigger_parts["trigger_filters"]
        changes["trigger"] = trigger
    elif changes.get("kind") == "triggered" and not stored_trigger:
        # Made triggered from the editor, which shows the trigger only from then on.
        changes["trigger"] = dict(DEFAULT_TRIGGER)
    return changes


# What the "new campaign" form starts with, and what a refused field says beside it.
NEW_CAMPAIGN_VALUES = {"name": "", "kind": "one_off"}
NEW_CAMPAIGN_SAID = {
    "name": "Name: give the campaign a name of 1 to 200 characters",
    "kind": "Kind: choose one-off, scheduled or triggered",
}


def _campaigns_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    paging_request: PageRequest,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    total = editing.list_campaigns(db, offset=0, limit=1).total
    paging = paging_request.of(total)
    page = editing.list_campaigns(db, offset=paging.offset, limit=paging.per_page)
    audiences = results.audience_sizes(db, campaign_ids=[c.id for c in page.campaigns])
    return render(
        request,
        "campaigns/campaign_list.html",
        {
            "user": user,
            "page": page,
            "paging": paging,
            "audiences": audiences,
            "kinds": KIND_LABELS,
            "values": values or NEW_CAMPAIGN_VALUES,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/admin/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request,
    db: DbSession,
    user: CurrentAdmin,
    paging_request: PageParams,
) -> HTMLResponse:
    return _campaigns_page(request, db, user, paging_request)


@router.post("/admin/campaigns", dependencies=[CsrfChecked], response_model=None)
def create_campaign(
    request: Request, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """Creates a draft and opens its editor; a refused name or kind is said beside its field
    on the list page, with what was typed and chosen kept (422)."""
    typed = {name: fields.get(name, value) for name, value in NEW_CAMPAIGN_VALUES.items()}
    errors: dict[str, str] = {}
    if not 1 <= len(typed["name"].strip()) <= 200:
        errors["name"] = NEW_CAMPAIGN_SAID["name"]
    if typed["kind"] not in ("one_off", "scheduled", "triggered"):
        errors["kind"] = NEW_CAMPAIGN_SAID["kind"]
    if not errors:
        try:
            settings = editing.validated_settings(
                {"name": typed["name"].strip(), "kind": typed["kind"]}
            )
            if typed["kind"] == "triggered":
                settings.trigger = dict(DEFAULT_TRIGGER)
            campaign = editing.create_campaign(db, settings=settings, created_by=user.email)
        except Problem as problem:
            db.rollback()
            field = problem.field if problem.field in NEW_CAMPAIGN_SAID else "name"
            errors[field] = NEW_CAMPAIGN_SAID[field]
        else:
            return _back(
                request,
                _editor(campaign.id),
                "Campaign created: pick its audience and write its message",
            )
    return _campaigns_page(
        request, db, user, PageRequest(), values=typed, errors=errors, status_code=422
    )


def _editor_context(db: DbSession, campaign_id: int) -> dict[str, Any]:
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    templates = editing.get_templates(db, campaign_id=campaign_id)
    return {
        "campaign": campaign,
        "templates": templates,
        "kinds": KIND_LABELS,
        "channels": CHANNELS,
        "segments": list(db.scalars(select(Segment).order_by(Segment.name).limit(500))),
        "endpoints": list(
            db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name).limit(200))
        ),
        "stores": [s for s in catalog.list_stores(db) if s.latitude is not None],
        "recent_customers": customers.recent_customers(db, limit=20),
        "filters_text": filters_text(dict(campaign.trigger.get("filters") or {})),
        "local": campaign.kind != "triggered" and campaign.key is None,
        # A campaign an earlier version marked sent while deliveries still waited can still
        # be paused or cancelled (launching.pause_campaign, cancel_campaign).
        "waiting": campaign.status == "sent" and has_waiting(db, campaign_id=campaign.id),
        "messages_fixed": MESSAGES_FIXED if messages_fixed(campaign) else "",
    }


def _editor_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    campaign_id: int,
    *,
    preview_customer: str = "",
    preview_locale: str = "",
    message_form: dict[str, Any] | None = None,
    schedule_form: dict[str, str] | None = None,
    settings_form: dict[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The editor; with ``message_form``, ``schedule_form`` or ``settings_form`` (``values``
    as typed, ``errors`` per field), that form as it was typed with
    the refusal beside its field (a refused form answers 422 keeping what was typed)."""
    try:
        context = _editor_context(db, campaign_id)
    except Problem as problem:
        return render(
            request,
            "campaigns/campaign_missing.html",
            {"user": user, "message": problem.detail},
            status_code=404,
        )
    preview: RenderedMessage | None = None
    preview_error = ""
    if preview_customer.strip():
        try:
            preview = render_message(
                db,
                campaign=context["campaign"],
                customer_id=customers.resolve_customer_ref(db, ref=preview_customer.strip()),
                context=sample_context(db, context["campaign"]),
                locale=preview_locale.strip() or None,
            )
        except Problem as problem:
            preview_error = problem.detail
    return render(
        request,
        "campaigns/campaign_edit.html",
        {
            **context,
            "user": user,
            "preview": preview,
            "preview_error": preview_error,
            "preview_customer": preview_customer.strip(),
            "message_form": message_form or {},
            "schedule_form": schedule_form or {},
            "settings_form": settings_form or {"values": {}, "errors": {}},
        },
        status_code=status_code,
    )


@router.get("/admin/campaigns/{campaign_id:int}", response_class=HTMLResponse)
def campaign_page(
    request: Request,
    campaign_id: int,
    db: DbSession,
    user: CurrentAdmin,
    preview_customer: str = "",
    preview_locale: str = "",
) -> HTMLResponse:
    return _editor_page(
        request,
        db,
        user,
        campaign_id,
        preview_customer=preview_customer,
        preview_locale=preview_locale,
    )


@router.post("/admin/campaigns/{campaign_id:int}", dependencies=[CsrfChecked])
def save_campaign(
    request: Request, campaign_id: int, db: DbSession, user: CurrentAdmin, fields: FormFields
) -> Response:
    """Saves the settings; a refused one comes back in the form as typed with each reason
    beside its field, in words (422)."""
    try:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
    except Problem as problem:
        return _back(request, _editor(campaign_id), problem.detail)
    try:
        changes = campaign_changes(fields, campaign.trigger)
        editing.update_campaign(db, campaign_id=campaign_id, changes=changes)
    except (SettingsRefused, Problem) as refused:
        db.rollback()
        errors = refused.errors if isinstance(refused, SettingsRefused) else settings_said(refused)
        typed = {
            name: value
            for name, value in fields.items()
            if name in CampaignForm.model_fields or name in TriggerForm.model_fields
        }
        return _editor_page(
            request,
            db,
            user,
            campaign_id,
            settings_form={"values": typed, "errors": errors},
            status_code=422,
        )
    return _back(request, _editor(campaign_id), "Campaign saved")


# The fields of a message's form a refusal is said beside (others: beside the body).
MESSAGE_FIELDS = ("locale", "subject", "body")


@router.post("/admin/campaigns/{campaign_id:int}/templates", dependencies=[CsrfChecked])
def save_template(
    request: Request,
    campaign_id: int,
    db: DbSession,
    user: CurrentAdmin,
    channel: Annotated[str, Form()],
    locale: Annotated[str, Form(max_length=10)],
    body: Annotated[str, Form(max_length=100_000)],
    subject: Annotated[str, Form(max_length=300)] = "",
    new: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """Saves a message; a refused one (a template that does not parse, a name it does not
    know) comes back in its own form as typed, the reason beside its field (422)."""
    try:
        editing.set_template(
            db,
            campaign_id=campaign_id,
            channel=channel,
            locale=locale.strip(),
            subject=subject,
            body=body,
        )
    except Problem as problem:
        db.rollback()
        if problem.status == 404:
            return _back(request, _editor(campaign_id), problem.detail)
        field = problem.field if problem.field in MESSAGE_FIELDS else "body"
        typed = {"channel": channel, "locale": locale, "subject": subject, "body": body}
        return _editor_page(
            request,
            db,
            user,
            campaign_id,
            message_form={
                **typed,
                "form": "new" if new else f"{channel}-{locale}",
                "errors": {field: problem.detail},
            },
            status_code=problem.status if problem.status in (409, 422) else 422,
        )
    return _back(request, _editor(campaign_id), f"Message for {channel} ({locale}) saved")


@router.post("/admin/campaigns/{campaign_id:int}/test-send", dependencies=[CsrfChecked])
def send_test_message(
    request: Request,
    campaign_id: int,
    db: DbSession,
    user: CurrentAdmin,
    customer_id: Annotated[str, Form(min_length=1, max_length=40)],
    to_address: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    try:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
        send_test(
            db,
            campaign=campaign,
            customer_id=customers.resolve_customer_ref(db, ref=customer_id.strip()),
            to_address=to_address.strip() or None,
            context=sample_context(db, campaign),
        )
    except Problem as problem:
        return _back(request, _editor(campaign_id), problem.detail)
    where = to_address.strip() or f"{customer_id}'s {campaign.channel}"
    return _back(request, _editor(campaign_id), f"Test message sent to {where}")


@router.post("/admin/campaigns/{campaign_id:int}/launch", dependencies=[CsrfChecked])
def launch(request: Request, campaign_id: int, db: DbSession, user: CurrentAdmin) -> Response:
    try:
        campaign = launching.start_campaign(db, campaign_id=campaign_id)
    except Problem as problem:
        return _back(request, _editor(campaign_id), problem.detail)
    if campaign.status == "active":
        return _back(
            request, _editor(campaign_id), "Campaign active: it fires on its next matching event"
        )
    return _back(
        request, _editor(campaign_id), "Campaign launched: the worker queues its audience now"
    )


@router.post("/admin/campaigns/{campaign_id:int}/schedule", dependencies=[CsrfChecked])
def schedule(
    request: Request,
    campaign_id: int,
    db: DbSession,
    user: CurrentAdmin,
    scheduled_at: Annotated[str, Form(max_length=40)],
) -> Response:
    """Schedules the campaign; a refused time (not given, in the past) comes back in the form
    as typed with the reason beside it (422)."""
    try:
        try:
            at = datetime.fromisoformat(scheduled_at.strip())
        except ValueError:
            raise InvalidInput("Pick the date and time to send", field="scheduled_at") from None
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        campaign = launching.schedule_campaign(db, campaign_id=campaign_id, scheduled_at=at)
    except Problem as problem:
        db.rollback()
        if problem.field != "scheduled_at":
            return _back(request, _editor(campaign_id), problem.detail)
        return _editor_page(
            request,
            db,
            user,
            campaign_id,
            schedule_form={"value": scheduled_at, "error": problem.detail},
            status_code=422,
        )
    assert campaign.scheduled_at is not None
    when = shown_moment(request, clock.as_utc(campaign.scheduled_at))
    return _back(request, _editor(campaign_id), f"Scheduled for {when}")


@router.get("/admin/campaigns/{campaign_id:int}/cancel", response_class=HTMLResponse)
def confirm_cancel(
    request: Request, campaign_id: int, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    """Ask before cancelling, which is final: a page of its own, so it works without
    JavaScript (the editor's "Cancel campaign" links here)."""
    try:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
    except Problem as problem:
        return render(
            request,
            "campaigns/campaign_missing.html",
            {"user": user, "message": problem.detail},
            status_code=404,
        )
    waiting = has_waiting(db, campaign_id=campaign.id)
    cancellable = campaign.key is None and (
        campaign.status not in ("sent", "cancelled") or (campaign.status == "sent" and waiting)
    )
    return render(
        request,
        "campaigns/campaign_cancel.html",
        {"user": user, "campaign": campaign, "waiting": waiting, "cancellable": cancellable},
    )


@router.post("/admin/campaigns/{campaign_id:int}/{action}", dependencies=[CsrfChecked])
def change_status(
    request: Request, campaign_id: int, action: str, db: DbSession, user: CurrentAdmin
) -> Response:
    verbs = {
        "pause": (launching.pause_campaign, "Campaign paused"),
        "resume": (launching.resume_campaign, "Campaign resumed"),
        "cancel": (launching.cancel_campaign, "Campaign cancelled"),
    }
    if action not in verbs:
        return _back(request, _editor(campaign_id), f"Unknown action {action!r}")
    verb, done = verbs[action]
    try:
        verb(db, campaign_id=campaign_id)
    except Problem as problem:
        return _back(request, _editor(campaign_id), problem.detail)
    return _back(request, _editor(campaign_id), done)


def _currency(request: Request) -> str:
    """The program's currency, as the signed-in admin's pages show money."""
    display = getattr(request.state, "display", None)
    return str(getattr(display, "currency", "EUR"))


def _money_writer(request: Request, currency: str) -> Callable[[float], str]:
    """Amounts of minor units as the admin's pages write them ("€1.07"), in their locale."""
    display = getattr(request.state, "display", None)
    locale = str(getattr(display, "locale", formatting.DEFAULT_LOCALE))
    return lambda minor: formatting.money(minor, currency, locale)


def range_chart(
    chart_id: str,
    title: str,
    treated: results.Interval,
    control: results.Interval,
    *,
    unit: Unit,
    currency: str | None = None,
) -> Chart:
    """Treated and control side by side, each with its 95% interval's ends as bars of their
    own (the table under the chart holds the same figures)."""
    return Chart(
        id=chart_id,
        kind="bar",
        labels=["Treated", "Control"],
        series=[
            Series("95% low", [treated.low, control.low], color="#cbd5e1"),
            Series(title, [treated.value, control.value], color="#00a86b"),
            Series("95% high", [treated.high, control.high], color="#94a3b8"),
        ],
        unit=unit,
        currency=currency,
        title=f"{title}, treated and control",
        label_heading="Group",
    )


@router.get("/admin/campaigns/{campaign_id:int}/results", response_class=HTMLResponse)
def results_page(
    request: Request, campaign_id: int, db: DbSession, user: CurrentAdmin
) -> HTMLResponse:
    try:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
    except Problem as problem:
        return render(
            request,
            "campaigns/campaign_missing.html",
            {"user": user, "message": problem.detail},
            status_code=404,
        )
    found = results.campaign_results(db, campaign_id=campaign_id)
    currency = _currency(request)
    money = _money_writer(request, currency)
    charts = {
        "conversion": range_chart(
            "conversion-chart",
            "Conversion",
            found.treated.conversion,
            found.control.conversion,
            unit="share",
        ),
        "revenue": range_chart(
            "revenue-chart",
            "Revenue per customer",
            found.treated.revenue_per_customer,
            found.control.revenue_per_customer,
            unit="money",
            currency=currency,
        ),
    }
    return render(
        request,
        "campaigns/campaign_results.html",
        {
            "user": user,
            "campaign": campaign,
            "results": found,
            "reading": results.reading(found, money=money),
            "revenue_uplift": results.money_uplift(found.revenue_uplift, money),
            "currency": currency,
            "charts": charts,
        },
    )
