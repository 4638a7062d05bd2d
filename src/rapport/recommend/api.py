"""Recommendations over HTTP: ask for a placement's items, manage merchandising rules, train
and list model versions. Routers parse, authorise, call one verb."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from rapport.platform import clock
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.concurrency import run_command
from rapport.platform.db import DbSession
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.settings import AppSettings
from rapport.recommend import service
from rapport.recommend.models import MerchRule, MerchRuleChange, ModelVersion
from rapport.recommend.schemas import (
    ModelVersionOut,
    Placement,
    Recommendations,
    RuleChangeOut,
    RuleIn,
    RuleOut,
    TrainOut,
)

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])

RuleId = Annotated[int, Path(ge=1, le=2_147_483_647)]
Id = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.get("", response_model=Recommendations)
async def get_recommendations(
    db: DbSession,
    _key: ReadKey,
    settings: AppSettings,
    placement: Annotated[Placement, Query(description="Where the items will be shown")],
    customer_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    anonymous_id: Id = None,
    item_id: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="The product on the page (product_*)"),
    ] = None,
    cart: Annotated[
        list[str] | None, Query(max_length=100, description="SKUs in the cart (repeat the key)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    store_id: Annotated[
        str | None,
        Query(min_length=1, max_length=40, description="Only items in stock at this store"),
    ] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    device: Annotated[
        str | None, Query(min_length=1, max_length=20, examples=["mobile", "desktop", "pos"])
    ] = None,
    at: Annotated[
        AwareDatetime | None,
        Query(description="Moment of the request (ISO 8601 with offset); default: now"),
    ] = None,
    margin_weight: Annotated[
        float, Query(ge=0, le=1, description="How much margin counts (0: not at all)")
    ] = 0.0,
) -> Response:
    """Items for one placement, re-ranked for the context, with merchandising rules applied
    and each item explained. Without `personalization` consent the answer is not personal."""
    # In the small command pool: an answer is a few milliseconds of Python, and many threads
    # would mostly trade the GIL (see platform.concurrency).
    request = service.Request(
        placement=placement,
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        item_id=item_id,
        cart=tuple(cart or ()),
        limit=limit,
        store_id=store_id,
        latitude=lat,
        longitude=lon,
        device=device,
        at=at,
        margin_weight=margin_weight,
    )
    answer = await run_command(
        lambda: service.recommend(db, request=request, data_dir=settings.data_dir)
    )
    # The answer is built from typed values already; serialising it directly skips a second
    # validation of every item (the documented shape is `Recommendations`).
    body = {
        "placement": placement,
        "model_version": answer.model_version,
        "personalized": answer.personalized,
        "store_id": answer.store_id,
        "items": [dataclasses.asdict(item) for item in answer.items],
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _rule_out(rule: MerchRule) -> dict[str, object]:
    return RuleOut.model_validate(rule, from_attributes=True).model_dump(mode="json")


@router.get("/rules")
def list_rules(db: DbSession, _key: ReadKey) -> list[RuleOut]:
    """Every merchandising rule, active or not."""
    return [RuleOut.model_validate(r, from_attributes=True) for r in service.list_rules(db)]


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
    """Replace a rule's settings (the change is audited)."""
    return run_idempotent(
        db,
        scope=f"recommend.rule:{key.id}:{rule_id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_200_OK,
        execute=lambda hook: service.update_rule(
            db, rule_id=rule_id, rule=body, by=f"api key {key.name}", before_commit=hook
        ),
        render=_rule_out,
    )


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: RuleId, db: DbSession, key: WriteKey) -> None:
    """Remove a rule (the audit keeps how it looked)."""
    service.delete_rule(db, rule_id=rule_id, by=f"api key {key.name}")


@router.get("/rules/{rule_id}/changes")
def rule_changes(rule_id: RuleId, db: DbSession, _key: ReadKey) -> list[RuleChangeOut]:
    """Who changed the rule, when, and how it looked before and after; newest first."""
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


@router.post("/models", status_code=status.HTTP_202_ACCEPTED)
def train(db: DbSession, key: WriteKey) -> TrainOut:
    """Queue a training run; the worker trains, saves and switches serving to the new
    version. Runs already queued are not queued twice."""
    job = service.queue_training(db, by=f"api key {key.name}")
    return TrainOut(job_id=job.id)
