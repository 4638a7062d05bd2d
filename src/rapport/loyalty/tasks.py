"""The loyalty domain's background work: earning from the event log, expiry, tiers, birthdays."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events.service import LoggedEvent, by_person, processor
from rapport.loyalty import service as ledger
from rapport.loyalty.earning.birthdays import give_birthday_points
from rapport.loyalty.earning.processor import move_merged_member, process_loyalty_events

# Imported for its jobs: membership renewals and announcement deliveries, and their schedule.
from rapport.loyalty.membership import jobs as membership_jobs  # noqa: F401
from rapport.loyalty.tiers.reviews import (
    RECOMPUTE_JOB,
    recompute_tiers,
    record_recompute_progress,
    review_due_tiers,
)
from rapport.platform import clock, jobs


def _members_of(event: LoggedEvent) -> set[str]:
    """Whose points an event moves: its customer, and a merge's merged-away member."""
    named = by_person(event)
    merged = (event.properties or {}).get("merged_customer_id")
    if event.type == "customers_merged" and isinstance(merged, str):
        named.add(f"customer:{merged}")
    return named


# An order's return or cancellation takes back what its award gave, a first purchase is the
# first: a held event of a member holds their later ones behind it, applied after it on retry.
processor("loyalty.earning", batch_size=200, in_order_by=_members_of)(process_loyalty_events)

# A customer merge moves the merged-away member's points, debt, qualifying activity and awards
# in its own transaction (customers.merge_step), so the person's balance is whole at once.
customers.merge_step("loyalty")(move_merged_member)


@jobs.job("loyalty.expire_lots")
def expire_lots(db: Session, payload: dict[str, Any]) -> None:
    """Expire points whose lots have reached their expiry date."""
    ledger.expire_lots(db)


@jobs.job("loyalty.review_tiers")
def review_tiers(db: Session, payload: dict[str, Any]) -> None:
    """Renew or downgrade members whose tier review date has come."""
    review_due_tiers(db)


@jobs.job(RECOMPUTE_JOB)
def recompute_every_tier(db: Session, payload: dict[str, Any]) -> None:
    """Review every member again after the tier ladder's basis changed, a page at a time,
    its progress (done of total) kept in the job for the program's tiers page."""
    recompute_tiers(db, at=clock.now(), progress=partial(record_recompute_progress, db))


@jobs.job("loyalty.birthdays")
def birthdays(db: Session, payload: dict[str, Any]) -> None:
    """Give today's birthday bonus."""
    give_birthday_points(db)


jobs.scheduled("loyalty.expire_lots", every=timedelta(hours=1))
jobs.scheduled("loyalty.review_tiers", every=timedelta(days=1))
jobs.scheduled("loyalty.birthdays", every=timedelta(days=1))
