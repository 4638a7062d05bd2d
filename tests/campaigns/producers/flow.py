"""What the worker does, run by hand in the producers' tests: the event processors to the head
of the log, the jobs due, and the dispatcher until nothing is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rapport.campaigns.delivery import rendering
from rapport.campaigns.delivery.sending import drain
from rapport.domains import load_tasks
from rapport.events import service as events
from rapport.events.processors import GAP_PATIENCE
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


def advance_processors(database_url: str) -> int:
    """The event processors to the head of the log (the clock moved past GAP_PATIENCE first:
    see ``run_worker``)."""
    clock.set_clock(clock.FrozenClock(clock.now() + GAP_PATIENCE + timedelta(seconds=1)))
    return events.run_processors(database_url=database_url)


def run_worker(database_url: str) -> None:
    """Processors, due jobs and the dispatcher, again until a round does nothing (a fact one
    processor appends is read by another in the next round)."""
    for _ in range(6):
        # A processor waits GAP_PATIENCE on a hole in the log (on PostgreSQL, while other
        # transactions run on the server: the positions earlier tests used are one) by the
        # clock: let that much time pass, as it would for a worker.
        handled = advance_processors(database_url)
        ran = jobs.run_due(worker_id="producers-test", database_url=database_url)
        # The renderer caches compiled templates by (template id, updated_at): tests reuse
        # ids (tables emptied between tests, two databases) at the same frozen moment, so a
        # cached template from an earlier test would be taken for this one's.
        rendering._compiled.clear()
        sent = drain(database_url=database_url)
        if not (handled or ran or sent):
            return
