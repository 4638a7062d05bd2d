"""The program's configuration and the simulator over HTTP.

``PUT /v1/loyalty/program/{kind}`` saves a validated new version of the earning rules, the tier
ladder or the checkout policy; ``POST /v1/loyalty/simulate`` answers which rules fire for an
order or event and why, writing nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import AwareDatetime, Field
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.loyalty.earning import awards as earning_awards
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.program import versions
from rapport.loyalty.program.rules import (
    EVENT_FACTS,
    Fact,
    evaluate,
    named_categories,
    parse_rule_set,
)
from rapport.loyalty.schemas import CategoryWarningOut, PricesCurrency
from rapport.loyalty.tiers.policy import parse_tier_policy
from rapport.platform import clock
from rapport.platform.auth import AdminKey, ReadKey
from rapport.platform.db import DbSession
from rapport.platform.errors import InvalidInput
from rapport.platform.schemas import CurrencyCode, MinorUnits, StrictModel

# Included by loyalty.api, under its /v1/loyalty prefix.
router = APIRouter(tags=["loyalty program"])

Kind = Annotated[
    Literal["rules", "tiers", "checkout"],
    Path(description="rules: earning rules; tiers: the tier ladder; checkout: discount caps"),
]


class ConfigOut(StrictModel):
    kind: str
    version: int | None = Field(description="null: the built-in default, never saved")
    active_from: datetime | None
    changed_by: str
    note: str
    document: dict[str, Any]
    warnings: list[CategoryWarningOut] = Field(
        default_factory=list,
        description="Earning rules only: categories named that no product is in (not refused).",
    )


class ConfigIn(StrictModel):
    document: dict[str, Any] = Field(description="The rules, tier ladder or checkout policy.")
    note: str = Field(default="", max_length=500)
    active_from: AwareDatetime | None = Field(
        default=None,
        description="When it takes effect: now (the default) or later, which schedules it; a"
        " moment in the past, or before a version already scheduled, is refused.",
    )


def _config_out(
    version: versions.ConfigVersion, warnings: list[CategoryWarningOut] | None = None
) -> ConfigOut:
    return ConfigOut(
        kind=version.kind,
        version=version.id,
        active_from=version.active_from,
        changed_by=version.changed_by,
        note=version.note,
        document=version.document,
        warnings=warnings or [],
    )


def _warnings(db: Session, version: versions.ConfigVersion) -> list[CategoryWarningOut]:
    """Categories the rules name that no product is in (the catalogue may load later, so a
    warning, not a refusal)."""
    if version.kind != "rules":
        return []
    named = named_categories(parse_rule_set(version.document), prefix="document.")
    return [
        CategoryWarningOut(field=w.field, detail=w.detail)
        for w in catalog.category_warnings(db, named=named)
    ]


@router.get("/program/{kind}", response_model=ConfigOut)
def get_config(kind: Kind, db: DbSession, _key: ReadKey) -> ConfigOut:
    """The version in force now (a version scheduled later is not, until its moment)."""
    version = versions.current(db, kind)
    return _config_out(version, _warnings(db, version))


@router.get("/program/{kind}/history", response_model=list[ConfigOut])
def config_history(kind: Kind, db: DbSession, _key: ReadKey) -> list[ConfigOut]:
    """The versions, the one that takes effect last first (scheduled ones included)."""
    return [_config_out(version) for version in versions.history(db, kind)]


@router.put("/program/{kind}", response_model=ConfigOut)
def save_config(kind: Kind, body: ConfigIn, db: DbSession, key: AdminKey) -> ConfigOut:
    """Save a new version. Invalid documents are refused naming the field
    (``document.rules.2.points_per_unit``); the past keeps the points it earned. A document
    that means what the latest version does, from the same moment, saves nothing and answers
    that version (a PUT sent twice leaves what one left; the note is not compared)."""
    version = versions.save(
        db,
        kind,
        _document(kind, body.document),
        changed_by=f"api key {key.name}",
        note=body.note,
        active_from=body.active_from,
        if_changed=True,
    )
    return _config_out(version, _warnings(db, version))


def _document(kind: str, document: dict[str, Any]) -> dict[str, Any]:
    if kind == "rules":
        parse_rule_set(document, prefix=("document",))
    elif kind == "tiers":
        parse_tier_policy(document, prefix=("document",))
    else:
        versions.parse_checkout_policy(document, prefix=("document",))
    return document


# --- the simulator -------------------------------------------------------------------------


class SimLine(StrictModel):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits
    category: str | None = Field(default=None, max_length=300)


class SimOrder(StrictModel):
    order_id: str = Field(default="simulated", min_length=1, max_length=64)
    channel: Literal["web", "app", "store", "call_center"] = "web"
    lines: list[SimLine] = Field(min_length=1, max_length=500)
    discount_minor: MinorUnits = 0
    currency: CurrencyCode | None = PricesCurrency


class SimEvent(StrictModel):
    type: Literal[
        "preference_shared", "review_verified", "birthday", "delivery_late", "delivery_failed"
    ]
    order_id: str | None = Field(default=None, max_length=64)
    field: str | None = Field(default=None, max_length=60, description="The preference shared.")
    review_id: str | None = Field(default=None, max_length=64)


class SimulateIn(StrictModel):
    customer_id: str | None = Field(
        default=None,
        max_length=customers.CUSTOMER_REF_MAX_LENGTH,
        description="A member: their tier, history and caps count. "
        + customers.CUSTOMER_REF_DESCRIPTION,
    )
    order: SimOrder | None = None
    event: SimEvent | None = None
    occurred_at: AwareDatetime | None = None
    rules: dict[str, Any] | None = Field(
        default=None, description="Try these rules instead of the saved ones (not saved)."
    )


class DecisionOut(StrictModel):
    rule_id: str
    rule_name: str
    kind: str
    fired: bool
    points: int
    why: str
    once_key: str | None
    capped: bool


class SimulateOut(StrictModel):
    rules_version: int | None
    tier: str | None
    earlier_orders: int
    points: int
    decisions: list[DecisionOut]


@router.post("/simulate", response_model=SimulateOut)
def simulate(body: SimulateIn, db: DbSession, _key: ReadKey) -> SimulateOut:
    """Which rules would fire for this order or event, and why. Writes nothing."""
    if (body.order is None) == (body.event is None):
        raise InvalidInput("Give either an order or an event", field="order")
    customer_id = (
        customers.resolve_optional_customer_ref(db, ref=body.customer_id or None)
        or "simulated-customer"
    )
    at = body.occurred_at or clock.now()
    program_currency = get_program(db).currency
    if body.order is not None:
        order = body.order
        fact = Fact(
            kind="order_placed",
            customer_id=customer_id,
            occurred_at=at,
            channel=order.channel,
            order_id=order.order_id,
            lines=earning_awards.order_lines(
                db,
                [dict(line.model_dump(), line_no=n) for n, line in enumerate(order.lines, 1)],
            ),
            discount_minor=order.discount_minor,
            total_minor=sum(line.quantity * line.unit_price_minor for line in order.lines)
            - order.discount_minor,
            currency=order.currency or program_currency,
            program_currency=program_currency,
        )
    else:
        assert body.event is not None
        fact = Fact(
            kind=EVENT_FACTS[body.event.type],
            customer_id=customer_id,
            occurred_at=at,
            order_id=body.event.order_id,
            preference_field=body.event.field,
            review_id=body.event.review_id,
            program_currency=program_currency,
        )
    if body.rules is not None:
        version, rules = None, parse_rule_set(body.rules, prefix=("rules",))
    else:
        version, rules = versions.rule_set(db, at=at)
    member = earning_awards.member_context(db, rules, fact)
    decisions = evaluate(rules, fact, member)
    db.rollback()  # reads only; nothing to keep
    return SimulateOut(
        rules_version=version,
        tier=member.tier,
        earlier_orders=member.earlier_orders,
        points=sum(d.points for d in decisions if d.fired),
        decisions=[
            DecisionOut(
                rule_id=d.rule_id,
                rule_name=d.rule_name,
                kind=d.kind,
                fired=d.fired,
                points=d.points,
                why=d.why,
                once_key=d.once_key,
                capped=d.capped,
            )
            for d in decisions
        ],
    )


# --- checkout ------------------------------------------------------------------------------
