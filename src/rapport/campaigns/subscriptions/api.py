"""API routes for webhook subscriptions (admin key): list, create (Idempotency-Key; the
answer carries the signing secret once), read, change and delete. Dead deliveries are
replayed with ``POST /v1/deliveries/{id}/replay`` like any webhook's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool

from rapport.campaigns.subscriptions import managing
from rapport.platform.auth import AdminKey
from rapport.platform.db import DbSession
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import StrictModel

router = APIRouter(tags=["campaigns"])
SubscriptionId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
EventTypes = Annotated[
    list[Annotated[str, Field(max_length=60)]],
    Field(
        min_length=1,
        max_length=len(managing.EVENT_TYPES),
        description="Among: " + ", ".join(f"`{t}`" for t in managing.EVENT_TYPES),
        examples=[["points_earned", "tier_changed"]],
    ),
]


class SubscriptionIn(StrictModel):
    """The shape only (types, fields known): the values' rules (a name of 1 to 200 characters
    not in use, the URL, tries from 1 to 20, event types offered) are the service's
    ``managing.subscription_problems``, which names every refused field in one 422; the
    schema still documents them."""

    name: str = Field(examples=["CRM sync"], json_schema_extra={"minLength": 1, "maxLength": 200})
    url: str = Field(
        examples=["https://crm.example/hooks"],
        json_schema_extra={"minLength": 8, "maxLength": 2000},
    )
    event_types: list[str] = Field(
        max_length=100,
        description="Among: " + ", ".join(f"`{t}`" for t in managing.EVENT_TYPES),
        examples=[["points_earned", "tier_changed"]],
        json_schema_extra={"minItems": 1},
    )
    active: StrictBool = True
    max_attempts: int = Field(
        default=6,
        description="Tries before `dead`",
        json_schema_extra={"minimum": 1, "maximum": 20},
    )


class SubscriptionPatch(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: EventTypes | None = None
    active: StrictBool | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)


def subscription_out(view: managing.SubscriptionView, secret: str | None = None) -> dict[str, Any]:
    subscription, endpoint = view.subscription, view.endpoint
    out: dict[str, Any] = {
        "id": subscription.id,
        "name": endpoint.name,
        "url": endpoint.url,
        "event_types": list(subscription.event_types),
        "active": subscription.active,
        "max_attempts": endpoint.max_attempts,
        "endpoint_id": endpoint.id,
        "campaign_id": subscription.campaign_id,
        "created_at": subscription.created_at.isoformat(),
        "updated_at": subscription.updated_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


@router.get("/v1/webhooks/subscriptions")
def list_subscriptions(
    db: DbSession,
    _key: AdminKey,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=managing.MAX_LISTED)] = 50,
) -> dict[str, Any]:
    """Subscriptions, newest first (without secrets); ``next_before`` pages on."""
    views = managing.list_subscriptions(db, before=before, limit=limit)
    return {
        "subscriptions": [subscription_out(v) for v in views],
        "next_before": views[-1].subscription.id if len(views) == limit else None,
    }


@router.post("/v1/webhooks/subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(
    body: SubscriptionIn, db: DbSession, key: AdminKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """A new endpoint subscribed to ``event_types``; the answer carries its signing secret,
    shown this once: a retry with the same Idempotency-Key answers the same subscription with
    ``secret`` null (the answer kept for retries never holds it)."""
    return run_idempotent(
        db,
        scope=f"campaigns.webhook-subscription:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: managing.create_subscription(
            db,
            name=body.name,
            url=body.url,
            event_types=body.event_types,
            active=body.active,
            max_attempts=body.max_attempts,
            created_by=f"api key {key.name}",
            before_commit=hook,
        ),
        render=lambda created: subscription_out(
            managing.SubscriptionView(created.subscription, created.endpoint), created.secret
        ),
        kept=lambda answer: {**answer, "secret": None},
    )


@router.get("/v1/webhooks/subscriptions/{subscription_id}")
def get_subscription(subscription_id: SubscriptionId, db: DbSession, _key: AdminKey) -> Any:
    """One subscription (without its secret)."""
    return subscription_out(managing.get_subscription(db, subscription_id=subscription_id))


@router.patch("/v1/webhooks/subscriptions/{subscription_id}")
def update_subscription(
    subscription_id: SubscriptionId, body: SubscriptionPatch, db: DbSession, _key: AdminKey
) -> Any:
    """Change the fields given; the others keep their value. A deactivated subscription's
    waiting deliveries are not sent."""
    view = managing.update_subscription(
        db, subscription_id=subscription_id, changes=body.model_dump(exclude_unset=True)
    )
    return subscription_out(view)


@router.delete(
    "/v1/webhooks/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT
)
def delete_subscription(subscription_id: SubscriptionId, db: DbSession, _key: AdminKey) -> Response:
    """Remove the subscription; its waiting deliveries are not sent."""
    managing.delete_subscription(db, subscription_id=subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
