"""Tracking events from site, app and tills, natively and through Segment-compatible calls.

These are the hottest endpoints, so they read the raw body (see ``events.ingest``) and do the
parsing, validation and storage in one worker thread. Their request schemas are still in the
OpenAPI document, through ``openapi_extra``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from rapport.events import dead_letters, segment, service
from rapport.events.ingest import (
    BATCH_ADAPTER,
    EVENT_ADAPTER,
    PUBLIC_SEGMENT_SOURCE,
    ItemError,
    batch_items,
    batch_receipt,
    invalid,
    json_response,
    marked_public,
    may_grant_marketing,
    read_batch,
    refusal_error,
    rejections,
    trust_error,
    validate_event,
)
from rapport.events.schemas import (
    MAX_BATCH_BYTES,
    BatchReceipt,
    EventReceipt,
    SegmentAck,
)
from rapport.events.service import Ingested, NewEvent
from rapport.platform import clock
from rapport.platform.auth import (
    OPENAPI_SECURITY,
    WRITE_KEY_FIELD,
    admit,
    key_in_headers,
    refuse_other_write_key,
)
from rapport.platform.bodies import decoded_off_loop, parse_body, repeats_a_key
from rapport.platform.db import DbSession
from rapport.platform.errors import (
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    Problem,
    Unauthorized,
    field_error,
)
from rapport.platform.openapi import request_body_schema
from rapport.platform.service import Scope, places_tracked_orders
from rapport.platform.settings import app_settings

router = APIRouter(tags=["events"])

_ENCODINGS = (
    "\n\nThe body may be compressed: send `Content-Encoding: gzip` or `deflate` (RudderStack's "
    "SDKs gzip by default). The size limit applies to the decompressed body (413 as soon as it "
    "inflates past it); a corrupt stream is a 400 naming `body` and an unknown coding a 415 "
    "naming `Content-Encoding`."
)
_ENCODING_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON, or not the compressed stream it says it is"},
    413: {"description": "The body is over the limit, decompressed (problem+json)"},
    415: {"description": "The Content-Encoding is not gzip, deflate or identity"},
}
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **_ENCODING_PROBLEMS,
    413: {"description": "The body is over 1 MiB, decompressed (problem+json)"},
    422: {"description": "The body is not an event batch (problem+json naming the field)"},
}


def _documented(request_body: dict[str, Any]) -> dict[str, Any]:
    # Security declared for the document rather than through dependencies: FastAPI's
    # dependency solving costs these routes more than storing a single event. The routes
    # check the key themselves (platform.auth.admit).
    return {"requestBody": request_body, **OPENAPI_SECURITY}


@dataclass(frozen=True, slots=True)
class _Sender:
    """Who sent a batch, and how its refused messages are kept (see ``events.dead_letters``)."""

    api_key_id: str
    keep: int
    max_bytes: int
    orders_from_tracking: bool = True
    # Whether it may write: grant marketing, claim a staff channel (ingest.trust_error).
    may_grant: bool = True

    def refused_grants(
        self, valid: list[tuple[int, NewEvent]], errors: dict[int, list[ItemError]]
    ) -> list[tuple[int, NewEvent]]:
        """``valid`` without the grants and channels this key may not send, each moved to
        ``errors``; the others marked as this key's (``ingest.marked_public``)."""
        kept: list[tuple[int, NewEvent]] = []
        for index, event in valid:
            refusal = trust_error(event, trusted=self.may_grant)
            if refusal is None:
                kept.append((index, marked_public(event, trusted=self.may_grant)))
            else:
                errors[index] = [refusal]
        return kept

    @property
    def segment_source(self) -> str:
        """The ``source`` its Segment messages are stored with (see ``segment.SOURCE``)."""
        if not self.may_grant:
            return PUBLIC_SEGMENT_SOURCE  # an ingest-only key's: no orders, no contact changes
        return segment.SOURCE if self.orders_from_tracking else segment.SOURCE_WITHOUT_ORDERS


