"""API routes for campaigns' delivery (mounted by rapport.campaigns.api): the in-app inbox,
the sending policy, deliveries and their history, webhook endpoints (create, list, replay a
dead delivery), and the public unsubscribe page ``/u/{token}`` (with RFC 8058 one-click)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from rapport.campaigns.delivery import inbox, log, policy, webhooks
from rapport.campaigns.delivery.rendering import SAMPLE_TOKEN, read_unsubscribe_token
from rapport.customers import service as customers
from rapport.platform.auth import AdminKey, ReadKey, WriteKey
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, NotFound, Problem
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import QueryAwareDatetime, StrictModel
from rapport.platform.settings import AppSettings

router = APIRouter(tags=["campaigns"])
# Ids in paths stay within the columns' range (bigint): PostgreSQL refuses a larger integer.
RowId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]
templates = Jinja2Templates(directory=Path(__file__).parents[1] / "templates")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InboxMessageOut(_Out):
    id: int
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


class InboxPageOut(BaseModel):
    messages: list[InboxMessageOut]
    next_before: int | None = Field(description="Pass as `before` for the next, older page")


@router.get("/v1/customers/{customer_id}/inbox", response_model=InboxPageOut)
def customer_inbox(
    customer_id: customers.CustomerRefPath,
    db: DbSession,
    _key: ReadKey,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    """The customer's in-app messages, newest first (keyset pages)."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    page = inbox.inbox_messages(db, customer_id=customer_id, before=before, limit=limit)
    return InboxPageOut(
        messages=[InboxMessageOut.model_validate(m) for m in page.messages],
        next_before=page.next_before,
    )


@router.post("/v1/customers/{customer_id}/inbox/{message_id}/read", response_model=InboxMessageOut)
def read_inbox_message(
    customer_id: customers.CustomerRefPath, message_id: RowId, db: DbSession, _key: WriteKey
) -> Any:
    """Mark one message read (again: no change)."""
    return inbox.mark_read(
        db, customer_id=customers.resolve_customer_ref(db, ref=customer_id), message_id=message_id
    )


# ---------------------------------------------------------------------- sending policy


class ChannelPolicyIn(StrictModel):
    cap_messages: int | None = Field(default=None, ge=0, le=1000)
    cap_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    quiet_start: int | None = Field(default=None, ge=0, le=23)
    quiet_end: int | None = Field(default=None, ge=0, le=23)
    default_time_zone: str | None = Field(default=None, min_length=1, max_length=50)


class SendingPolicyIn(StrictModel):
    email: ChannelPolicyIn | None = None
    webhook: ChannelPolicyIn | None = None
    inbox: ChannelPolicyIn | None = None


def _policy_out(db: Session) -> dict[str, Any]:
    return {
        channel: {field: getattr(value, field) for field in policy.POLICY_FIELDS}
        for channel, value in policy.sending_policy(db).items()
    }


@router.get("/v1/campaigns/sending-policy")
def get_sending_policy(db: DbSession, _key: ReadKey) -> dict[str, Any]:
    """Per channel: the frequency cap (marketing messages per customer in ``cap_hours``; 0:
    no cap) and quiet hours (local hours in the customer's time zone)."""
    return _policy_out(db)


@router.put("/v1/campaigns/sending-policy")
def put_sending_policy(body: SendingPolicyIn, db: DbSession, _key: AdminKey) -> dict[str, Any]:
    """Change the fields given (per channel); fields left out keep their value. Every
    channel's changes are checked before any is stored: a value refused is a 422 naming it
    under its channel (``inbox.default_time_zone``) and changes nothing."""
    wanted: dict[str, dict[str, Any]] = {}
    for channel in ("email", "webhook", "inbox"):
        changes = getattr(body, channel)
        if changes is None:
            continue
        # A field sent as null would be dropped and keep its value unsaid: refuse it, naming it.
        for name in sorted(changes.model_fields_set):
            if getattr(changes, name) is None:
                raise InvalidInput(
                    f"{name} may not be null: leave it out to keep its value, or send one",
                    field=f"{channel}.{name}",
                )
        wanted[channel] = changes.model_dump(exclude_none=True)
        try:
            policy.check_policy_changes(channel=channel, changes=wanted[channel])
        except InvalidInput as refused:
            raise InvalidInput(refused.detail, field=f"{channel}.{refused.field}") from None
    for channel, changes in wanted.items():
        policy.update_sending_policy(db, channel=channel, changes=changes)
    return _policy_out(db)


# ---------------------------------------------------------------------- deliveries


# The statuses and channels a filter may name (models.DELIVERY_STATUSES and CHANNELS, which a
# test holds equal): anything else is a 422 naming the parameter, as /v1/campaigns answers.
DeliveryStatusName = Literal[
    "queued",
    "deferred",
    "sending",
    "sent",
    "failed",
    "bounced",
    "suppressed",
    "held_out",
    "dead",
]
ChannelName = Literal["email", "webhook", "inbox"]


