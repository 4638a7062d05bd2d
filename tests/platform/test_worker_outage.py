"""A worker whose database goes away backs off (0.25 s doubling, capped) and logs one
traceback, then one short line per attempt with a count, and says when the database is back,
where it retried every 0.25 s with a traceback for each part of every tick. Asked of a real
worker on a PostgreSQL cluster of the test's own, stopped under it."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rapport.platform.db import create_db_engine, get_engine
from rapport.platform.jobs import Worker
from rapport.platform.migrations_runner import upgrade
from tests.platform.pg_cluster import own_cluster


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.postgres
def test_a_worker_backs_off_while_the_database_is_down_and_says_when_it_is_back() -> None:
    with own_cluster() as cluster:
        admin = create_db_engine(cluster.url).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE rapport"))
        admin.dispose()
        url = make_url(cluster.url).set(database="rapport").render_as_string(False)
        upgrade(url)
        worker = Worker(database_url=url, poll_seconds=0.25, worker_id="outage-test")
        records = Records()
        logger = logging.getLogger("rapport.platform.jobs")
        logger.addHandler(records)
        previous_level = logger.level
        logger.setLevel(logging.INFO)
        thread = worker.start_thread()
        try:
            time.sleep(1)  # a few healthy ticks
            # when the database goes down for 5 s
            down = len(records.records)
            cluster.stop()
            time.sleep(5)
            during = records.records[down:]
            cluster.start()
            # (the next attempt is at most 4 s away: 0.25 s doubling)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not any(
                "database available again" in r.getMessage() for r in records.records[down:]
            ):
                time.sleep(0.2)
            after = records.records[down + len(during) :]
        finally:
            worker.stop()
            thread.join(timeout=30)
            logger.removeHandler(records)
            logger.setLevel(previous_level)
            get_engine(url).dispose()
    # then the outage is one traceback, then one short line per attempt, backing off: with
    # 0.25 s doubling, 5 s hold five attempts (every 0.25 s, several parts each: 60 or more)
    tracebacks = [r for r in during if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in during]
    assert 3 <= len(during) <= 7, [r.getMessage() for r in during]
    assert all("\n" not in r.getMessage() for r in during)
    assert "attempt 2" in during[1].getMessage()
    # and the worker says the database is back
    assert any("database available again" in r.getMessage() for r in after), [
        r.getMessage() for r in after
    ]