async def _ingest(
    request: Request,
    db: Session,
    work: Callable[..., Response],
    *args: Any,
    limit: int | None = None,
    segment_body: bool = True,
) -> Response:
    """Read the body, check the key (on the event loop for a key seen in the last second),
    then ``work(db, raw, sender, *args)`` in one worker thread: one hop per request, where
    FastAPI's dependencies would cost more than storing a single event. A ``segment_body``
    may carry the key as its ``writeKey`` when no key header is sent."""
    raw = await _body(request, limit=limit)
    settings = app_settings(request)
    if segment_body and key_in_headers(request):
        # A body's writeKey that is not the header's key is two credentials that differ:
        # 401 before the key's scope is judged or the request counted toward its rate limit.
        raw = await _decoded(request, raw, limit=limit or settings.max_body_bytes)
        beside = _write_key_beside_header(raw)
        if beside is not None:
            refuse_other_write_key(request, beside)
        principal = await admit(request, db, Scope.INGEST)
    elif not segment_body:
        principal = await admit(request, db, Scope.INGEST)
        raw = await _decoded(request, raw, limit=limit or settings.max_body_bytes)
    else:
        # Segment's browser SDK sends no header: its key is the body's writeKey.
        raw = await _decoded(request, raw, limit=limit or settings.max_body_bytes)
        write_key = _write_key(raw)
        if write_key is None:
            raise Unauthorized(
                "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>', or "
                "as the body's writeKey (Segment's writeKey option)",
                field="Authorization",
                headers=_CHALLENGE,
            )
        principal = await admit(request, db, Scope.INGEST, write_key=write_key)
    sender = _Sender(
        principal.id,
        settings.dead_letter_limit,
        settings.dead_letter_max_bytes,
        places_tracked_orders(
            scopes=principal.scopes, orders_from_tracking=principal.orders_from_tracking
        ),
        may_grant_marketing(principal.scopes),
    )
    return await run_in_threadpool(work, db, raw, sender, *args)


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rapport", Basic realm="rapport"'}


def _write_key(raw: bytes) -> str | None:
    """The ``writeKey`` of a Segment body sent without a key header (analytics.js puts it
    there, beside the message or the batch), or ``None`` when it has none. A body that cannot
    be read is 400 naming ``body`` (as every route's), a ``writeKey`` that is not a key (a
    number, empty) 401 naming ``writeKey``."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parse_body(raw)  # raises the body's own 400 (not UTF-8, not JSON, empty)
        raise
    if not isinstance(payload, dict) or "writeKey" not in payload:
        return None
    found = payload["writeKey"]
    if not isinstance(found, str) or not found.strip():
        raise Unauthorized(
            "writeKey must be the write key (an API key with the ingest scope), as text",
            field=WRITE_KEY_FIELD,
            headers=_CHALLENGE,
        )
    return found


def _write_key_beside_header(raw: bytes) -> str | None:
    """The text ``writeKey`` of a Segment body that also came with a key header, which must
    be that key; ``None`` when it has none (a body that cannot be read is refused later)."""
    if b"writeKey" not in raw and b"\\u" not in raw:
        return None  # cannot name one: spares the hot path a second parse
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    found = payload.get("writeKey") if isinstance(payload, dict) else None
    return found if isinstance(found, str) and found.strip() else None


def _without_write_key(item: Any) -> Any:
    """A message as kept among the rejected ones: its ``writeKey`` (analytics.js copies the
    key into every message) is never stored."""
    if isinstance(item, dict) and "writeKey" in item:
        return {name: value for name, value in item.items() if name != "writeKey"}
    return item


def _counted(problem: Problem) -> Problem:
    """A single call's refusal, counted in ``rapport_tracking_rejected_total``."""
    dead_letters.count(problem.errors[0]["code"] if problem.errors else problem.slug)
    return problem


