"""The event log as audiences: SELECTs of customer ids by what they did (an event type at least
k times in a window), for other domains to nest as subqueries (campaigns' segments)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from rapport.events.models import Event


def did_event_audience(
    *, event_type: str, since: datetime, at_least: int = 1
) -> Select[tuple[str]]:
    """Customers with at least ``at_least`` events of ``event_type`` that occurred since
    ``since`` (events not yet resolved to a customer are left out)."""
    query = select(Event.customer_id).where(
        Event.type == event_type, Event.occurred_at >= since, Event.customer_id.is_not(None)
    )
    if at_least <= 1:
        return cast("Select[tuple[str]]", query.distinct())
    counted = query.group_by(Event.customer_id).having(func.count() >= at_least)
    return cast("Select[tuple[str]]", counted)
