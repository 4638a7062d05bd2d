"""Loyalty endpoints: earn, redeem, adjust and reverse points; a member's balance, open lots
and statement. Every command takes an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty import service
from rapport.loyalty.ledger.accounts import hold_member
from rapport.loyalty.schemas import (
    MEMBER_LOTS,
    AdjustIn,
    EarnIn,
    LotOut,
    MemberOut,
    MovementOut,
    PostedOut,
    RedeemIn,
    ReverseIn,
    StatementOut,
)
from rapport.platform.auth import OPENAPI_SECURITY, AdminKey, ReadKey, WriteKey, admit
from rapport.platform.bodies import read_json_body
from rapport.platform.concurrency import run_command
from rapport.platform.db import DbSession, run_again_on_conflict
from rapport.platform.errors import InvalidInput
from rapport.platform.idempotency import (
    HEADER,
    IDEMPOTENCY_KEY_PARAMETER,
    IdempotencyKey,
    check_key,
    run_idempotent,
    store_answer_parameters,
)
from rapport.platform.openapi import request_body_schema
from rapport.platform.service import Scope

router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"])

# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
# Commands resolve it inside the command, after the Idempotency-Key is claimed, so a retry
# is answered as before (the key's fingerprint holds the reference as sent).
CustomerId = customers.CustomerRefPath


def _posted(posted: service.Posted) -> dict[str, Any]:
    body = asdict(posted)
    if posted.expires_at is not None:
        body["expires_at"] = posted.expires_at.isoformat()
    return body


def _scope(verb: str, key_id: str) -> str:
    return f"loyalty.{verb}:{key_id}"


def _fingerprinted(customer_id: str, body: BaseModel) -> dict[str, Any]:
    """What a key's first use is compared with: the body and the customer in the path, so
    the same key for another customer is refused (422), never applied as a new command."""
    return {"customer_id": customer_id, **body.model_dump(mode="json")}


async def _command(
    db: Session,
    *,
    verb: str,
    key_id: str,
    customer_id: str,
    idempotency_key: str | None,
    body: Any,
    execute: Any,
) -> JSONResponse:
    """Run one ledger command once per Idempotency-Key, in the commands' own thread pool; run
    again (up to ``_COMMAND_ATTEMPTS`` in all) when PostgreSQL broke a deadlock (or a
    serialization failure) by failing it, rather than answering 503: the failed run was rolled
    back and its key released."""

    def once() -> JSONResponse:
        return run_idempotent(
            db,
            scope=_scope(verb, key_id),
            key=idempotency_key,
            request_body=_fingerprinted(customer_id, body),
            status_code=status.HTTP_201_CREATED,
            execute=execute,
            render=_posted,
        )

    return await run_command(
        lambda: run_again_on_conflict(db, once, attempts=_COMMAND_ATTEMPTS, what=f"loyalty {verb}")
    )


# How many times a command runs in all when PostgreSQL fails it to break a conflict
_COMMAND_ATTEMPTS = 3


# Earn and redeem are the hottest commands (a till or a shop posts every order's points):
# they read their body and key themselves (FastAPI's dependency solving costs more than the
# command) and, on PostgreSQL, run as one statement from the event loop when they can.


def _hot_command_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": request_body_schema(TypeAdapter(model)),
        "parameters": [IDEMPOTENCY_KEY_PARAMETER],
        **OPENAPI_SECURITY,
    }


_HOT_COMMAND_ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {"model": PostedOut, "description": "Applied (or, with the same key, applied before)"},
    400: {"description": "No Idempotency-Key, or a body that is not JSON (problem+json)"},
    409: {"description": "Not enough points, or the same key still running (problem+json)"},
    422: {"description": "A field is invalid, or the key came with another body"},
}


async def _hot_command(
    request: Request,
    db: Session,
    *,
    verb: str,
    customer_id: str,
    model: type[EarnIn] | type[RedeemIn],
    in_one_statement: Callable[..., Awaitable[str | None]],
    in_session: Callable[..., service.Posted],
) -> Response:
    """Check the key (write scope), read the body, then run the command: as one statement
    when the app has a statement pool and the case allows, through the session otherwise.
    The body's fields are the service verbs' keyword arguments."""
    principal = await admit(request, db, Scope.WRITE)
    body = await read_json_body(request, model)
    fields = dict(body)
    idempotency_key = request.headers.get(HEADER)
    statements = request.app.state.statements
    if statements is not None:
        stored = await in_one_statement(
            statements,
            customer_id=customer_id,
            answer=store_answer_parameters(
                scope=_scope(verb, principal.id),
                key=check_key(idempotency_key),
                request_body=_fingerprinted(customer_id, body),
                status_code=status.HTTP_201_CREATED,
            ),
            **fields,
        )
        if stored is not None:
            return Response(
                stored, status_code=status.HTTP_201_CREATED, media_type="application/json"
            )
    return await _command(
        db,
        verb=verb,
        key_id=principal.id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        body=body,
        execute=lambda hook: in_session(
            db,
            customer_id=hold_member(db, customer_id),
            before_commit=hook,
            **fields,
        ),
    )


@router.post(
    "/members/{customer_id}/earn",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=_HOT_COMMAND_ANSWERS,
    openapi_extra=_hot_command_doc(EarnIn),
)
async def earn(customer_id: CustomerId, request: Request, db: DbSession) -> Response:
    """Give the member points as a new lot; debt from earlier returns is paid first."""
    return await _hot_command(
        request,
        db,
        verb="earn",
        customer_id=customer_id,
        model=EarnIn,
        in_one_statement=service.earn_now,
        in_session=service.earn,
    )


@router.post(
    "/members/{customer_id}/redeem",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses=_HOT_COMMAND_ANSWERS,
    openapi_extra=_hot_command_doc(RedeemIn),
)
async def redeem(customer_id: CustomerId, request: Request, db: DbSession) -> Response:
    """Spend points, oldest lots first. Not enough points is 409 ``insufficient-points``
    with the available ``balance``; nothing changes."""
    return await _hot_command(
        request,
        db,
        verb="redeem",
        customer_id=customer_id,
        model=RedeemIn,
        in_one_statement=service.redeem_now,
        in_session=service.redeem,
    )


@router.post(
    "/members/{customer_id}/adjust", status_code=status.HTTP_201_CREATED, response_model=PostedOut
)
async def adjust(
    customer_id: CustomerId,
    body: AdjustIn,
    db: DbSession,
    key: AdminKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A staff correction: add or remove points (never below zero). Needs the admin scope."""
    return await _command(
        db,
        verb="adjust",
        key_id=key.id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        body=body,
        execute=lambda hook: service.adjust(
            db,
            customer_id=hold_member(db, customer_id),
            points=body.points,
            reason=body.reason,
            expires_at=body.expires_at,
            actor=f"api:{key.name}",
            before_commit=hook,
        ),
    )


