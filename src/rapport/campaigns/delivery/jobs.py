"""Jobs, schedules and event processors for campaigns' delivery (imported by
rapport.campaigns.tasks): the dispatcher runs on every worker tick."""

from __future__ import annotations

from rapport.campaigns.delivery.sending import DEFAULT_BATCH, dispatch_due, worker_name
from rapport.platform import jobs


def dispatch_tick(database_url: str | None) -> int:
    """One batch of due deliveries per tick (the worker calls again while there is work)."""
    return dispatch_due(limit=DEFAULT_BATCH, worker=worker_name(), database_url=database_url)


jobs.on_tick(dispatch_tick)
