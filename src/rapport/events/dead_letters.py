"""Tracking messages refused inside a batch: kept, counted and logged, never lost silently.

A batch answers 200 even when some of its messages are refused (Segment clients retry any
other status, and would send the valid ones again for ever). So each refused message is:

- counted in ``rapport_tracking_rejected_total{reason}`` on ``/metrics``;
- logged, one warning line per batch with refusals;
- kept in ``tracking_dead_letters`` with its reason, field and the message itself (cut to
  ``RAPPORT_DEAD_LETTER_MAX_BYTES``), the newest ``RAPPORT_DEAD_LETTER_LIMIT`` only: older rows
  are deleted in the same transaction;
- listed on the admin page ``/admin/events/rejected``.

Only batches with refusals come here: an all-valid batch costs nothing more.
Dead letters may hold personal data; :func:`erase` removes a person's rows (the erasure
workflow calls it through ``events.service.erase_dead_letters``). A message naming an
erased (suppressed) person is kept without its identities or body, and every message without
its coordinates (``events.location``).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from prometheus_client import Counter
from sqlalchemy import Table, delete, func, insert, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from rapport.events.location import message_without_coordinates
from rapport.events.models import DeadLetter, SuppressedIdentity
from rapport.platform import clock
from rapport.platform.db import writer_turn
from rapport.platform.identity import identity_digest
from rapport.platform.middleware import METRICS

log = logging.getLogger(__name__)

REJECTED = Counter(
    "rapport_tracking_rejected",
    "Tracking messages refused (inside a batch or alone), by reason code.",
    ["reason"],
    registry=METRICS,
)

_TABLE = cast(Table, DeadLetter.__table__)
_FIELD_CHARS = 200
_MESSAGE_CHARS = 500
_ID_CHARS = 100


@dataclass(frozen=True, slots=True)
class Rejection:
    """One refused message of a batch: its index, the first error's code, field and message,
    and the message as it came (any JSON value)."""

    index: int
    reason: str
    field: str
    message: str
    item: Any


def count(reason: str) -> None:
    """Count one refused message (a single call answered 422 is counted here too)."""
    REJECTED.labels(reason).inc()


def record(
    db: Session,
    rejections: Sequence[Rejection],
    *,
    endpoint: str,
    api_key_id: str | None,
    names: dict[str, str],
    keep: int,
    max_bytes: int,
    total: int,
) -> None:
    """Count, log and keep a batch's refused messages, then commit. ``names`` maps
    ``event_id``, ``customer_id`` and ``anonymous_id`` to the wire's field names. Keeping is
    best effort: the answer lists the refusals whatever happens here."""
    reasons = Tally(rejection.reason for rejection in rejections)
    for reason, found in reasons.items():
        REJECTED.labels(reason).inc(found)
    log.warning(
        "tracking batch on %s (key %s): %d of %d messages rejected (%s); kept as dead letters",
        endpoint,
        api_key_id,
        len(rejections),
        total,
        ", ".join(f"{reason} x{found}" for reason, found in reasons.most_common()),
    )
    if keep <= 0:
        return
    try:
        _store(db, rejections[-keep:], endpoint, api_key_id, names, keep, max_bytes)
    except Exception:
        db.rollback()
        log.exception("could not keep %d rejected tracking messages", len(rejections))


def _store(
    db: Session,
    rejections: Sequence[Rejection],
    endpoint: str,
    api_key_id: str | None,
    names: dict[str, str],
    keep: int,
    max_bytes: int,
) -> None:
    now = clock.now()
    rows = [_row(found, endpoint, api_key_id, names, max_bytes, now) for found in rejections]
    with writer_turn(db):
        erased = _suppressed(db, rows)
        for row in rows:
            if row["customer_ref"] in erased or row["anonymous_id"] in erased:
                # An erased person's message: keep that it happened, not who or what.
                row.update(customer_ref=None, anonymous_id=None, event_id=None, raw=None)
        db.execute(insert(_TABLE), rows)
        newest = db.scalar(select(func.max(_TABLE.c.id)))
        if newest is not None and newest > keep:
            db.execute(delete(_TABLE).where(_TABLE.c.id <= newest - keep))
        db.commit()


def _row(
    rejection: Rejection,
    endpoint: str,
    api_key_id: str | None,
    names: dict[str, str],
    max_bytes: int,
    now: datetime,
) -> dict[str, Any]:
    """A rejection's row: its reason always, and its message with the identities it names
    unless reading it fails (then the row says only what was refused and why, and the others
    of the batch are kept as they are)."""
    row: dict[str, Any] = {
        "received_at": now,
        "endpoint": endpoint,
        "api_key_id": api_key_id,
        "item_index": rejection.index,
        "reason": _text(rejection.reason, 60) or "unknown",
        "field": _text(rejection.field, _FIELD_CHARS) or "body",
        "message": _text(rejection.message, _MESSAGE_CHARS) or "",
        "event_id": None,
        "customer_ref": None,
        "anonymous_id": None,
        "raw": None,
        "truncated": False,
    }
    try:
        row.update(_content(rejection.item, names, max_bytes))
    except Exception:
        log.exception(
            "could not keep rejected tracking message %d on %s as sent; kept its reason only",
            rejection.index,
            endpoint,
        )
    return row


def _content(item: Any, names: dict[str, str], max_bytes: int) -> dict[str, Any]:
    """The kept message (any JSON value, whatever type each field holds) and its identities."""
    # Kept without its coordinates: a refused message is no one's event, whose person's
    # consent to location could be asked (events.location).
    item = message_without_coordinates(item)
    fields = item if isinstance(item, dict) else {}
    try:
        encoded = orjson.dumps(item, default=str)
    except TypeError:  # integers beyond 64 bits
        encoded = orjson.dumps(repr(item))
    # orjson escapes NUL as \u0000, so the text stores on PostgreSQL too.
    return {
        "event_id": _text(fields.get(names["event_id"]), _ID_CHARS),
        "customer_ref": _text(fields.get(names["customer_id"]), _ID_CHARS),
        "anonymous_id": _text(fields.get(names["anonymous_id"]), _ID_CHARS),
        "raw": encoded[:max_bytes].decode("utf-8", "ignore"),
        "truncated": len(encoded) > max_bytes,
    }


def _text(value: Any, limit: int) -> str | None:
    """``value`` as text a column takes on both databases: no NUL, at most ``limit``."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip().replace("\x00", "\ufffd")
    return text[:limit] or None