def _keep_rejected(
    db: Session,
    items: Sequence[Any],
    receipt: dict[str, Any],
    sender: _Sender,
    *,
    key: str,
    endpoint: str,
    names: dict[str, str],
) -> None:
    dead_letters.record(
        db,
        rejections([_without_write_key(item) for item in items], receipt, key=key),
        endpoint=endpoint,
        api_key_id=sender.api_key_id,
        names=names,
        keep=sender.keep,
        max_bytes=sender.max_bytes,
        total=len(items),
    )


# Where each wire shape names a message's id and person.
_EVENT_NAMES = {name: name for name in ("event_id", "customer_id", "anonymous_id")}
_SEGMENT_NAMES = {"event_id": "messageId", "customer_id": "userId", "anonymous_id": "anonymousId"}


async def _body(request: Request, *, limit: int | None = None) -> bytes:
    raw = await request.body()
    if limit is not None and len(raw) > limit:
        raise PayloadTooLarge(
            f"The request body is larger than {limit} bytes; split the batch up.", field="body"
        )
    return raw


async def _decoded(request: Request, raw: bytes, *, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone, as every endpoint's (see
    ``platform.bodies``): inflating a large body takes a worker thread, not the event loop."""
    return await decoded_off_loop(raw, request.headers.get("content-encoding"), limit=limit)


@router.post(
    "/v1/events",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses={
        201: {"model": EventReceipt, "description": "Stored"},
        200: {"model": EventReceipt, "description": "Already stored (same event_id)"},
        202: {
            "model": EventReceipt,
            "description": "Acknowledged, not stored: browsing of a person who refused analytics",
        },
        409: {"description": "The event_id was used for a different event (problem+json)"},
        **_ENCODING_PROBLEMS,
    },
    openapi_extra=_documented(request_body_schema(EVENT_ADAPTER)),
)
async def track_event(request: Request, db: DbSession) -> Response:
    """Store one tracking event. Sending the same ``event_id`` again stores nothing new."""
    raw = await _body(request)
    principal = await admit(request, db, Scope.INGEST)
    raw = await _decoded(request, raw, limit=app_settings(request).max_body_bytes)
    payload = parse_body(raw)
    try:
        incoming = validate_event(payload, raw=raw)
        trusted = may_grant_marketing(principal.scopes)
        refusal = trust_error(incoming, trusted=trusted)
        if refusal is not None:
            raise invalid(*refusal)
        incoming = marked_public(incoming, trusted=trusted)
        # Written right here when SQLite's write lock is free: the trips to a worker thread
        # and back would cost more than the write. Otherwise it joins the group commit.
        result = service.ingest_event_now(db, incoming=incoming)
        if result is None:
            result = await run_in_threadpool(lambda: service.ingest_event(db, incoming=incoming))
    except (InvalidInput, Conflict) as problem:
        raise _counted(problem) from None
    return _event_receipt(result)


def _event_receipt(result: Ingested) -> Response:
    receipt = {
        "event_id": result.event_id,
        "position": result.position,
        "duplicate": result.duplicate,
    }
    code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
    if result.position is None:
        code = status.HTTP_202_ACCEPTED  # not stored: its person refused analytics
    return json_response(receipt, status_code=code)


@router.post(
    "/v1/events/batch",
    response_model=None,
    responses={200: {"model": BatchReceipt, "description": "Per-event outcome"}, **_PROBLEMS},
    openapi_extra=_documented(request_body_schema(BATCH_ADAPTER)),
)
async def track_batch(request: Request, db: DbSession) -> Response:
    """Store up to 1,000 events (1 MiB). Each event is accepted, a duplicate (its ``event_id``
    is already stored, or earlier in this batch), or rejected with its errors; what was
    accepted is committed when the answer is 200."""
    return await _ingest(request, db, _track_batch, limit=MAX_BATCH_BYTES, segment_body=False)


def _track_batch(db: Session, raw: bytes, sender: _Sender) -> Response:
    repeated = repeats_a_key(raw)  # pydantic's reader would keep the last value
    if repeated is not None:
        raise repeated
    items, valid, errors = read_batch(raw)
    valid = sender.refused_grants(valid, errors)
    events = [event for _, event in valid]
    outcomes = service.ingest_events(db, events=events) if events else []
    receipt = batch_receipt(items, valid, outcomes, errors, key="events")
    if receipt["rejected"]:
        _keep_rejected(
            db,
            items,
            receipt,
            sender,
            key="events",
            endpoint="/v1/events/batch",
            names=_EVENT_NAMES,
        )
    return json_response(receipt)


# --- Segment's tracking API -----------------------------------------------------------------


def _segment_problem(errors: list[ItemError]) -> InvalidInput:
    entries = [field_error(("body", *loc), message, code) for loc, message, code in errors]
    first = entries[0]
    return InvalidInput(
        f"{first['field']}: {first['message']}", field=first["field"], errors=entries
    )


def _segment_call(db: Session, raw: bytes, sender: _Sender, kind: str) -> Response:
    converted = segment.to_event(
        parse_body(raw), kind=kind, received_at=clock.now(), source=sender.segment_source
    )
    if isinstance(converted, list):
        raise _counted(_segment_problem(converted))
    refusal = trust_error(converted, trusted=sender.may_grant)
    if refusal is not None:
        raise _counted(_segment_problem([refusal]))
    choices = segment.consent_choices(converted)
    if choices:  # stored just before the message, in its transaction
        stored = [*choices, converted]
        outcome = service.ingest_events(db, events=stored, compare_duplicates=False)[-1]
    else:
        outcome = service.ingest_grouped(db, event=converted, compare_duplicates=False)
    if outcome.refusal is not None:
        error = refusal_error((), outcome.refusal, segment.SEGMENT_NAMES)
        raise _counted(InvalidInput(error["message"], field=error["field"], errors=[error]))
    return json_response({"success": True})


def _segment_endpoint(kind: str) -> Callable[[Request, Session], Awaitable[Response]]:
    async def endpoint(request: Request, db: DbSession) -> Response:
        return await _ingest(request, db, _segment_call, kind)

    endpoint.__name__ = f"segment_{kind}"
    endpoint.__doc__ = (
        f"Segment-compatible `{kind}` call (write key as the basic-auth user name, as "
        "analytics-next sends it, or as the body's `writeKey` when no key header is sent; any "
        "Content-Type, "
        f"`text/plain` included). Also at `/v1/{kind[0]}`, the path analytics.js posts to. "
        'Answers `{"success": true}`, also for a message already stored (same messageId).'
    )
    return endpoint


def _short(path: str) -> str:
    """The path analytics.js (and, for ``/v1/batch``, Segment's mobile SDKs) posts a call to:
    the first letter of its type under the SDK's ``apiHost``."""
    return path[: len("/v1/") + 1]


_SEGMENT_MESSAGE = request_body_schema(TypeAdapter(segment.SegmentMessage))
for _kind in ("track", "identify", "page", "screen", "alias", "group"):
    _endpoint = _segment_endpoint(_kind)
    router.add_api_route(
        f"/v1/{_kind}",
        _endpoint,
        methods=["POST"],
        tags=["segment compatibility"],
        response_model=None,
        responses={
            200: {"model": SegmentAck, "description": "Stored (or already stored)"},
            **_ENCODING_PROBLEMS,
        },
        openapi_extra=_documented(_SEGMENT_MESSAGE),
    )
    # The same handler at the SDK's short path, left out of the reference (one operation each).
    router.add_api_route(
        _short(f"/v1/{_kind}"),
        _endpoint,
        methods=["POST"],
        include_in_schema=False,
        openapi_extra=_documented(_SEGMENT_MESSAGE),
    )


@router.post(
    "/v1/batch",
    tags=["segment compatibility"],
    response_model=None,
    responses={
        200: {"model": SegmentAck, "description": "Counts and rejected messages"},
        422: {
            "description": "Not a batch, or its own sentAt or context is wrong (problem+json "
            "naming the field); nothing stored"
        },
        **_ENCODING_PROBLEMS,
    },
    openapi_extra=_documented(request_body_schema(TypeAdapter(segment.SegmentBatch))),
)
async def segment_batch(request: Request, db: DbSession) -> Response:
    """Segment-compatible batch of up to 1,000 messages, each with its ``type``. Valid
    messages are stored even when others are rejected, and the answer stays 200 (Segment
    clients resend a batch on any other status): it counts the rejected messages and lists
    each with its ``index``, ``reason`` and ``field``. Rejected messages are also kept (see
    ``/admin/events/rejected``) and counted in ``rapport_tracking_rejected_total``. Also at
    ``/v1/b``, the path Segment's browser and mobile SDKs post batches to; the key may come as
    the body's ``writeKey`` when no key header is sent."""
    return await _ingest(request, db, _segment_batch, limit=MAX_BATCH_BYTES)


router.add_api_route(
    _short("/v1/batch"),
    segment_batch,
    methods=["POST"],
    include_in_schema=False,
    openapi_extra=_documented(request_body_schema(TypeAdapter(segment.SegmentBatch))),
)


def _with_consent_choices(messages: list[NewEvent]) -> tuple[list[NewEvent], list[int]]:
    """The events to store for a batch's messages: each message after the consent choices
    its consent object makes (``segment.consent_choices``; one a person already made just
    before in the batch is not repeated), and where each message is among them."""
    events: list[NewEvent] = []
    where: list[int] = []
    said: dict[tuple[str | None, str | None, str], bool] = {}
    for message in messages:
        for choice in segment.consent_choices(message):
            purpose, granted = choice["properties"]["purpose"], choice["properties"]["granted"]
            person = (choice["user_id"], choice["anonymous_id"], purpose)
            if said.get(person) is not granted:
                said[person] = granted
                events.append(choice)
        where.append(len(events))
        events.append(message)
    return events, where


def _segment_batch(db: Session, raw: bytes, sender: _Sender) -> Response:
    payload = parse_body(raw)
    items = batch_items(payload, key="batch")
    received_at = clock.now()
    sent_at, shared_context = segment.batch_envelope(payload)
    valid: list[tuple[int, NewEvent]] = []
    errors: dict[int, list[ItemError]] = {}
    for index, item in enumerate(items):
        converted = segment.to_event(
            item,
            kind=None,
            received_at=received_at,
            sent_at=sent_at,
            shared_context=shared_context,
            source=sender.segment_source,
        )
        if isinstance(converted, list):
            errors[index] = converted
        else:
            valid.append((index, converted))
    valid = sender.refused_grants(valid, errors)
    events, messages = _with_consent_choices([event for _, event in valid])
    stored = service.ingest_events(db, events=events, compare_duplicates=False) if events else []
    outcomes = [stored[at] for at in messages]
    receipt = batch_receipt(
        items, valid, outcomes, errors, key="batch", names=segment.SEGMENT_NAMES
    )
    rejected: list[dict[str, Any]] = []
    if receipt["rejected"]:
        rejected = [
            {"index": result["index"], "reason": error["code"], **error}
            for result in receipt["results"]
            for error in result.get("errors", [])
        ]
        _keep_rejected(
            db, items, receipt, sender, key="batch", endpoint="/v1/batch", names=_SEGMENT_NAMES
        )
    return json_response(
        {
            "success": True,
            "accepted": receipt["accepted"],
            "duplicates": receipt["duplicates"],
            "rejected": receipt["rejected"],
            "errors": rejected,
        }
    )


# Every route here takes tracking bodies, and each may come compressed.
for _route in router.routes:
    if isinstance(_route, APIRoute):
        _route.description = (_route.description or "") + _ENCODINGS

# The routes a shop's pages may call from the browser: the composition root answers CORS for
# these paths only (RAPPORT_TRACKING_ALLOWED_ORIGINS), never for the rest of the API.
BROWSER_PATHS: frozenset[str] = frozenset(
    route.path for route in router.routes if isinstance(route, APIRoute)
)
