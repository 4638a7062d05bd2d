"""What the worker does, run by hand in the producers' tests: the event processors to the head
of the log, the jobs due, and the dispatcher until nothing is due."""

from __future__ import annotations

from datetime import UTC, datetime

from rapport.campaigns.delivery.sending import drain
from rapport.domains import load_tasks
from rapport.events import service as events
from rapport.platform import clock, jobs

# Every domain's processors and jobs, as the worker has them (loyalty's earning, feedback's
# invitations, the campaigns producers).
load_tasks()

# Midday UTC: outside every channel's quiet hours, so marketing is not deferred.
NOON = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def frozen(at: datetime = NOON) -> clock.FrozenClock:
    frozen_clock = clock.FrozenClock(at)
    clock.set_clock(frozen_clock)
    return frozen_clock


def run_worker(database_url: str) -> None:
    """Processors, due jobs and the dispatcher, again until a round does nothing (a fact one
    processor appends is read by another in the next round)."""
    for _ in range(6):
        handled = events.run_processors(database_url=database_url)
        ran = jobs.run_due(worker_id="producers-test", database_url=database_url)
        sent = drain(database_url=database_url)
        if not (handled or ran or sent):
            return
