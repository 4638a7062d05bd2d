"""On PostgreSQL a processor stops at a hole in the log (a position taken by a transaction
not yet committed, or rolled back) while another transaction in the same database could
still fill it; one in another database on the same server never can, so it holds nothing
back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import rapport.domains
from rapport.events import service as events
from rapport.events.processors import run_batch
from rapport.platform import clock
from rapport.platform.db import open_session
from tests.conftest import make_database_url
from tests.events.factories import tracked

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _events_around_a_hole(url: str) -> None:
    """Two events with a hole between them: the middle one is rolled back."""
    for keep in (True, False, True):
        with open_session(url) as db:
            tracked(db, type="page_viewed", channel="web", properties={"path": "/"})
            db.flush()
            db.commit() if keep else db.rollback()


@contextmanager
def _writing(url: str) -> Iterator[None]:
    """A transaction that has written, in flight in the database at ``url`` (the newest on
    the server, which the server's snapshot does not list)."""
    engine = create_engine(url)
    with engine.connect() as writer, writer.begin():
        writer.execute(text("CREATE TEMPORARY TABLE busy (x int)"))
        writer.execute(text("INSERT INTO busy VALUES (1)"))
        yield
        writer.rollback()
    engine.dispose()


def test_a_hole_holds_a_batch_back_only_while_this_database_has_a_writer(
    committed_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("the processor asks PostgreSQL who is writing; SQLite has one writer")
    rapport.domains.load_tasks()
    # One that waits on no other processor's cursor (the triggers wait on the profile's).
    proc = next(proc for proc in events.registered_processors() if not proc.after)
    clock.set_clock(lambda: NOW)  # every hole is younger than the processor's patience
    # given events with a hole between them, and a write in flight in another database
    _events_around_a_hole(committed_url)
    elsewhere_url, remove = make_database_url("postgresql", tmp_path)
    try:
        with _writing(elsewhere_url), open_session(committed_url) as db:
            # then the batch goes past the hole: nothing over there can fill it
            assert run_batch(db, proc) == 2
    finally:
        remove()

    # given the same with a write in flight in this database
    _events_around_a_hole(committed_url)
    with _writing(committed_url), open_session(committed_url) as db:
        # then the batch stops at the hole, which that writer might still fill
        assert run_batch(db, proc) == 1
    # and once the writer is gone, the rest follows at once
    with open_session(committed_url) as db:
        assert run_batch(db, proc) == 1
