"""Queueing deliveries: one row per new (campaign, recipient, occasion), in bulk.

The unique key on ``campaign_deliveries`` is what makes "one delivery per customer per
campaign" hold whatever runs twice: rows are inserted with ``INSERT … ON CONFLICT DO NOTHING``
(SQLite and PostgreSQL), and only the rows actually inserted get their first history row.
Control-group members get a row too, ``held_out``, so results compare like with like. The
caller owns the transaction: nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from rapport.campaigns.models import Campaign, Delivery, DeliveryStatus
from rapport.platform import clock
from rapport.platform.db import insert_for
from rapport.platform.errors import InvalidInput

STAFF_PREFIX = "staff:"
# Rows per INSERT statement: big enough that 100k recipients take a few round trips, small
# enough to stay far below PostgreSQL's 65,535 bind parameters (11 columns a row).
QUEUE_BATCH = 2000


@dataclass(frozen=True)
class Recipient:
    """Who a delivery goes to: a customer (``customer_id``) or, for staff messages, an
    ``address``. ``occasion`` names the fact for repeated campaigns ('' for a campaign sent
    once); ``context`` holds the template values belonging to the occasion."""

    customer_id: str | None
    occasion: str = ""
    group: Literal["treated", "control"] = "treated"
    context: dict[str, Any] = field(default_factory=dict)
    address: str | None = None

    @property
    def recipient_key(self) -> str:
        if self.customer_id:
            return self.customer_id
        if not self.address:
            raise InvalidInput("A recipient needs a customer_id or an address", field="address")
        return STAFF_PREFIX + self.address


def staff_address(recipient_key: str) -> str | None:
    """The address of a staff delivery's recipient key, None for a customer's."""
    return recipient_key[len(STAFF_PREFIX) :] if recipient_key.startswith(STAFF_PREFIX) else None


def _chunks(items: Iterable[Recipient], size: int) -> Iterator[list[Recipient]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def queue_deliveries(db: Session, *, campaign: Campaign, recipients: Iterable[Recipient]) -> int:
    """Queue one delivery per recipient not already queued for ``campaign`` and the same
    occasion; return how many rows are new. Control-group recipients are ``held_out``. Runs
    in the caller's transaction (no commit)."""
    now = clock.now()
    added = 0
    for chunk in _chunks(recipients, QUEUE_BATCH):
        rows = _rows(campaign, chunk, now)
        if not rows:
            continue
        statement = (
            insert_for(db)(Delivery)
            .on_conflict_do_nothing(index_elements=["campaign_id", "recipient_key", "occasion"])
            .returning(Delivery.id, Delivery.status)
        )
        inserted = db.execute(statement, rows).all()
        if not inserted:
            continue
        db.execute(
            insert(DeliveryStatus),
            [
                {
                    "delivery_id": row.id,
                    "status": row.status,
                    "reason": "control group" if row.status == "held_out" else "",
                    "at": now,
                }
                for row in inserted
            ],
        )
        added += len(inserted)
    return added


def _rows(campaign: Campaign, chunk: list[Recipient], now: datetime) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for recipient in chunk:
        key = recipient.recipient_key
        held_out = recipient.group == "control"
        # A duplicate inside one statement would fail ON CONFLICT on PostgreSQL ("cannot
        # affect row a second time"): the first one wins, as it would across statements.
        rows.setdefault(
            (key, recipient.occasion),
            {
                "campaign_id": campaign.id,
                "customer_id": recipient.customer_id,
                "recipient_key": key,
                "occasion": recipient.occasion,
                "grp": recipient.group,
                "channel": campaign.channel,
                "status": "held_out" if held_out else "queued",
                "reason": "control group" if held_out else "",
                "context": recipient.context,
                "attempts": 0,
                "next_attempt_at": now,
                "queued_at": now,
                "updated_at": now,
            },
        )
    return list(rows.values())
