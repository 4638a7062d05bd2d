"""Recommendations over HTTP: ask for a placement's items, manage merchandising rules, train
and list model versions. Routers parse, authorise, call one verb."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response

from rapport.platform import clock
from rapport.platform.auth import OPENAPI_SECURITY, ReadKey, WriteKey, admit
from rapport.platform.concurrency import run_command
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.openapi import parse_query, query_parameters
from rapport.platform.schemas import Page, PageCursor, page_of
from rapport.platform.service import Scope
from rapport.platform.settings import AppSettings, app_settings
from rapport.recommend import service
from rapport.recommend.models import MerchRule, MerchRuleChange, ModelVersion
from rapport.recommend.schemas import (
    ModelVersionOut,
    RecommendationQuery,
    Recommendations,
    RuleChangeOut,
    RuleIn,
    RuleOut,
    TrainIn,
    TrainOut,
)

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])

RuleId = Annotated[int, Path(ge=1, le=2_147_483_647)]
Id = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get(
    "",
    response_model=None,
    responses={
        200: {"model": Recommendations, "description": "Successful Response"},
        422: {"description": "A query parameter is invalid (problem+json naming it)"},
    },
    openapi_extra={"parameters": query_parameters(RecommendationQuery), **OPENAPI_SECURITY},
)
async def get_recommendations(request: Request, db: DbSession) -> Response:
    """Items for one placement, re-ranked for the context, with merchandising rules applied
    and each item explained. Without `personalization` consent the answer is not personal."""
    # The key and the query string are checked here rather than by FastAPI's dependencies
    # and parameters, which cost this route a third of its time (see platform.openapi).
    await admit(request, db, Scope.READ)
    query = parse_query(request, RecommendationQuery)
    asked = service.Request(
        placement=query.placement,
        customer_id=query.customer_id,
        anonymous_id=query.anonymous_id,
        item_id=query.item_id,
        cart=tuple(query.cart or ()),
        limit=query.limit,
        store_id=query.store_id,
        latitude=query.lat,
        longitude=query.lon,
        device=query.device,
        at=query.at,
        margin_weight=query.margin_weight,
        exclude_purchased=query.exclude_purchased,
    )
    data_dir = app_settings(request).data_dir
    # Answered right here when nothing can make it wait (see service.recommend_now); else in
    # the small command pool, where many threads would mostly trade the GIL.
    answer = service.recommend_now(db, request=asked, data_dir=data_dir)
    if answer is None:
        answer = await run_command(lambda: service.recommend(db, request=asked, data_dir=data_dir))
    # The answer is built from typed values already; serialising it directly skips a second
    # validation of every item (the documented shape is `Recommendations`).
    body = {
        "placement": query.placement,
        "model_version": answer.model_version,
        "personalized": answer.personalized,
        "store_id": answer.store_id,
        "items": answer.items,  # dataclasses, which orjson writes as objects itself
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _rule_out(rule: MerchRule) -> dict[str, object]:
    return RuleOut.model_validate(rule, from_attributes=True).model_dump(mode="json")


@router.get("/rules")
def list_rules(
    db: DbSession,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: PageCursor = None,
) -> Page[RuleOut]:
    """The merchandising rules, on or not, oldest first, a page at a time."""
    if cursor is not None and not (cursor.isdigit() and len(cursor) <= 10):
        raise InvalidInput(
            "not a cursor this list gave: send next_cursor of the previous page", field="cursor"
        )
    found = service.list_rules(
        db, after_id=int(cursor) if cursor is not None else None, limit=limit + 1
    )
    return page_of(
        found,
        limit=limit,
        item=lambda r: RuleOut.model_validate(r, from_attributes=True),
        cursor=service.rule_cursor,
    )


@router.post("/rules", status_code=status.HTTP_201_CREATED, response_model=RuleOut)
def create_rule(
    body: RuleIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Add a rule; it applies to requests within two seconds, in every process."""
    return run_idempotent(
        db,
        scope=f"recommend.rule:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.create_rule(
            db, rule=body, by=f"api key {key.name}", before_commit=hook
        ),
        render=_rule_out,
    )


@router.put("/rules/{rule_id}", response_model=RuleOut)
def update_rule(
    rule_id: RuleId,
    body: RuleIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Replace the whole rule with the body (the change is audited). A field left out takes
    its default, as on create: leaving out `active` switches a disabled rule back on, and
    leaving out `placement`, `segment`, `starts_at` or `ends_at` widens it to every placement,
    everyone, or no start or end. Send every setting the rule keeps, as the list returns them."""
    return run_idempotent(
        db,
        scope=f"recommend.rule_update:{key.id}",
        key=idempotency_key,
        request_body={"rule_id": rule_id, **body.model_dump(mode="json")},
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.update_rule(
            db, rule_id=rule_id, rule=body, by=f"api key {key.name}", before_commit=hook
        ),
        render=_rule_out,
    )


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: RuleId, db: DbSession, key: WriteKey) -> Response:
    """Remove a rule (the audit keeps how it looked)."""
    service.delete_rule(db, rule_id=rule_id, by=f"api key {key.name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/rules/{rule_id}/changes")
def rule_changes(rule_id: RuleId, db: DbSession, _key: ReadKey) -> list[RuleChangeOut]:
    """Who changed the rule, when, and how it looked before and after; newest first. A
    deleted rule's changes stay readable; a rule that never existed is 404."""
    return [_change_out(c) for c in service.rule_changes(db, rule_id=rule_id)]


def _change_out(change: MerchRuleChange) -> RuleChangeOut:
    return RuleChangeOut.model_validate(change, from_attributes=True)


@router.get("/models")
def list_models(db: DbSession, _key: ReadKey, settings: AppSettings) -> list[ModelVersionOut]:
    """Trained versions, newest first, with their offline metrics on a held-out window."""
    active = service.active_version(settings.data_dir)
    return [_version_out(v, active) for v in service.list_versions(db)]


def _version_out(version: ModelVersion, active: str | None) -> ModelVersionOut:
    return ModelVersionOut(
        version=version.version,
        trained_at=clock.as_utc(version.trained_at),
        customers=version.customers,
        items=version.items,
        purchases=version.purchases,
        train_seconds=version.train_seconds,
        metrics=version.metrics,
        active=version.version == active,
    )


@router.post("/models", status_code=status.HTTP_202_ACCEPTED, response_model=TrainOut)
def train(
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
    body: TrainIn | None = None,
) -> JSONResponse:
    """Queue a training run; the worker trains, saves and switches serving to the new
    version. Runs already queued are not queued twice, and a retry with the same
    Idempotency-Key queues none. It takes no body (or `{}`): a field is refused."""
    return run_idempotent(
        db,
        scope=f"recommend.train:{key.id}",
        key=idempotency_key,
        request_body={},
        status_code=status.HTTP_202_ACCEPTED,
        execute=lambda hook: service.queue_training(
            db, by=f"api key {key.name}", before_commit=hook
        ),
        render=lambda job: TrainOut(job_id=job.id).model_dump(mode="json"),
    )
