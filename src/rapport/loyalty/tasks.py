"""The loyalty domain's background work: earning from the event log, expiry, tiers, birthdays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.events.processors import processor
from rapport.loyalty import (
    earning,
    membership_jobs,  # noqa: F401  (registers renewals and announcements)
)
from rapport.loyalty import service as ledger
from rapport.platform import jobs

processor("loyalty.earning", batch_size=200)(earning.process_loyalty_events)


@jobs.job("loyalty.expire_lots")
def expire_lots(db: Session, payload: dict[str, Any]) -> None:
    """Expire points whose lots have reached their expiry date."""
    ledger.expire_lots(db)


@jobs.job("loyalty.review_tiers")
def review_tiers(db: Session, payload: dict[str, Any]) -> None:
    """Renew or downgrade members whose tier review date has come."""
    earning.review_due_tiers(db)


@jobs.job("loyalty.birthdays")
def birthdays(db: Session, payload: dict[str, Any]) -> None:
    """Give today's birthday bonus."""
    earning.give_birthday_points(db)


jobs.scheduled("loyalty.expire_lots", every=timedelta(hours=1))
jobs.scheduled("loyalty.review_tiers", every=timedelta(days=1))
jobs.scheduled("loyalty.birthdays", every=timedelta(days=1))
