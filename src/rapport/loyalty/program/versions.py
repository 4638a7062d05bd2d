"""The program's configuration versions: earning rules, tier ladder and checkout policy.

Each change is a new validated version with the moment it took effect. Facts are evaluated
with the version in force when they happened, so changing the rules never rewrites the past
and a replay of the log gives the same points. Until an operator saves a version, the
defaults below apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.service import append_event
from rapport.loyalty.events import ProgramChanged
from rapport.loyalty.ledger.settings import get_program
from rapport.loyalty.models import ProgramConfig
from rapport.loyalty.program.rules import DEFAULT_RULES, RuleSet, default_rules, parse_rule_set
from rapport.loyalty.rewards.checkout import Policy
from rapport.loyalty.tiers.policy import DEFAULT_TIERS, TierPolicy, parse_tier_policy
from rapport.platform import clock
from rapport.platform.errors import InvalidInput, invalid_document
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


def _default(db: Session, kind: str) -> ConfigVersion:
    """The built-in version of ``kind``, in force until one is saved; the default spend rule
    is named in the program's currency ("1 point per Japanese yen")."""
    document = default_rules(get_program(db).currency) if kind == "rules" else dict(_DEFAULTS[kind])
    return ConfigVersion(None, kind, document, None, "default", "")


@contextmanager
def pinned(db: Session) -> Iterator[None]:
    """Read the configuration once for a batch of work (the earning processor evaluates
    thousands of facts a minute; versions change a few times a year)."""
    versions: dict[str, list[ConfigVersion]] = {kind: [] for kind in _DEFAULTS}
    for row in db.scalars(
        select(ProgramConfig).order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc())
    ):
        versions[row.kind].append(_of_row(row))
    for kind, known in versions.items():
        known.append(_default(db, kind))  # last, never in force by a moment: the fallback
    token = _pinned.set(versions)
    try:
        yield
    finally:
        _pinned.reset(token)


def _version(db: Session, kind: str, at: datetime | None) -> ConfigVersion:
    """The version in force at ``at`` (default: now; a version scheduled later is not)."""
    at = at or clock.now()
    known = _pinned.get()
    if known is not None:
        for version in known[kind]:
            if version.active_from is not None and version.active_from <= at:
                return version
        return known[kind][-1]
    query = select(ProgramConfig).where(ProgramConfig.kind == kind, ProgramConfig.active_from <= at)
    row = db.scalar(query.order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc()))
    if row is None:
        return _default(db, kind)
    return _of_row(row)


def _of_row(row: ProgramConfig) -> ConfigVersion:
    return ConfigVersion(row.id, row.kind, row.document, row.active_from, row.changed_by, row.note)


# Parsed versions: a saved version never changes, so parsing it once is enough. Keyed by the
# document itself (as canonical JSON, a few microseconds against a parse's hundreds): ids and
# moments restart in every database a process opens (tests, several installations), and
# version 1 of one is not version 1 of another.
_parsed: dict[tuple[str, str], object] = {}


def _parsed_key(version: ConfigVersion) -> tuple[str, str]:
    return (version.kind, json.dumps(version.document, sort_keys=True, default=str))


def rule_set(db: Session, *, at: datetime | None = None) -> tuple[int | None, RuleSet]:
    """The earning rules in force at ``at`` (default: now) and their version id."""
    version = _version(db, "rules", at)
    key = _parsed_key(version)
    parsed = _parsed.get(key)
    if not isinstance(parsed, RuleSet):
        parsed = _parsed[key] = parse_rule_set(version.document)
    return version.id, parsed


def tier_policy(db: Session, *, at: datetime | None = None) -> TierPolicy:
    version = _version(db, "tiers", at)
    key = _parsed_key(version)
    parsed = _parsed.get(key)
    if not isinstance(parsed, TierPolicy):
        parsed = _parsed[key] = parse_tier_policy(version.document)
    return parsed


