"""API key authentication, scope checks and per-key rate limits for routers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rapport.platform.db import DbSession
from rapport.platform.errors import Forbidden, Unauthorized
from rapport.platform.ratelimit import STATE_KEY
from rapport.platform.service import (
    Principal,
    Scope,
    authenticate_api_key,
    key_allows,
    remembered_api_key,
)

# Declared for the OpenAPI document so /docs offers an "Authorize" button; we parse the
# headers ourselves to answer in problem+json.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer rk_...")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rapport", Basic realm="rapport"'}


def _secret_from_request(request: Request) -> str | None:
    """The key the headers carry: ``X-API-Key``, or ``Authorization`` (``Bearer``, or the
    basic-auth user name), every value of each read (a header may be repeated). They may
    carry only one key, however often: two that differ (or an ``Authorization`` that carries
    none beside another credential) are a 401, so a request is never admitted by one
    credential while carrying another. An empty value counts as not sent."""
    carried = [value.strip() for value in request.headers.getlist("x-api-key") if value.strip()] + [
        _authorization_secret(value)
        for value in request.headers.getlist("authorization")
        if value.strip()
    ]
    if not carried:
        return None
    return same_credential(carried)


def same_credential(
    carried: list[str | None], *, places: str = "X-API-Key and Authorization"
) -> str | None:
    """The one key in ``carried`` (the credentials a request carries, ``None`` for one that
    holds no key); a 401 naming ``Authorization`` when they are not all the same key, saying
    where they were found (``places``)."""
    if len(set(carried)) > 1 or (len(carried) > 1 and carried[0] is None):
        raise Unauthorized(
            f"{places} carry different credentials: send the API key in one of them (or the "
            "same key in both)",
            field="Authorization",
            headers=_CHALLENGE,
        )
    return carried[0]


def _authorization_secret(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        # Segment-style clients send the write key as the basic-auth user name.
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def key_in_headers(request: Request) -> bool:
    """Whether the request carries a key header (``Authorization`` or ``X-API-Key``)."""
    return "authorization" in request.headers or "x-api-key" in request.headers


def refuse_other_write_key(request: Request, write_key: str) -> None:
    """A 401 naming ``Authorization`` when a tracking body's ``writeKey`` is not the key the
    headers carry (they carry one: see :func:`admit`), as for two headers that differ."""
    same_credential(
        [_secret_from_request(request), write_key.strip()],
        places=f"The body's writeKey and the {_key_header(request)} header",
    )


def _key_header(request: Request) -> str:
    return "X-API-Key" if "x-api-key" in request.headers else "Authorization"


def check_scope(
    request: Request, db: Session, scope: Scope, *, write_key: str | None = None
) -> Principal:
    """The request's key if it holds ``scope`` (or ``admin``) and is within its rate limit;
    else 401, 403 or 429. May query. ``write_key``: the key a tracking body carries (see
    :func:`admit`), used only when no header carries one."""
    secret, field = _secret_and_field(request, write_key)
    if secret is None:
        raise Unauthorized(
            "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            field="Authorization",
            headers=_CHALLENGE,
        )
    key = remembered_api_key(secret) or authenticate_api_key(db, secret=secret)
    return _admitted(request, key, scope, field=field)


# The field a refusal names when the key came in a tracking body (Segment's ``writeKey``).
WRITE_KEY_FIELD = "writeKey"


def _secret_and_field(request: Request, write_key: str | None) -> tuple[str | None, str]:
    """The key sent and where: a header wins; else the body's ``write_key``."""
    if write_key and not key_in_headers(request):
        return write_key.strip() or None, WRITE_KEY_FIELD
    return _secret_from_request(request), "Authorization"


def _admitted(
    request: Request, key: Principal | None, scope: Scope, *, field: str = "Authorization"
) -> Principal:
    if key is None:
        raise Unauthorized("The API key is unknown or revoked", field=field, headers=_CHALLENGE)
    if not key_allows(key, scope):
        raise Forbidden(
            f"This API key lacks the '{scope.value}' scope (it has: {', '.join(key.scopes)})",
            field=field,
            required_scope=scope.value,
        )
    request.state.api_key_id = key.id
    # Every admitted request counts toward its key's limit (429 past it); the RateLimit
    # fields go out with the answer (platform.ratelimit.RateLimitHeaders).
    limits = getattr(request.app.state, "rate_limits", None)
    if limits is not None:
        request.scope["state"][STATE_KEY] = limits.hit(key.id, key.rate_limit)
    return key


def admit_coupon_codes(request: Request, key: Principal, *, codes: int) -> None:
    """Count the ``codes`` coupon codes this request looks up toward ``key``'s coupon lookup
    limit (RAPPORT_COUPON_RATE_LIMIT; 429 past it, and nothing counted): every route that
    takes codes calls it when a request carries some (validation, a checkout, an order), so
    codes cannot be guessed past it, one per request or twenty. The key was admitted, and
    the request counted toward its own limit, already."""
    limits = getattr(request.app.state, "rate_limits", None)
    if limits is not None:
        state = request.scope["state"]
        # Taken out first: a 429 carries every field itself, the general limit's included.
        counted = state.pop(STATE_KEY, None)
        state[STATE_KEY] = limits.hit_coupons(key.id, counted, codes=codes)


# How a route that checks its key itself (with :func:`admit`) declares the schemes in the
# OpenAPI document, through ``openapi_extra``.
OPENAPI_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]}


async def admit(
    request: Request, db: Session, scope: Scope, *, write_key: str | None = None
) -> Principal:
    """What :func:`require_scope` does, called by the route itself: FastAPI's dependency
    solving costs the hottest routes more than their work. A key seen in the last second is
    admitted here; a lookup runs in a worker thread. ``write_key`` is the key a tracking
    body carries (Segment's browser SDK sends ``writeKey`` there, and no header): it is
    checked the same way, only when no header carries a key, and refusals name ``writeKey``."""
    secret, field = _secret_and_field(request, write_key)
    remembered = remembered_api_key(secret) if secret is not None else None
    if remembered is not None:
        return _admitted(request, remembered, scope, field=field)
    return await run_in_threadpool(lambda: check_scope(request, db, scope, write_key=write_key))


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only keys holding ``scope`` (or ``admin``), within their rate
    limit. Async, so that a key seen in the last second is admitted without a trip to a
    worker thread; a key lookup runs in one."""

    async def _check(
        request: Request,
        db: DbSession,
        _bearer_doc: Annotated[object, Depends(_bearer)] = None,
        _header_doc: Annotated[object, Depends(_header_key)] = None,
    ) -> Principal:
        return await admit(request, db, scope)

    return _check


IngestKey = Annotated[Principal, Depends(require_scope(Scope.INGEST))]
ReadKey = Annotated[Principal, Depends(require_scope(Scope.READ))]
WriteKey = Annotated[Principal, Depends(require_scope(Scope.WRITE))]
AdminKey = Annotated[Principal, Depends(require_scope(Scope.ADMIN))]
