"""Loyalty endpoints: earn, redeem, adjust and reverse points; a member's balance, open lots
and statement. Every command takes an ``Idempotency-Key``."""

from __future__ import annotations

from dataclasses import asdict
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty import service
from rapport.loyalty.schemas import (
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
from rapport.platform.auth import AdminKey, ReadKey, WriteKey
from rapport.platform.concurrency import run_command
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.idempotency import IdempotencyKey, run_idempotent

router = APIRouter(prefix="/v1/loyalty", tags=["loyalty"])

CustomerId = Annotated[str, Path(min_length=1, max_length=40, description="cus_…")]


def _posted(posted: service.Posted) -> dict[str, Any]:
    body = asdict(posted)
    if posted.expires_at is not None:
        body["expires_at"] = posted.expires_at.isoformat()
    return body


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
    """Run one ledger command once per Idempotency-Key, in the commands' own thread pool."""
    return await run_command(
        lambda: run_idempotent(
            db,
            scope=f"loyalty.{verb}:{key_id}:{customer_id}",
            key=idempotency_key,
            request_body=body.model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            execute=execute,
            render=_posted,
        )
    )


@router.post(
    "/members/{customer_id}/earn", status_code=status.HTTP_201_CREATED, response_model=PostedOut
)
async def earn(
    customer_id: CustomerId,
    body: EarnIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Give the member points as a new lot; debt from earlier returns is paid first."""
    return await _command(
        db,
        verb="earn",
        key_id=key.id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        body=body,
        execute=lambda hook: service.earn(
            db,
            customer_id=customer_id,
            points=body.points,
            reason=body.reason,
            order_id=body.order_id,
            rule_id=body.rule_id,
            expires_at=body.expires_at,
            channel=body.channel,
            before_commit=hook,
        ),
    )


@router.post(
    "/members/{customer_id}/redeem", status_code=status.HTTP_201_CREATED, response_model=PostedOut
)
async def redeem(
    customer_id: CustomerId,
    body: RedeemIn,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Spend points, oldest lots first. Not enough points is 409 ``insufficient-points``
    with the available ``balance``; nothing changes."""
    return await _command(
        db,
        verb="redeem",
        key_id=key.id,
        customer_id=customer_id,
        idempotency_key=idempotency_key,
        body=body,
        execute=lambda hook: service.redeem(
            db,
            customer_id=customer_id,
            points=body.points,
            reason=body.reason,
            order_id=body.order_id,
            channel=body.channel,
            before_commit=hook,
        ),
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
            customer_id=customer_id,
            points=body.points,
            reason=body.reason,
            expires_at=body.expires_at,
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
            customer_id=customer_id,
            order_id=body.order_id,
            points=body.points,
            share=share,
            reason=body.reason,
            before_commit=hook,
        ),
    )


@router.get("/members/{customer_id}")
def get_member(customer_id: CustomerId, db: DbSession, _key: ReadKey) -> MemberOut:
    """The member's available balance, debt and open lots (oldest first)."""
    member = service.get_member(db, customer_id=customer_id)
    if member is None:
        if customers.get_customer(db, customer_id=customer_id) is None:
            raise NotFound(f"No customer {customer_id!r}", field="customer_id")
        return MemberOut(customer_id=customer_id, balance=0, debt=0, lots=[])
    return MemberOut(
        customer_id=member.customer_id,
        balance=member.balance,
        debt=member.debt,
        lots=[LotOut(**asdict(lot)) for lot in member.lots],
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
    movements = service.statement(
        db, customer_id=customer_id, limit=limit + 1, before=int(cursor) if cursor else None
    )
    if (
        not movements
        and cursor is None
        and customers.get_customer(db, customer_id=customer_id) is None
    ):
        raise NotFound(f"No customer {customer_id!r}", field="customer_id")
    more = len(movements) > limit
    page = movements[:limit]
    return StatementOut(
        items=[MovementOut(**asdict(movement)) for movement in page],
        next_cursor=str(page[-1].transaction_id) if more else None,
    )


# The program's configuration, simulator and tiers live in their own module.
from rapport.loyalty.engine_api import router as engine_router  # noqa: E402

router.include_router(engine_router)

# Paid membership, rewards and coupons, referrals, announcements, program analytics.
from rapport.loyalty.program_api import router as program_router  # noqa: E402

router.include_router(program_router)
