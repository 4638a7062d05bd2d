"""The append-only event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rapport.platform.db import Base, JsonDocument, UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
LogPosition = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One fact. ``position`` orders the log by arrival; processors keep cursors on it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_position", "customer_id", "position"),
        Index("ix_events_type_position", "type", "position"),
    )

    position: Mapped[int] = mapped_column(LogPosition, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(60))
    customer_id: Mapped[str | None] = mapped_column(String(40), default=None)
    anonymous_id: Mapped[str | None] = mapped_column(String(100), default=None)
    channel: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    properties: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="api")
