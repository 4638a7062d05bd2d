"""An idle worker's tick is cheap: once every processor has caught up with the log, advancing
them reads the head and the cursors and does nothing else (no write turn, no cursor locks),
whatever the number of processors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

import rapport.domains
from rapport.events import service as events
from rapport.events.processors import run_processors
from rapport.platform.db import open_session
from tests.events.factories import tracked


@contextmanager
def _statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def test_processors_caught_up_cost_two_reads(committed_url: str) -> None:
    rapport.domains.load_tasks()
    assert len(events.registered_processors()) >= 5
    with open_session(committed_url) as db:
        tracked(db, type="page_viewed", channel="web", properties={"path": "/"})
        db.commit()
    run_processors(database_url=committed_url)  # every processor reaches the head

    with _statements() as seen:
        assert run_processors(database_url=committed_url) == 0

    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 2, seen  # the head and the cursors
    assert not any("FOR UPDATE" in s.upper() for s in seen)
