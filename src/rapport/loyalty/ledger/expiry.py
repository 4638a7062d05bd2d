"""Expiry: lots past their date are consumed, one ``expire`` transaction per member (the job)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rapport.events.service import log_event
from rapport.loyalty.events import PointsExpired
from rapport.loyalty.ledger.accounts import lock_account
from rapport.loyalty.ledger.journal import record_transaction
from rapport.loyalty.ledger.lots import consume_lots
from rapport.loyalty.ledger.tables import ACCOUNTS, LOTS
from rapport.loyalty.models import EXPIRED
from rapport.platform import clock


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    members: int = 0
    lots: int = 0
    points: int = 0


def expire_lots(db: Session, *, now: datetime | None = None, batch: int = 200) -> ExpiryRun:
    """Expire every lot whose date has passed: one ``expire`` transaction per member (their
    due lots consumed first-in first-out), committed a batch of members at a time, members
    locked in key order. Safe to run again or in two workers at once."""
    moment = now or clock.now()
    members = lots_done = points_done = 0
    after = ""
    while True:
        due_members = list(
            db.scalars(
                select(LOTS.c.customer_id)
                .where(
                    LOTS.c.remaining > 0,
                    LOTS.c.expires_at <= moment,
                    LOTS.c.customer_id > after,
                )
                .group_by(LOTS.c.customer_id)
                .order_by(LOTS.c.customer_id)
                .limit(batch)
            )
        )
        if not due_members:
            db.commit()
            return ExpiryRun(members=members, lots=lots_done, points=points_done)
        for customer_id in due_members:
            locked = lock_account(db, customer_id)
            if locked is None:
                continue
            due = db.execute(
                select(LOTS.c.id, LOTS.c.remaining)
                .where(
                    LOTS.c.customer_id == customer_id,
                    LOTS.c.remaining > 0,
                    LOTS.c.expires_at <= moment,
                )
                .order_by(LOTS.c.earned_at, LOTS.c.id)
            ).all()
            total = sum(remaining for _, remaining in due)
            if not total:
                continue
            balance = locked.balance - total
            transaction_id = record_transaction(
                db,
                customer_id=customer_id,
                kind="expire",
                points=-total,
                reason=f"{len(due)} lot(s) expired",
                legs=[(customer_id, -total), (EXPIRED, total)],
                now=clock.now(),
            )
            consume_lots(
                db,
                customer_id=customer_id,
                points=total,
                transaction_id=transaction_id,
                lots=due,
            )
            db.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.account_id == customer_id)
                .values(balance=balance, updated_at=clock.now())
            )
            log_event(
                db,
                PointsExpired(transaction_id=transaction_id, points=-total),
                channel="web",
                customer_id=customer_id,
            )
            members += 1
            lots_done += len(due)
            points_done += total
        db.commit()
        after = due_members[-1]
