"""Campaign endpoints: create and edit campaigns and their templates, launch, schedule, pause,
resume and cancel them, preview a message for a customer, send a test, read the results with
the uplift over the control group (mounted by rapport.campaigns.api)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse

from rapport.campaigns.delivery.rendering import render_message
from rapport.campaigns.delivery.sending import send_test
from rapport.campaigns.planning import editing, launching, results
from rapport.campaigns.planning.editing import CampaignSettings
from rapport.campaigns.planning.previews import sample_context
from rapport.campaigns.planning.schemas import (
    CampaignChanges,
    CampaignDetail,
    CampaignList,
    CampaignOut,
    MessageOut,
    ResultsOut,
    ScheduleIn,
    TemplateIn,
    TemplateOut,
    TestSendIn,
)
from rapport.customers import service as customers
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.idempotency import BeforeCommit, IdempotencyKey, run_idempotent
from rapport.platform.service import Principal

router = APIRouter(tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Campaign id")]
ChannelPath = Annotated[Literal["email", "webhook", "inbox"], Path(description="Channel")]
LocalePath = Annotated[
    str, Path(pattern=editing.LOCALE_PATTERN, description="Language, such as en or fr-CA")
]


def _detail(db: DbSession, campaign_id: int) -> CampaignDetail:
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    detail = CampaignDetail.model_validate(campaign)
    detail.templates = [
        TemplateOut.model_validate(t) for t in editing.get_templates(db, campaign_id=campaign_id)
    ]
    return detail


@router.post("/v1/campaigns", status_code=status.HTTP_201_CREATED, response_model=CampaignOut)
def create_campaign(
    body: CampaignSettings, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create a draft campaign. Nothing is sent until it is launched or scheduled."""
    return run_idempotent(
        db,
        scope=f"campaigns.create:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: editing.create_campaign(
            db, settings=body, created_by=f"api key {key.name}", before_commit=hook
        ),
        render=lambda row: CampaignOut.model_validate(row).model_dump(mode="json"),
    )