@router.get("/v1/deliveries")
def list_deliveries(
    db: DbSession,
    _key: ReadKey,
    campaign_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    status_: Annotated[DeliveryStatusName | None, Query(alias="status")] = None,
    channel: Annotated[ChannelName | None, Query()] = None,
    customer_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=customers.CUSTOMER_REF_MAX_LENGTH,
            description=f"{customers.CUSTOMER_REF_DESCRIPTION} An unknown one is a 404 naming "
            "it, as on every endpoint that names a customer; an erased one is a 404 saying so.",
        ),
    ] = None,
    since: QueryAwareDatetime | None = None,
    until: QueryAwareDatetime | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Deliveries, newest first, filtered; ``next_before`` pages on."""
    # A customer is read as every endpoint reads one: unknown or erased is a 404 naming the
    # field (an empty page would hide a mistyped number).
    if customer_id is not None:
        customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    page = log.find_deliveries(
        db,
        filters=log.DeliveryFilters(
            campaign_id=campaign_id,
            status=status_,
            channel=channel,
            customer_id=customer_id,
            since=since,
            until=until,
        ),
        before=before,
        limit=limit,
    )
    return {
        "deliveries": [log.delivery_out(row) for row in page.rows],
        "next_before": page.next_before,
    }


@router.get("/v1/deliveries/{delivery_id}")
def get_delivery(delivery_id: RowId, db: DbSession, _key: ReadKey) -> dict[str, Any]:
    """One delivery with its status history (and webhook tries)."""
    found = log.delivery_detail(db, delivery_id=delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id}", field="delivery_id")
    return found


@router.post("/v1/deliveries/{delivery_id}/replay")
def replay(
    delivery_id: RowId, db: DbSession, key: AdminKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Send a dead delivery again; its tries start over. A retry with the same
    Idempotency-Key is answered, not queued again."""
    return run_idempotent(
        db,
        scope=f"deliveries.replay:{key.id}",
        key=idempotency_key,
        request_body={"delivery_id": delivery_id},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: webhooks.replay_delivery(
            db, delivery_id=delivery_id, before_commit=hook
        ),
        render=log.delivery_out,
    )


# ---------------------------------------------------------------------- webhook endpoints


class EndpointIn(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=8, max_length=2000)
    consent_purpose: str = Field(default="marketing_push", max_length=40)
    max_attempts: int = Field(default=6, ge=1, le=20)


def _endpoint_out(endpoint: Any, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": endpoint.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "consent_purpose": endpoint.consent_purpose,
        "max_attempts": endpoint.max_attempts,
        "active": endpoint.active,
        "created_at": endpoint.created_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


@router.get("/v1/webhook-endpoints")
def list_webhook_endpoints(db: DbSession, _key: AdminKey) -> list[dict[str, Any]]:
    """Every endpoint (without its secret)."""
    return [_endpoint_out(e) for e in webhooks.list_endpoints(db)]


@router.post("/v1/webhook-endpoints", status_code=status.HTTP_201_CREATED)
def create_webhook_endpoint(
    body: EndpointIn, db: DbSession, key: AdminKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """A new endpoint; the answer carries its signing secret, shown this once: a retry with
    the same Idempotency-Key answers the same endpoint with ``secret`` null (the answer kept
    for retries never holds it)."""
    return run_idempotent(
        db,
        scope=f"campaigns.webhook-endpoint:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: webhooks.create_endpoint(
            db,
            name=body.name,
            url=body.url,
            consent_purpose=body.consent_purpose,
            max_attempts=body.max_attempts,
            before_commit=hook,
        ),
        render=lambda created: _endpoint_out(created.endpoint, created.secret),
        kept=lambda answer: {**answer, "secret": None},
    )


# ---------------------------------------------------------------------- unsubscribe


def _unsubscribe_page(
    request: Request, *, state: str, purpose: str = "", status_code: int = 200
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "campaigns/unsubscribe.html",
        {"state": state, "purpose": purpose, "label": _PURPOSE_LABELS.get(purpose, purpose)},
        status_code=status_code,
    )


_PURPOSE_LABELS = {
    "marketing_email": "marketing emails",
    "marketing_push": "marketing notifications and messages",
}


@router.get("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe_page(token: str, request: Request, settings: AppSettings) -> Any:
    """Asks to confirm (a GET never changes anything: mail scanners follow links)."""
    if token == SAMPLE_TOKEN:
        return _unsubscribe_page(request, state="sample")
    found = read_unsubscribe_token(token, secret=settings.session_secret())
    if found is None:
        return _unsubscribe_page(request, state="invalid", status_code=404)
    return _unsubscribe_page(request, state="confirm", purpose=found[1])


@router.post("/u/{token}", response_class=HTMLResponse, include_in_schema=False)
def unsubscribe(token: str, request: Request, db: DbSession, settings: AppSettings) -> Any:
    """Withdraws the consent the link was made for: the confirmation form's post and the
    RFC 8058 one-click post (body ``List-Unsubscribe=One-Click``) alike. The sample link of a
    preview or test send changes nothing."""
    if token == SAMPLE_TOKEN:
        return _unsubscribe_page(request, state="sample")
    found = read_unsubscribe_token(token, secret=settings.session_secret())
    if found is None:
        return _unsubscribe_page(request, state="invalid", status_code=404)
    customer_id, purpose = found
    try:
        customers.set_consent(
            db,
            customer_id=customer_id,
            purpose=purpose,
            granted=False,
            source="unsubscribe",
            channel="email" if purpose == "marketing_email" else "web",
        )
    except Problem:
        # An erased or unknown customer: nothing is sent to them anyway.
        db.rollback()
    return _unsubscribe_page(request, state="done", purpose=purpose)
