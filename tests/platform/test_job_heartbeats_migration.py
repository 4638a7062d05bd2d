"""Migration c25000000005: a job running when the database is migrated takes its start as its
last heartbeat, so that a job a killed worker left running is queued again by the heartbeat
rule; queued and finished jobs have none. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import text

from rapport.platform.db import create_db_engine, open_session
from rapport.platform.jobs import requeue_stale
from rapport.platform.migrations_runner import alembic_config, upgrade
from rapport.platform.models import Job
from tests.conftest import make_database_url

BEFORE = "c25000000004"
STARTED = "2026-12-01 09:00:00"


def test_running_jobs_take_their_start_as_their_heartbeat(backend: str, tmp_path: Path) -> None:
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    try:
        # given a running job (its worker killed long ago), a queued one and a done one
        command.upgrade(alembic_config(url), BEFORE)
        with engine.begin() as connection:
            for status, started in (("running", STARTED), ("queued", None), ("done", STARTED)):
                connection.execute(
                    text(
                        "INSERT INTO jobs (kind, payload, status, attempts, max_attempts,"
                        " run_at, created_at, started_at, locked_by) VALUES ('test.old', '{}',"
                        " :status, 1, 5, :at, :at, :started, :worker)"
                    ),
                    {
                        "status": status,
                        "at": STARTED,
                        "started": started,
                        "worker": "host:1:old" if status == "running" else None,
                    },
                )

        # when the database is migrated
        upgrade(url)

        # then the running job's heartbeat is its start, the others have none
        with open_session(url) as db:
            beats = {job.status: job.heartbeat_at for job in db.query(Job)}
            assert beats == {
                "running": datetime(2026, 12, 1, 9, tzinfo=UTC),
                "queued": None,
                "done": None,
            }
            # and the worker's next look for stale jobs queues it again
            assert requeue_stale(db) == 1
    finally:
        engine.dispose()
        remove()
