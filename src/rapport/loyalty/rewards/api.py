"""Rewards, coupons and the checkout over HTTP: the reward catalogue, redeeming a reward into a
coupon, a member's coupons, coupon validation, and ``POST /v1/loyalty/checkout`` (the loyalty
effects on a cart, writing nothing). Commands take an ``Idempotency-Key``.

Included by ``loyalty.api`` under its ``/v1/loyalty`` prefix.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field

from rapport.customers import service as customers
from rapport.loyalty.models import Coupon, Reward
from rapport.loyalty.rewards import catalogue as reward_catalogue
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.loyalty.rewards import order_checkout
from rapport.loyalty.schemas import CategoryWarningOut, PricesCurrency, iso_or_none
from rapport.platform import clock
from rapport.platform.auth import AdminKey, ReadKey, WriteKey, admit_coupon_codes
from rapport.platform.db import DbSession
from rapport.platform.idempotency import IdempotencyKey, run_idempotent
from rapport.platform.schemas import (
    CurrencyCode,
    MinorUnits,
    Page,
    PageCursor,
    StrictModel,
    page_of,
)

# The checkout is documented with the program's configuration, the catalogue and coupons
# with membership (as before the rewards code had a package of its own).
PROGRAM_TAG = "loyalty program"
REWARDS_TAG = "loyalty membership and rewards"

router = APIRouter()

# Rapport's id or the shop's own (external_id): see docs/api.md, "Customer references".
CustomerId = customers.CustomerRefPath
Identifier = Annotated[str, Path(pattern=r"^[A-Za-z0-9._\-]{1,60}$")]
Code = Annotated[str, Field(min_length=1, max_length=40)]


class CartLineIn(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits | None = Field(
        default=None, description="Default: the price on this channel and store."
    )


class CheckoutIn(StrictModel):
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description=f"{customers.CUSTOMER_REF_DESCRIPTION} None: a guest.",
    )
    channel: Literal["web", "app", "store", "call_center"] = "web"
    store_id: str | None = Field(default=None, max_length=40)
    lines: list[CartLineIn] = Field(min_length=1, max_length=500)
    coupons: list[str] = Field(default_factory=list, max_length=10)
    points_to_use: int = Field(default=0, ge=0, le=100_000_000)
    shipping_minor: MinorUnits = Field(default=0, description="Shipping before loyalty effects.")
    currency: CurrencyCode | None = PricesCurrency


class EffectOut(StrictModel):
    step: str
    rule: str
    description: str
    amount_minor: int
    line_no: int | None
    points: int


class CheckoutOut(StrictModel):
    lines: list[dict[str, Any]]
    subtotal_minor: int
    discount_minor: int
    points_used: int
    points_payment_minor: int
    shipping_minor: int
    total_minor: int
    points_to_earn: int
    effects: list[EffectOut]
    refused_coupons: dict[str, str]


@router.post("/checkout", response_model=CheckoutOut, tags=[PROGRAM_TAG])
def checkout(request: Request, body: CheckoutIn, db: DbSession, key: WriteKey) -> CheckoutOut:
    """The loyalty effects on a cart, in order: member prices, tier discount, coupons, points
    as payment, free shipping, points to be earned. Each names the rule that made it. Writes
    nothing; ``POST /v1/orders`` with a ``loyalty`` block applies exactly these. A cart with
    coupon codes also counts them toward the key's coupon lookup limit."""
    if body.coupons:
        # It looks the codes up, as validation does.
        admit_coupon_codes(request, key, codes=len(body.coupons))
    result = order_checkout.checkout(
        db,
        customer_id=customers.resolve_optional_customer_ref(db, ref=body.customer_id),
        items=order_checkout.CartItem.of(body.lines),
        channel=body.channel,
        store_id=body.store_id,
        coupons=body.coupons,
        points_to_use=body.points_to_use,
        shipping_minor=body.shipping_minor,
        currency=body.currency,
    )
    db.rollback()
    return CheckoutOut(
        lines=result.lines,
        subtotal_minor=result.subtotal_minor,
        discount_minor=result.discount_minor,
        points_used=result.points_used,
        points_payment_minor=result.points_payment_minor,
        shipping_minor=result.shipping_minor,
        total_minor=result.total_minor,
        points_to_earn=result.points_to_earn,
        effects=[EffectOut(**asdict(effect)) for effect in result.effects],
        refused_coupons=result.refused_coupons,
    )


class RewardIn(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["10 EUR off"])
    points_cost: int = Field(ge=1, le=100_000_000, examples=[1000])
    coupon_kind: str = Field(pattern=r"^(percent|amount)$", examples=["amount"])
    coupon_value: int = Field(ge=1, le=100_000_000, examples=[1000])
    min_subtotal_minor: MinorUnits = 0
    categories: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    stackable: bool = True
    valid_days: int = Field(default=90, ge=1, le=reward_coupons.MAX_VALID_DAYS)
    active: bool = True


class RewardOut(BaseModel):
    reward_id: str
    name: str
    points_cost: int
    coupon_kind: str
    coupon_value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool
    valid_days: int
    active: bool
    warnings: list[CategoryWarningOut] = Field(
        default_factory=list,
        description="When saved: categories named that no product is in (not refused).",
    )


class CouponOut(BaseModel):
    code: str
    customer_id: str | None
    rule: str
    kind: str
    value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool
    issued_at: str
    expires_at: str
    used_at: str | None
    used_order_id: str | None
    issued_by: str | None = Field(
        default=None,
        description="Who issued it: the admin user's login, or api:<key name> for an API call",
    )