@router.get("/v1/campaigns", response_model=CampaignList)
def list_campaigns(
    db: DbSession,
    key: ReadKey,
    status_filter: Annotated[
        Literal["draft", "scheduled", "sending", "sent", "active", "paused", "cancelled", "failed"]
        | None,
        Query(alias="status"),
    ] = None,
    kind: Annotated[
        Literal["one_off", "scheduled", "triggered", "transactional"] | None, Query()
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Campaigns, newest first, a page at a time."""
    page = editing.list_campaigns(db, status=status_filter, kind=kind, offset=offset, limit=limit)
    return CampaignList(
        items=[CampaignOut.model_validate(c) for c in page.campaigns],
        total=page.total,
        offset=offset,
        limit=limit,
    )


@router.get("/v1/campaigns/{campaign_id:int}", response_model=CampaignDetail)
def get_campaign(campaign_id: CampaignId, db: DbSession, key: ReadKey) -> Any:
    """One campaign with its templates."""
    return _detail(db, campaign_id)


@router.put("/v1/campaigns/{campaign_id:int}", response_model=CampaignDetail)
def update_campaign(
    campaign_id: CampaignId, body: CampaignChanges, db: DbSession, key: WriteKey
) -> Any:
    """Change the settings given; those left out stay as they are. Who is in the audience
    and how it is split cannot change once the campaign has been launched."""
    editing.update_campaign(
        db, campaign_id=campaign_id, changes=body.model_dump(exclude_unset=True)
    )
    return _detail(db, campaign_id)


@router.put(
    "/v1/campaigns/{campaign_id:int}/templates/{channel}/{locale}", response_model=TemplateOut
)
def put_template(
    campaign_id: CampaignId,
    channel: ChannelPath,
    locale: LocalePath,
    body: TemplateIn,
    db: DbSession,
    key: WriteKey,
) -> Any:
    """Save the message for a channel and locale (Jinja2, checked when saved)."""
    return editing.set_template(
        db,
        campaign_id=campaign_id,
        channel=channel,
        locale=locale,
        subject=body.subject,
        body=body.body,
    )


def _campaign_command(
    db: DbSession,
    *,
    action: str,
    campaign_id: int,
    key: Principal,
    idempotency_key: str | None,
    request_body: dict[str, Any],
    execute: Callable[[BeforeCommit], Any],
) -> JSONResponse:
    """One state change of a campaign, once per Idempotency-Key: a retry is answered with
    the campaign as the first request left it."""
    return run_idempotent(
        db,
        scope=f"campaigns.{action}:{key.id}",
        key=idempotency_key,
        request_body={"campaign_id": campaign_id, **request_body},
        status_code=status.HTTP_200_OK,
        execute=execute,
        render=lambda row: CampaignOut.model_validate(row).model_dump(mode="json"),
    )


@router.post("/v1/campaigns/{campaign_id:int}/launch", response_model=CampaignOut)
def launch(
    campaign_id: CampaignId, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Send now (the worker queues the audience batch by batch), or, for a triggered
    campaign, start listening for its event."""
    return _campaign_command(
        db,
        action="launch",
        campaign_id=campaign_id,
        key=key,
        idempotency_key=idempotency_key,
        request_body={},
        execute=lambda hook: launching.start_campaign(
            db, campaign_id=campaign_id, before_commit=hook
        ),
    )


@router.post("/v1/campaigns/{campaign_id:int}/schedule", response_model=CampaignOut)
def schedule(
    campaign_id: CampaignId,
    body: ScheduleIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Send at a time in the future."""
    return _campaign_command(
        db,
        action="schedule",
        campaign_id=campaign_id,
        key=key,
        idempotency_key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        execute=lambda hook: launching.schedule_campaign(
            db, campaign_id=campaign_id, scheduled_at=body.scheduled_at, before_commit=hook
        ),
    )


@router.post("/v1/campaigns/{campaign_id:int}/pause", response_model=CampaignOut)
def pause(
    campaign_id: CampaignId, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Hold the campaign: nothing more is queued or sent until it is resumed."""
    return _campaign_command(
        db,
        action="pause",
        campaign_id=campaign_id,
        key=key,
        idempotency_key=idempotency_key,
        request_body={},
        execute=lambda hook: launching.pause_campaign(
            db, campaign_id=campaign_id, before_commit=hook
        ),
    )


@router.post("/v1/campaigns/{campaign_id:int}/resume", response_model=CampaignOut)
def resume(
    campaign_id: CampaignId, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Take a paused campaign up where it stood."""
    return _campaign_command(
        db,
        action="resume",
        campaign_id=campaign_id,
        key=key,
        idempotency_key=idempotency_key,
        request_body={},
        execute=lambda hook: launching.resume_campaign(
            db, campaign_id=campaign_id, before_commit=hook
        ),
    )


@router.post("/v1/campaigns/{campaign_id:int}/cancel", response_model=CampaignOut)
def cancel(
    campaign_id: CampaignId, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Stop for good; messages not sent yet are suppressed."""
    return _campaign_command(
        db,
        action="cancel",
        campaign_id=campaign_id,
        key=key,
        idempotency_key=idempotency_key,
        request_body={},
        execute=lambda hook: launching.cancel_campaign(
            db, campaign_id=campaign_id, before_commit=hook
        ),
    )


@router.get("/v1/campaigns/{campaign_id:int}/results", response_model=ResultsOut)
def get_results(campaign_id: CampaignId, db: DbSession, key: ReadKey) -> Any:
    """Treated against control: conversion, revenue and points redeemed per customer, with
    the uplift and its 95% interval."""
    found = results.campaign_results(db, campaign_id=campaign_id)
    return ResultsOut.of(found, results.reading(found))


@router.get("/v1/campaigns/{campaign_id:int}/preview", response_model=MessageOut)
def preview(
    campaign_id: CampaignId,
    db: DbSession,
    key: ReadKey,
    customer_id: customers.CustomerRefQuery,
    locale: Annotated[str | None, Query(pattern=editing.LOCALE_PATTERN)] = None,
) -> Any:
    """The message as this customer would receive it (a triggered campaign's event and a
    local invitation's store are filled with sample values)."""
    campaign = editing.get_campaign(db, campaign_id=campaign_id)
    rendered = render_message(
        db,
        campaign=campaign,
        customer_id=customers.resolve_customer_ref(db, ref=customer_id),
        context=sample_context(db, campaign),
        locale=locale,
    )
    return MessageOut(
        subject=rendered.subject,
        body=rendered.body,
        text=rendered.text,
        unsubscribe_url=rendered.unsubscribe_url,
    )


@router.post(
    "/v1/campaigns/{campaign_id:int}/test-send",
    response_model=MessageOut,
    responses={
        502: {
            "description": "The SMTP server or the campaign's webhook endpoint refused the "
            "test message or could not be reached (`upstream-failed`): send it again once "
            "it answers"
        }
    },
)
def send_test_message(
    campaign_id: CampaignId,
    body: TestSendIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Send the message for a customer now, to a test address (email) or the campaign's
    endpoint (webhook), marked [Test]; no delivery is recorded and no cap counts it. A retry
    with the same Idempotency-Key is answered without sending again."""

    def execute(hook: BeforeCommit) -> Any:
        campaign = editing.get_campaign(db, campaign_id=campaign_id)
        return send_test(
            db,
            campaign=campaign,
            customer_id=customers.resolve_customer_ref(db, ref=body.customer_id),
            to_address=body.to_address,
            context=sample_context(db, campaign),
            before_commit=hook,
        )

    return run_idempotent(
        db,
        scope=f"campaigns.test_send:{key.id}",
        key=idempotency_key,
        request_body={"campaign_id": campaign_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=execute,
        render=lambda rendered: MessageOut(
            subject=rendered.subject,
            body=rendered.body,
            text=rendered.text,
            unsubscribe_url=rendered.unsubscribe_url,
        ).model_dump(mode="json"),
    )
