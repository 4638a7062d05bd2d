"""The append-only event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
LogPosition = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One fact. ``position`` orders the log by arrival; processors keep cursors on it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_position", "customer_id", "position"),
        Index("ix_events_anonymous_id", "anonymous_id"),
        # Segments' "did event E in the last N days": one range per type, not the whole log.
        Index("ix_events_type_occurred", "type", "occurred_at"),
    )

    position: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    # The customer as the sender named them (Segment's userId, the API's customer_id) ...
    user_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # ... and as the profile processor resolved them (commands set it directly).
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(100), default=None)
    channel: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    properties: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="api")


class ProcessorCursor(Base):
    """How far along the log a processor has got. It moves in the same transaction as the
    processor's writes, so a crash replays at most one batch and applies nothing twice."""

    __tablename__ = "processor_cursors"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HeldEvent(Base):
    """An event a processor's handler raised on. While ``held_at`` is unset the processor's
    cursor waits at it and each tick tries it again (``attempts`` counts the tries); after
    ``processors.HOLD_AFTER`` tries it is set aside (``held_at``) and the processor goes on past
    it, so one event it cannot apply never stops it for good. A held event waits for an
    operator to mend the cause and retry it (``rapport events retry``); an applied one is
    deleted. ``error`` may quote the event, so erasing its customer blanks it.

    A processor whose events must apply in their order per customer or order (``in_order_by``)
    also holds the later events of a held event's subjects, untried, ``behind`` it (its log
    position; ``attempts`` 0), so that a retry applies them after it, never before."""

    __tablename__ = "processor_held_events"

    processor: Mapped[str] = mapped_column(String(60), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str] = mapped_column(String(500))
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    behind: Mapped[int | None] = mapped_column(BigInteger, default=None)


class SuppressedIdentity(Base):
    """Identities of erased customers, kept only as salted digests, so that their events are
    refused at ingestion without keeping the personal data itself."""

    __tablename__ = "suppressed_identities"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    suppressed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeadLetter(Base):
    """A tracking message refused inside a batch (which still answers 200, as Segment clients
    expect), kept with the reason so that the loss is visible. Bounded: the newest
    ``RAPPORT_DEAD_LETTER_LIMIT`` are kept. ``customer_ref`` and ``anonymous_id`` are the
    person as the sender named them, so that erasure finds their rows (``raw`` is searched too)."""

    __tablename__ = "tracking_dead_letters"
    __table_args__ = (
        Index("ix_tracking_dead_letters_customer_ref", "customer_ref"),
        Index("ix_tracking_dead_letters_anonymous_id", "anonymous_id"),
        Index("ix_tracking_dead_letters_reason", "reason"),
    )

    id: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    endpoint: Mapped[str] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40), default=None)
    item_index: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(60))
    field: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(500))
    event_id: Mapped[str | None] = mapped_column(String(100), default=None)
    customer_ref: Mapped[str | None] = mapped_column(String(100), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # The message as JSON text, cut to RAPPORT_DEAD_LETTER_MAX_BYTES (``truncated`` says so);
    # None when it named an erased person.
    raw: Mapped[str | None] = mapped_column(Text, default=None)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