def _suppressed(db: Session, rows: list[dict[str, Any]]) -> set[str]:
    """The identities among ``rows`` that belong to erased people."""
    digests: dict[str, str] = {}
    for row in rows:
        if row["customer_ref"]:
            digests[identity_digest("external_id", row["customer_ref"])] = row["customer_ref"]
        if row["anonymous_id"]:
            digests[identity_digest("anonymous_id", row["anonymous_id"])] = row["anonymous_id"]
    if not digests:
        return set()
    found = db.scalars(
        select(SuppressedIdentity.digest).where(SuppressedIdentity.digest.in_(list(digests)))
    )
    return {digests[digest] for digest in found}


def latest(db: Session, *, reason: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """The newest dead letters, optionally of one reason."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)
    if reason:
        query = query.where(DeadLetter.reason == reason)
    return list(db.scalars(query))


def by_reason(db: Session) -> list[tuple[str, int, datetime]]:
    """(reason, dead letters kept, newest) for every reason, most frequent first."""
    query = (
        select(DeadLetter.reason, func.count(), func.max(DeadLetter.received_at))
        .group_by(DeadLetter.reason)
        .order_by(func.count().desc(), DeadLetter.reason)
    )
    return [(reason, found, newest) for reason, found, newest in db.execute(query)]


def erase(db: Session, identities: Iterable[str]) -> int:
    """Delete the dead letters that name any of ``identities`` (customer ids, the sender's own
    ids, anonymous ids, emails, phones): by column, or anywhere in the kept message. Adds to
    the caller's transaction; returns how many rows go."""
    values = sorted({value for value in identities if value})
    if not values:
        return 0
    conditions: list[ColumnElement[bool]] = [
        _TABLE.c.customer_ref.in_(values),
        _TABLE.c.anonymous_id.in_(values),
    ]
    for value in values:
        # As the kept JSON text writes it (quotes, backslashes and control characters escaped).
        needle = orjson.dumps(value).decode()[1:-1]
        conditions.append(_TABLE.c.raw.contains(needle, autoescape=True))
    result = db.execute(delete(_TABLE).where(or_(*conditions)))
    return int(getattr(result, "rowcount", 0) or 0)
