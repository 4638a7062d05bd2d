"""The in-app inbox: a delivery on the inbox channel becomes a message the customer's app
reads through the API (newest first, keyset pages) and marks read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import InboxMessage
from rapport.platform import clock
from rapport.platform.errors import NotFound


@dataclass(frozen=True)
class InboxPage:
    messages: list[InboxMessage]
    next_before: int | None  # pass as ``before`` for the next (older) page


def inbox_messages(
    db: Session, *, customer_id: str, before: int | None = None, limit: int = 20
) -> InboxPage:
    """The customer's messages, newest first; ``before`` an id from the previous page."""
    limit = max(1, min(limit, 100))
    query = (
        select(InboxMessage)
        .where(InboxMessage.customer_id == customer_id)
        .order_by(InboxMessage.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(InboxMessage.id < before)
    rows = list(db.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return InboxPage(rows, rows[-1].id if more and rows else None)


def mark_read(db: Session, *, customer_id: str, message_id: int) -> InboxMessage:
    """Mark one of the customer's messages read (idempotent) and commit."""
    message = db.get(InboxMessage, message_id)
    if message is None or message.customer_id != customer_id:
        raise NotFound(f"No inbox message {message_id} for this customer", field="message_id")
    if message.read_at is None:
        message.read_at = clock.now()
        db.commit()
    return message