@router.post(
    "/members/{customer_id}/reverse",
    status_code=status.HTTP_201_CREATED,
    response_model=PostedOut,
)
async def reverse(
    customer_id: CustomerId,
    body: ReverseIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A return: take back the points the order earned for what came back. Points already
    spent become the member's debt (or are written off, as the program is configured)."""
    share = (
        Fraction(body.returned_minor, body.order_total_minor)
        if body.returned_minor is not None and body.order_total_minor
        else None
    )
    if share == 0:
        raise InvalidInput("returned_minor must be more than zero", field="returned_minor")
    return await _command(
        db,
        verb="reverse",
        key_id=key.id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        body=body,
        execute=lambda hook: service.reverse_for_return(
            db,
            customer_id=hold_member(db, customer_id),
            order_id=body.order_id,
            points=body.points,
            share=share,
            reason=body.reason,
            before_commit=hook,
        ),
    )


@router.get("/members/{customer_id}")
def get_member(customer_id: CustomerId, db: DbSession, _key: ReadKey) -> MemberOut:
    """The member's available balance, debt and open lots: the soonest to expire first, at
    most 20, and how many more there are (``more_lots``)."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    member = service.get_member(db, customer_id=customer_id, lots_limit=MEMBER_LOTS)
    if member is None:
        return MemberOut(customer_id=customer_id, balance=0, debt=0, lots=[])
    return MemberOut(
        customer_id=member.customer_id,
        balance=member.balance,
        debt=member.debt,
        lots=[LotOut(**asdict(lot)) for lot in member.lots],
        more_lots=member.more_lots,
    )


@router.get("/members/{customer_id}/statement")
def get_statement(
    customer_id: CustomerId,
    db: DbSession,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of the last page")
    ] = None,
) -> StatementOut:
    """Every movement of the member's points, newest first, with reason, order and rule."""
    customer_id = customers.resolve_customer_ref(db, ref=customer_id)
    movements = service.statement(
        db, customer_id=customer_id, limit=limit + 1, before=int(cursor) if cursor else None
    )
    more = len(movements) > limit
    page = movements[:limit]
    return StatementOut(
        items=[MovementOut(**asdict(movement)) for movement in page],
        next_cursor=str(page[-1].transaction_id) if more else None,
    )


# The program's configuration and simulator, a member's tier and benefits.
from rapport.loyalty.program.api import router as program_config_router  # noqa: E402
from rapport.loyalty.rewards.api import router as rewards_router  # noqa: E402
from rapport.loyalty.tiers.api import router as tiers_router  # noqa: E402

router.include_router(program_config_router)
router.include_router(tiers_router)
router.include_router(rewards_router)

# Paid membership, announcements and program analytics; referrals.
from rapport.loyalty.membership.api import router as membership_router  # noqa: E402
from rapport.loyalty.referrals.api import router as referrals_router  # noqa: E402

router.include_router(membership_router)
router.include_router(referrals_router)