class ValidateIn(StrictModel):
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description=customers.CUSTOMER_REF_DESCRIPTION,
    )
    codes: list[Code] = Field(min_length=1, max_length=20)
    at: AwareDatetime | None = None


class ValidCouponOut(BaseModel):
    code: str
    rule: str
    kind: str
    value: int
    min_subtotal_minor: int
    categories: list[str]
    stackable: bool


class ValidateOut(BaseModel):
    valid: list[ValidCouponOut]
    refused: dict[str, str]


def _reward_out(reward: Reward) -> RewardOut:
    return RewardOut(
        reward_id=reward.reward_id,
        name=reward.name,
        points_cost=reward.points_cost,
        coupon_kind=reward.coupon_kind,
        coupon_value=reward.coupon_value,
        min_subtotal_minor=reward.min_subtotal_minor,
        categories=list(reward.categories),
        stackable=reward.stackable,
        valid_days=reward.valid_days,
        active=reward.active,
    )


def _coupon_out(coupon: Coupon) -> dict[str, Any]:
    return CouponOut(
        code=coupon.code,
        customer_id=coupon.customer_id,
        rule=coupon.rule,
        kind=coupon.kind,
        value=coupon.value,
        min_subtotal_minor=coupon.min_subtotal_minor,
        categories=list(coupon.categories),
        stackable=coupon.stackable,
        issued_at=clock.as_utc(coupon.issued_at).isoformat(),
        expires_at=clock.as_utc(coupon.expires_at).isoformat(),
        used_at=iso_or_none(coupon.used_at),
        used_order_id=coupon.used_order_id,
        issued_by=coupon.issued_by,
    ).model_dump(mode="json")


@router.get("/rewards", tags=[REWARDS_TAG])
def list_rewards(
    db: DbSession, _key: ReadKey, active_only: Annotated[bool, Query()] = False
) -> list[RewardOut]:
    """The reward catalogue, cheapest first."""
    return [_reward_out(r) for r in reward_catalogue.list_rewards(db, active_only=active_only)]


@router.put("/rewards/{reward_id}", tags=[REWARDS_TAG])
def save_reward(reward_id: Identifier, body: RewardIn, db: DbSession, _key: AdminKey) -> RewardOut:
    """Create or change a reward. Coupons already issued keep their terms. A category no
    product is in is saved, with a warning naming the field."""
    out = _reward_out(reward_catalogue.save_reward(db, reward_id=reward_id, **body.model_dump()))
    out.warnings = [
        CategoryWarningOut(field=w.field, detail=w.detail)
        for w in reward_catalogue.category_warnings(db, categories=out.categories)
    ]
    return out


@router.post(
    "/members/{customer_id}/rewards/{reward_id}/redeem",
    status_code=status.HTTP_201_CREATED,
    response_model=CouponOut,
    tags=[REWARDS_TAG],
)
def redeem_reward(
    customer_id: CustomerId,
    reward_id: Identifier,
    db: DbSession,
    key: WriteKey,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Spend the reward's points and answer its single-use coupon. Not enough points is 409
    ``insufficient-points``, and no coupon is issued."""
    return run_idempotent(
        db,
        scope=f"loyalty.redeem_reward:{key.id}",
        key=idempotency_key,
        request_body={"customer_id": customer_id, "reward_id": reward_id},
        status_code=status.HTTP_201_CREATED,
        execute=lambda hook: reward_coupons.redeem_reward(
            db,
            customer_id=customers.resolve_customer_ref(db, ref=customer_id),
            reward_id=reward_id,
            issued_by=f"api:{key.name}",
            before_commit=hook,
        ),
        render=_coupon_out,
    )


@router.get("/members/{customer_id}/coupons", tags=[REWARDS_TAG])
def member_coupons(
    customer_id: CustomerId,
    db: DbSession,
    _key: ReadKey,
    include_used: Annotated[bool, Query(description="Also the coupons used by an order.")] = False,
    include_expired: Annotated[
        bool, Query(description="Also the coupons that expired unused.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: PageCursor = None,
) -> Page[CouponOut]:
    """The member's open coupons (not used, not expired), soonest to expire first (ties by
    code), a page at a time; the used or expired ones too when asked for."""
    found = reward_coupons.customer_coupons(
        db,
        customer_id=customers.resolve_customer_ref(db, ref=customer_id),
        include_used=include_used,
        include_expired=include_expired,
        limit=limit + 1,
        after=cursor,
    )
    return page_of(
        found,
        limit=limit,
        item=lambda c: CouponOut.model_validate(_coupon_out(c)),
        cursor=lambda c: c.code,
    )


@router.post("/coupons/validate", tags=[REWARDS_TAG])
def validate_coupons(
    request: Request, body: ValidateIn, db: DbSession, key: ReadKey
) -> ValidateOut:
    """Which codes the customer may use now (as checkout will apply them), and why each
    other code is refused: unknown, expired, used. Another customer's coupon is refused as
    unknown, exactly as a code never issued, whatever its state. A code given twice counts
    once, valid or refused. Changes nothing. Each code counts toward the key's coupon lookup
    limit."""
    admit_coupon_codes(request, key, codes=len(body.codes))
    valid, refused = reward_coupons.validate_coupons(
        db,
        customer_id=customers.resolve_optional_customer_ref(db, ref=body.customer_id),
        codes=body.codes,
        at=body.at,
    )
    return ValidateOut(
        valid=[
            ValidCouponOut(
                code=c.code,
                rule=c.rule,
                kind=c.kind,
                value=c.value,
                min_subtotal_minor=c.min_subtotal_minor,
                categories=list(c.categories),
                stackable=c.stackable,
            )
            for c in valid
        ],
        refused=refused,
    )
