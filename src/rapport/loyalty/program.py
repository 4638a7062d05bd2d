"""The program's configuration: earning rules, tier ladder and checkout policy, versioned.

Each change is a new validated version with the moment it took effect. Facts are evaluated
with the version in force when they happened, so changing the rules never rewrites the past
and a replay of the log gives the same points. Until an operator saves a version, the
defaults below apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.events.service import append_event
from rapport.loyalty.checkout import Policy
from rapport.loyalty.models import ProgramConfig, TierChangeRecord, TierStanding
from rapport.loyalty.rules import DEFAULT_RULES, RuleSet, parse_rule_set
from rapport.loyalty.tiers import DEFAULT_TIERS, Benefits, TierPolicy, parse_tier_policy
from rapport.platform import clock
from rapport.platform.errors import invalid_document
from rapport.platform.schemas import StrictModel

ConfigKind = Literal["rules", "tiers", "checkout"]


class CheckoutPolicy(StrictModel):
    """Caps on what checkout may take off: a share of each line's list price, and the share
    of an order that points may pay."""

    max_line_discount_percent: int = Field(default=70, ge=0, le=100)
    max_points_payment_percent: int = Field(default=50, ge=0, le=100)


DEFAULT_CHECKOUT: dict[str, object] = CheckoutPolicy().model_dump()
_CHECKOUT = TypeAdapter(CheckoutPolicy)


def parse_checkout_policy(
    document: object, *, prefix: tuple[str | int, ...] = ()
) -> CheckoutPolicy:
    try:
        return _CHECKOUT.validate_python(document)
    except ValidationError as failure:
        raise invalid_document(failure, prefix=prefix) from None


_DEFAULTS: dict[str, dict[str, object]] = {
    "rules": DEFAULT_RULES,
    "tiers": DEFAULT_TIERS,
    "checkout": DEFAULT_CHECKOUT,
}


@dataclass(frozen=True)
class ConfigVersion:
    id: int | None  # None: the built-in default
    kind: str
    document: dict[str, Any]
    active_from: datetime | None
    changed_by: str
    note: str


# Every version of every kind, newest first, read once for a batch of work (``pinned``).
_pinned: ContextVar[dict[str, list[ConfigVersion]] | None] = ContextVar(
    "loyalty_config_pinned", default=None
)


@contextmanager
def pinned(db: Session) -> Iterator[None]:
    """Read the configuration once for a batch of work (the earning processor evaluates
    thousands of facts a minute; versions change a few times a year)."""
    versions: dict[str, list[ConfigVersion]] = {kind: [] for kind in _DEFAULTS}
    for row in db.scalars(
        select(ProgramConfig).order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc())
    ):
        versions[row.kind].append(
            ConfigVersion(row.id, row.kind, row.document, row.active_from, row.changed_by, row.note)
        )
    token = _pinned.set(versions)
    try:
        yield
    finally:
        _pinned.reset(token)


def _version(db: Session, kind: str, at: datetime | None) -> ConfigVersion:
    known = _pinned.get()
    if known is not None:
        for version in known[kind]:
            if at is None or (version.active_from is not None and version.active_from <= at):
                return version
        return ConfigVersion(None, kind, dict(_DEFAULTS[kind]), None, "default", "")
    query = select(ProgramConfig).where(ProgramConfig.kind == kind)
    if at is not None:
        query = query.where(ProgramConfig.active_from <= at)
    row = db.scalar(query.order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc()))
    if row is None:
        return ConfigVersion(None, kind, dict(_DEFAULTS[kind]), None, "default", "")
    return ConfigVersion(row.id, kind, row.document, row.active_from, row.changed_by, row.note)


# Parsed versions by id: a saved version never changes, so parsing it once is enough.
_parsed: dict[tuple[str, int | None], object] = {}


def rule_set(db: Session, *, at: datetime | None = None) -> tuple[int | None, RuleSet]:
    """The earning rules in force at ``at`` (default: now) and their version id."""
    version = _version(db, "rules", at)
    key = ("rules", version.id)
    parsed = _parsed.get(key)
    if not isinstance(parsed, RuleSet):
        parsed = _parsed[key] = parse_rule_set(version.document)
    return version.id, parsed


def tier_policy(db: Session, *, at: datetime | None = None) -> TierPolicy:
    version = _version(db, "tiers", at)
    key = ("tiers", version.id)
    parsed = _parsed.get(key)
    if not isinstance(parsed, TierPolicy):
        parsed = _parsed[key] = parse_tier_policy(version.document)
    return parsed


def checkout_policy(db: Session, *, point_value_minor_per_100: int) -> Policy:
    version = _version(db, "checkout", None)
    parsed = parse_checkout_policy(version.document)
    return Policy(
        max_line_discount_percent=parsed.max_line_discount_percent,
        max_points_payment_percent=parsed.max_points_payment_percent,
        point_value_minor_per_100=point_value_minor_per_100,
    )


def current(db: Session, kind: ConfigKind) -> ConfigVersion:
    return _version(db, kind, None)


def history(db: Session, kind: ConfigKind, *, limit: int = 20) -> list[ConfigVersion]:
    rows = db.scalars(
        select(ProgramConfig)
        .where(ProgramConfig.kind == kind)
        .order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc())
        .limit(limit)
    )
    return [
        ConfigVersion(row.id, kind, row.document, row.active_from, row.changed_by, row.note)
        for row in rows
    ]


def save(
    db: Session,
    kind: ConfigKind,
    document: object,
    *,
    changed_by: str,
    note: str = "",
    active_from: datetime | None = None,
) -> ConfigVersion:
    """Validate ``document`` and make it the version in force from ``active_from`` (default:
    now). Raises a 422 problem naming the bad field; nothing is saved then."""
    validate(kind, document)
    assert isinstance(document, dict)
    now = clock.now()
    row = ProgramConfig(
        kind=kind,
        document=document,
        active_from=active_from or now,
        changed_by=changed_by,
        note=note[:500],
    )
    db.add(row)
    db.flush()
    append_event(
        db,
        type="loyalty_program_changed",
        channel="web",
        properties={"kind": kind, "version": row.id, "changed_by": changed_by, "note": note},
    )
    db.commit()
    return ConfigVersion(row.id, kind, row.document, row.active_from, changed_by, row.note)


def validate(kind: ConfigKind, document: object) -> object:
    if kind == "rules":
        return parse_rule_set(document)
    if kind == "tiers":
        return parse_tier_policy(document)
    return parse_checkout_policy(document)


# --- tier benefits, read by other domains ----------------------------------------------------


@dataclass(frozen=True)
class MemberTier:
    tier_id: str
    tier_name: str
    since: datetime | None
    review_at: datetime | None
    qualifying_value: int
    benefits: Benefits


def member_tier(db: Session, *, customer_id: str) -> MemberTier:
    """The member's tier and its benefits (the base tier for customers without a standing)."""
    policy = tier_policy(db)
    standing = db.get(TierStanding, customer_id)
    tier = policy.tier(standing.tier_id if standing else None)
    return MemberTier(
        tier_id=tier.id,
        tier_name=tier.name,
        since=standing.since if standing else None,
        review_at=standing.review_at if standing else None,
        qualifying_value=standing.qualifying_value if standing else 0,
        benefits=tier.benefits,
    )


def tier_distribution(db: Session) -> list[tuple[str, str, int]]:
    """(tier id, name, members) for every tier of the ladder, lowest first."""
    policy = tier_policy(db)
    counts = dict(
        db.execute(select(TierStanding.tier_id, func.count()).group_by(TierStanding.tier_id)).all()
    )
    return [(tier.id, tier.name, int(counts.get(tier.id, 0))) for tier in policy.tiers]


def tiers_by_customer(db: Session) -> dict[str, str]:
    """Every member with a tier standing and their tier id, in one read (customers without
    a standing are in the base tier). Read-only: recommendations learn per-tier popularity."""
    return {
        str(customer_id): str(tier_id)
        for customer_id, tier_id in db.execute(
            select(TierStanding.customer_id, TierStanding.tier_id)
        )
    }


def tier_history(db: Session, *, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(TierChangeRecord)
        .where(TierChangeRecord.customer_id == customer_id)
        .order_by(TierChangeRecord.id.desc())
        .limit(limit)
    )
    return [
        {
            "from_tier": row.from_tier,
            "to_tier": row.to_tier,
            "change": row.change,
            "qualifying_value": row.qualifying_value,
            "changed_at": row.changed_at.isoformat(),
        }
        for row in rows
    ]
