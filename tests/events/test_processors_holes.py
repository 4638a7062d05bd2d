"""On PostgreSQL a processor stops at a hole in the log (a position taken by a transaction
not yet committed, or rolled back) while another transaction in the same database could
still fill it; one in another database on the same server never can, so it holds nothing
back."""

from __future__ import annotations

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


def _logged(url: str, *, keep: bool) -> None:
    """One event; rolled back instead of committed when not ``keep``, leaving a hole."""
    with open_session(url) as db:
        tracked(db, type="page_viewed", channel="web", properties={"path": "/"})
        db.flush()
        db.commit() if keep else db.rollback()


def test_a_hole_holds_a_batch_back_only_while_this_database_has_a_writer(
    committed_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("the processor asks PostgreSQL who is writing; SQLite has one writer")
    rapport.domains.load_tasks()
    proc = events.registered_processors()[0]
    clock.set_clock(lambda: NOW)  # every hole is younger than the processor's patience
    # given events with a hole between them, and a write in flight in another database
    _logged(committed_url, keep=True)
    _logged(committed_url, keep=False)
    _logged(committed_url, keep=True)
    elsewhere_url, remove = make_database_url("postgresql", tmp_path)
    elsewhere = create_engine(elsewhere_url).connect()
    try:
        elsewhere.begin()
        elsewhere.execute(text("CREATE TEMPORARY TABLE busy (x int)"))
        elsewhere.execute(text("INSERT INTO busy VALUES (1)"))
        # then the batch goes past the hole: nothing over there can fill it
        with open_session(committed_url) as db:
            assert run_batch(db, proc) == 2, "part one"
    finally:
        elsewhere.close()
        remove()

    # given the same in this database, with a write in flight here
    _logged(committed_url, keep=True)
    _logged(committed_url, keep=False)
    _logged(committed_url, keep=True)
    here = create_engine(committed_url).connect()
    try:
        # (the newest transaction on the server, which the server's snapshot does not list)
        here.begin()
        here.execute(text("CREATE TEMPORARY TABLE busy (x int)"))
        here.execute(text("INSERT INTO busy VALUES (1)"))
        # then the batch stops at the hole, which that writer might still fill
        with open_session(committed_url) as db:
            assert run_batch(db, proc) == 1, "part two"
    finally:
        here.close()
    # and once the writer is gone, the rest follows at once
    with open_session(committed_url) as db:
        assert run_batch(db, proc) == 1
