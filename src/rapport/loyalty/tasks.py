"""The loyalty domain's background work: earning from the event log, expiry, tiers, birthdays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.events.service import processor
from rapport.loyalty import service as ledger
from rapport.loyalty.earning.birthdays import give_birthday_points
from rapport.loyalty.earning.processor import process_loyalty_events

# Imported for its jobs: membership renewals and announcement deliveries, and their schedule.
from rapport.loyalty.membership import jobs as membership_jobs  # noqa: F401
from rapport.loyalty.tiers.reviews import review_due_tiers
from rapport.platform import jobs

processor("loyalty.earning", batch_size=200)(process_loyalty_events)


@jobs.job("loyalty.expire_lots")
def expire_lots(db: Session, payload: dict[str, Any]) -> None:
    """Expire points whose lots have reached their expiry date."""
    ledger.expire_lots(db)


@jobs.job("loyalty.review_tiers")
def review_tiers(db: Session, payload: dict[str, Any]) -> None:
    """Renew or downgrade members whose tier review date has come."""
    review_due_tiers(db)


@jobs.job("loyalty.birthdays")
def birthdays(db: Session, payload: dict[str, Any]) -> None:
    """Give today's birthday bonus."""
    give_birthday_points(db)


jobs.scheduled("loyalty.expire_lots", every=timedelta(hours=1))
jobs.scheduled("loyalty.review_tiers", every=timedelta(days=1))
jobs.scheduled("loyalty.birthdays", every=timedelta(days=1))
