"""Jobs, schedules and event processors for campaigns' segments (imported by
rapport.campaigns.tasks).

Membership stays current two ways: the ``campaigns.segments`` processor re-evaluates every
segment for the customers whose events just arrived (an order, a consent change, points, a
merge or an erasure), and a refresh every 15 minutes re-evaluates everyone, which also moves
the "last N days" windows along."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.segments.membership import refresh_all_segments, refresh_customers
from rapport.events import service as events
from rapport.platform import jobs

REFRESH_EVERY = timedelta(minutes=15)


def affected_customers(batch: list[events.LoggedEvent]) -> list[str]:
    """The customers a batch of events may have moved in or out of segments: each event's
    customer, and the profile merged away by a ``customers_merged`` event."""
    affected: set[str] = set()
    for event in batch:
        if event.customer_id:
            affected.add(event.customer_id)
        if event.type == "customers_merged":
            merged = (event.properties or {}).get("merged_customer_id")
            if isinstance(merged, str) and merged:
                affected.add(merged)
    return sorted(affected)


# Memberships read the traits and the event's customer the profile processor writes: a
# tracked event is re-evaluated only once that processor has passed it.
@events.processor("campaigns.segments", batch_size=500, after=("customers.profile",))
def keep_memberships_current(db: Session, batch: list[events.LoggedEvent]) -> None:
    """Re-evaluate every segment for the batch's customers (in the batch's transaction)."""
    refresh_customers(db, customer_ids=affected_customers(batch))


@jobs.job("campaigns.refresh_segments")
def refresh_segments(db: Session, payload: dict[str, Any]) -> None:
    """Re-evaluate every segment over everyone and store the difference."""
    refresh_all_segments(db)


jobs.scheduled("campaigns.refresh_segments", every=REFRESH_EVERY)
