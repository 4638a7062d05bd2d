"""The events domain's background work: processors advance on every worker tick."""

from __future__ import annotations

from rapport.events.processors import run_processors
from rapport.platform import jobs


def advance_processors(database_url: str | None) -> int:
    return run_processors(database_url=database_url)


jobs.on_tick(advance_processors)
