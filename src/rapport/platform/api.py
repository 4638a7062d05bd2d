"""Operational endpoints (health, readiness, metrics) and API key management."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import field_validator
from sqlalchemy import Connection, text

from rapport.platform import service
from rapport.platform.auth import AdminKey
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.middleware import exposition_registry
from rapport.platform.migrations_runner import pending_migrations, unknown_revisions
from rapport.platform.schemas import ApiKeyChange, ApiKeyCreated, ApiKeyIn, ApiKeyOut, Health

ops_router = APIRouter(tags=["operations"])
router = APIRouter(prefix="/v1/keys", tags=["api keys"])

ScopeName = Literal["ingest", "read", "write", "admin"]


class ApiKeyRequest(ApiKeyIn):
    scopes: list[ScopeName]  # type: ignore[assignment]

    @field_validator("scopes")
    @classmethod
    def _some_scope(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one scope: ingest, read, write or admin")
        return value


@ops_router.get("/healthz")
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@ops_router.get("/readyz", responses={503: {"model": Health}})
def readyz(db: DbSession, response: Response) -> Health:
    """Readiness: the database answers and its schema is current."""
    checks: dict[str, str] = {}
    try:
        db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any driver error means "not ready"
        checks["database"] = f"unavailable: {type(error).__name__}"
    else:
        checks["migrations"] = _migrations_check(db.connection())
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if ready else "unavailable", checks=checks)


def _migrations_check(connection: Connection) -> str:
    """``ok`` where the schema is this code's; else what is wrong and what to do."""
    unknown = unknown_revisions(connection)
    if unknown:
        return (
            f"migrated by a newer Rapport (revision {', '.join(unknown)} unknown to this"
            " version): run that version, or restore the backup taken before the upgrade"
        )
    pending = pending_migrations(connection)
    return "ok" if not pending else f"{len(pending)} pending: run rapport migrate"


@ops_router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus metrics: request counts and latencies by route, rejected tracking messages;
    under ``rapport serve --processes N`` the sum over every process."""
    return Response(generate_latest(exposition_registry()), media_type=CONTENT_TYPE_LATEST)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(
    body: ApiKeyRequest, db: DbSession, key: AdminKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create an API key. The secret is in this answer only: a retry with the same
    Idempotency-Key answers the same key with ``secret`` null (the secret is never stored)."""
    return run_idempotent(
        db,
        scope=f"keys.create:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: service.create_api_key(
            db,
            name=body.name,
            scopes=[service.Scope(scope) for scope in body.scopes],
            orders_from_tracking=body.orders_from_tracking,
            before_commit=hook,
        ),
        render=lambda issued: ApiKeyCreated(
            **ApiKeyOut.model_validate(issued.key).model_dump(), secret=issued.secret
        ).model_dump(mode="json"),
        kept=lambda answer: {**answer, "secret": None},
    )


@router.get("")
def list_keys(db: DbSession, _key: AdminKey, include_revoked: bool = False) -> list[ApiKeyOut]:
    """Keys (never their secrets)."""
    return [
        ApiKeyOut.model_validate(key)
        for key in service.list_api_keys(db, include_revoked=include_revoked)
    ]


KeyId = Annotated[str, Path(max_length=40)]


@router.patch("/{key_id}")
def change_key(key_id: KeyId, body: ApiKeyChange, db: DbSession, _key: AdminKey) -> ApiKeyOut:
    """Change a key's settings: whether its Segment e-commerce events become orders, its own
    request limit (``null`` for the default). Fields left out keep their values."""
    given = body.model_fields_set
    if "orders_from_tracking" in given:
        if body.orders_from_tracking is None:
            raise InvalidInput(
                "orders_from_tracking is true or false", field="orders_from_tracking"
            )
        service.set_api_key_orders_from_tracking(
            db, key_id=key_id, enabled=body.orders_from_tracking
        )
    if "rate_limit" in given:
        service.set_api_key_rate_limit(db, key_id=key_id, rate_limit=body.rate_limit)
    key = service.get_api_key(db, key_id=key_id)
    return ApiKeyOut.model_validate(key)


@router.delete("/{key_id}")
def revoke_key(key_id: KeyId, db: DbSession, _key: AdminKey) -> ApiKeyOut:
    """Revoke a key; it is refused from the next request on."""
    return ApiKeyOut.model_validate(service.revoke_api_key(db, key_id=key_id))
