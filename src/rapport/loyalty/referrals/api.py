"""Referrals over HTTP: a member's referral code, and recording a friend referred with it
(``POST /v1/loyalty/referrals`` takes an ``Idempotency-Key``).

Included by ``loyalty.api`` under its ``/v1/loyalty`` prefix.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rapport.customers import service as customers
from rapport.loyalty.models import Referral
from rapport.loyalty.referrals import referring
from rapport.loyalty.schemas import iso_or_none
from rapport.platform import clock
from rapport.platform.auth import ReadKey, WriteKey
from rapport.platform.db import DbSession, WritingDbSession
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.middleware import is_head
from rapport.platform.schemas import StrictModel

router = APIRouter(tags=["loyalty membership and rewards"])

# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
CustomerId = customers.CustomerRefPath
Code = Annotated[str, Field(min_length=1, max_length=40)]


class ReferralCodeOut(BaseModel):
    customer_id: str
    code: str


class ReferIn(StrictModel):
    code: Code
    friend_id: str = Field(
        min_length=1,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description=customers.CUSTOMER_REF_DESCRIPTION,
    )


class ReferralOut(BaseModel):
    friend_id: str
    referrer_id: str
    code: str
    referred_at: str
    completed_at: str | None
    order_id: str | None


def _referral_out(referral: Referral) -> dict[str, Any]:
    return ReferralOut(
        friend_id=referral.friend_id,
        referrer_id=referral.referrer_id,
        code=referral.code,
        referred_at=clock.as_utc(referral.referred_at).isoformat(),
        completed_at=iso_or_none(referral.completed_at),
        order_id=referral.order_id,
    ).model_dump(mode="json")


@router.get("/members/{customer_id}/referral-code")
def referral_code(
    customer_id: CustomerId, request: Request, db: WritingDbSession, _key: ReadKey
) -> ReferralCodeOut:
    """The member's referral code (created on the first ask, then always the same)."""
    # Writing: the first ask creates the code; a HEAD (headers only) creates none.
    member = customers.resolve_customer_ref(db, ref=customer_id)
    record = referring.referral_code(db, customer_id=member, create=not is_head(request))
    return ReferralCodeOut(customer_id=member, code=record.code if record else "")


@router.post("/referrals", status_code=status.HTTP_201_CREATED, response_model=ReferralOut)
def refer(
    body: ReferIn, db: DbSession, key: WriteKey, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Record a friend referred with a member's code. Self-referral and loops are 422; a
    friend already referred, or who has already bought, is 409."""
    return run_idempotent(
        db,
        scope=f"loyalty.refer:{key.id}",
        key=idempotency_key,
        request_body=body.model_dump(mode="json"),
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: referring.refer(
            db,
            code=body.code,
            friend_id=customers.resolve_customer_ref(db, ref=body.friend_id, field="friend_id"),
            before_commit=hook,
        ),
        render=_referral_out,
    )