def checkout_policy(db: Session, *, point_value_minor_per_100: int, currency: str) -> Policy:
    version = _version(db, "checkout", None)
    parsed = parse_checkout_policy(version.document)
    return Policy(
        max_line_discount_percent=parsed.max_line_discount_percent,
        max_points_payment_percent=parsed.max_points_payment_percent,
        point_value_minor_per_100=point_value_minor_per_100,
        currency=currency,
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
    return [_of_row(row) for row in rows]


def save(
    db: Session,
    kind: ConfigKind,
    document: object,
    *,
    changed_by: str,
    note: str = "",
    active_from: datetime | None = None,
    if_changed: bool = False,
) -> ConfigVersion:
    """Validate ``document`` and make it the version in force from ``active_from`` (default:
    now; a later moment schedules it). Raises a 422 problem naming the bad field; nothing is
    saved then. ``if_changed`` (a ``PUT``, which sent twice leaves what one left): a document
    that means the same as the latest version of its kind from the same moment (the one in
    force now, for now) saves nothing and answers that version (the note aside).

    A version never takes effect in the past (a moment within the clock skew a sender may
    have, :data:`clock.MAX_CLOCK_SKEW`, before now is taken as now), nor before the latest
    version of its kind: facts already received keep the version they were evaluated with,
    so a replay of the log gives the same points."""
    read = validate(kind, document)
    assert isinstance(document, dict)
    now = clock.now()
    starts = active_from or now
    if starts < now - clock.MAX_CLOCK_SKEW:
        raise InvalidInput(
            f"active_from: {starts.isoformat()} is in the past; a version takes effect now"
            " or later (leave active_from out for now), as facts already received keep the"
            " version they were evaluated with",
            field="active_from",
        )
    # A moment a drifting clock put a little before ours is taken as now: even those few
    # minutes' facts keep the version they were evaluated with.
    starts = max(starts, now)
    latest = db.scalar(
        select(ProgramConfig)
        .where(ProgramConfig.kind == kind)
        .order_by(ProgramConfig.active_from.desc(), ProgramConfig.id.desc())
        .limit(1)
    )
    if latest is not None and starts < clock.as_utc(latest.active_from):
        raise InvalidInput(
            f"active_from: version {latest.id} is scheduled from"
            f" {clock.as_utc(latest.active_from).isoformat()}; a new version takes effect at"
            " that moment or later",
            field="active_from",
        )
    if if_changed and latest is not None:
        # The same moment: now while the latest is in force, or the moment it is scheduled for.
        latest_from = clock.as_utc(latest.active_from)
        same_moment = starts == (now if latest_from <= now else latest_from)
        if same_moment and means_the_same(kind, read, latest.document):
            return _of_row(latest)
    before = tier_policy(db, at=starts) if kind == "tiers" else None
    row = ProgramConfig(
        kind=kind,
        document=document,
        active_from=starts,
        changed_by=changed_by,
        note=note[:500],
    )
    db.add(row)
    db.flush()
    append_event(
        db,
        ProgramChanged(kind=kind, version=row.id, changed_by=changed_by, note=note),
        channel="web",
    )
    if before is not None:
        assert isinstance(read, TierPolicy)
        # Imported here: the reviews read the ladder through this module.
        from rapport.loyalty.tiers.reviews import recompute_after_basis_change

        recompute_after_basis_change(db, before=before, after=read, starts=starts)
    db.commit()
    return ConfigVersion(row.id, kind, row.document, row.active_from, changed_by, row.note)


def means_the_same(kind: ConfigKind, read: object, document: object) -> bool:
    """Whether ``read`` (:func:`validate`'s answer for a draft) means what ``document`` (a
    stored version) does, compared as the program reads both: an implicit default written
    out (``"active": true``) or 5 written 5.0 is no change."""
    return _meaning(read) == _meaning(validate(kind, document))


def _meaning(parsed: object) -> object:
    dump = getattr(parsed, "model_dump", None)
    return dump() if dump is not None else parsed


def validate(kind: ConfigKind, document: object) -> object:
    if kind == "rules":
        return parse_rule_set(document)
    if kind == "tiers":
        return parse_tier_policy(document)
    return parse_checkout_policy(document)
