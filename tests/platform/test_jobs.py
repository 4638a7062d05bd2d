"""Background jobs: run once, retry with backoff, give up, schedules queued once per period."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.platform import clock, jobs
from rapport.platform.db import begin_write_now, open_session, read_only
from rapport.platform.models import Job

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> clock.FrozenClock:
    frozen_clock = clock.FrozenClock(START)
    clock.set_clock(frozen_clock)
    return frozen_clock


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def handlers(calls: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    """Test job kinds: one that records its payload, one that fails a given number of times."""
    failures = {"left": 0}

    @jobs.job("test.record")
    def record(db: Session, payload: dict[str, Any]) -> None:
        calls.append(payload)

    @jobs.job("test.flaky")
    def flaky(db: Session, payload: dict[str, Any]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("carrier API timed out")
        calls.append(payload)

    yield failures
    jobs._handlers.pop("test.record", None)
    jobs._handlers.pop("test.flaky", None)
    jobs._schedules.pop("test.record", None)


def _job(url: str, job_id: int) -> Job:
    with open_session(url) as db:
        found = db.get(Job, job_id)
        assert found is not None
        return found


def test_queued_job_runs_once_and_is_marked_done(committed_url, handlers, calls, frozen) -> None:
    # given a queued job, committed with its caller's transaction
    with open_session(committed_url) as db:
        queued = jobs.enqueue(db, kind="test.record", payload={"order": "O-1"})
        db.commit()
        job_id = queued.id
    # when the worker runs what is due, twice
    ran = jobs.run_due(worker_id="w1", database_url=committed_url)
    again = jobs.run_due(worker_id="w1", database_url=committed_url)
    # then the handler ran exactly once
    assert (ran, again) == (1, 0)
    assert calls == [{"order": "O-1"}]
    done = _job(committed_url, job_id)
    assert (done.status, done.attempts, done.finished_at) == ("done", 1, START)


def test_job_enqueued_in_a_rolled_back_transaction_never_runs(
    committed_url, handlers, calls
) -> None:
    with open_session(committed_url) as db:
        jobs.enqueue(db, kind="test.record", payload={"order": "O-2"})
        db.rollback()
    assert jobs.run_due(worker_id="w1", database_url=committed_url) == 0
    assert calls == []


def test_failing_job_retries_with_backoff_then_succeeds(
    committed_url, handlers, calls, frozen
) -> None:
    # given a job whose handler fails twice
    handlers["left"] = 2
    with open_session(committed_url) as db:
        job_id = jobs.enqueue(db, kind="test.flaky", payload={"n": 1}).id
        db.commit()
    # when it first runs, it fails and waits 10 s
    jobs.run_due(worker_id="w1", database_url=committed_url)
    first = _job(committed_url, job_id)
    assert (first.status, first.attempts) == ("queued", 1)
    assert first.run_at == START + timedelta(seconds=10)
    assert "carrier API timed out" in (first.last_error or "")
    # and it does not run before its backoff has passed
    assert jobs.run_due(worker_id="w1", database_url=committed_url) == 0
    frozen.advance(timedelta(seconds=10))
    jobs.run_due(worker_id="w1", database_url=committed_url)
    second = _job(committed_url, job_id)
    assert second.run_at == START + timedelta(seconds=10) + timedelta(seconds=20)
    frozen.advance(timedelta(seconds=20))
    jobs.run_due(worker_id="w1", database_url=committed_url)
    # then the third attempt succeeds
    third = _job(committed_url, job_id)
    assert (third.status, third.attempts, third.last_error) == ("done", 3, None)
    assert calls == [{"n": 1}]


def test_job_gives_up_after_max_attempts(committed_url, handlers, calls, frozen) -> None:
    handlers["left"] = 99
    with open_session(committed_url) as db:
        job_id = jobs.enqueue(db, kind="test.flaky", payload={}, max_attempts=3).id
        db.commit()
    for _ in range(5):
        jobs.run_due(worker_id="w1", database_url=committed_url)
        frozen.advance(timedelta(hours=1))
    failed = _job(committed_url, job_id)
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert calls == []


def test_unknown_job_kind_fails_visibly(committed_url, frozen) -> None:
    with open_session(committed_url) as db:
        job_id = jobs.enqueue(db, kind="test.nobody-handles-this", max_attempts=1).id
        db.commit()
    jobs.run_due(worker_id="w1", database_url=committed_url)
    failed = _job(committed_url, job_id)
    assert failed.status == "failed"
    assert "no handler registered" in (failed.last_error or "")


def test_backoff_doubles_and_is_capped() -> None:
    assert [jobs.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert jobs.backoff(30) == timedelta(hours=1)


def test_schedule_is_queued_once_per_period_across_workers(committed_url, handlers, frozen) -> None:
    # given a schedule every hour
    jobs.scheduled("test.record", every=timedelta(hours=1), payload={"from": "schedule"})
    # when two workers tick in the same hour
    with open_session(committed_url) as first, open_session(committed_url) as second:
        jobs.enqueue_schedules(first)
        jobs.enqueue_schedules(second)
    # then one job is queued for that hour; the next hour queues another
    frozen.advance(timedelta(hours=1))
    with open_session(committed_url) as db:
        jobs.enqueue_schedules(db)
        kinds = list(db.scalars(select(Job.dedupe_key).where(Job.kind == "test.record")))
    assert len(kinds) == 2
    assert len(set(kinds)) == 2


def test_stale_running_job_is_requeued(committed_url, handlers, frozen, calls) -> None:
    with open_session(committed_url) as db:
        job_id = jobs.enqueue(db, kind="test.record", payload={"n": 7}).id
        db.commit()
        # a worker claims it and dies
        claimed = jobs._claim(db, "dead-worker")
        assert claimed is not None
        assert claimed.id == job_id
    frozen.advance(jobs.STALE_AFTER + timedelta(seconds=1))
    with open_session(committed_url) as db:
        assert jobs.requeue_stale(db) == 1
    jobs.run_due(worker_id="w2", database_url=committed_url)
    assert calls == [{"n": 7}]


def test_a_job_whose_heartbeat_stopped_is_requeued_and_a_long_running_one_is_not(
    committed_url, handlers, frozen, caplog
) -> None:
    # given two running jobs: one whose worker was killed, one whose worker is alive
    with open_session(committed_url) as db:
        dead_id = jobs.enqueue(db, kind="test.record", payload={"n": 1}).id
        busy_id = jobs.enqueue(db, kind="test.record", payload={"n": 2}).id
        db.commit()
        dead = jobs._claim(db, "host:1:dead")
        busy = jobs._claim(db, "host:2:busy")
    assert (dead and dead.id, busy and busy.id) == (dead_id, busy_id)
    assert busy is not None
    # when 40 minutes pass, the live worker's heartbeat arriving every 20 s, and the stale
    # jobs are looked for each minute
    requeued = 0
    with caplog.at_level(logging.WARNING, logger="rapport.platform.jobs"):
        for _ in range(40 * 3):
            frozen.advance(timedelta(seconds=20))
            assert jobs.beat(busy, worker_id="host:2:busy", database_url=committed_url)
            if frozen().second == 0:
                with open_session(committed_url) as db:
                    requeued += jobs.requeue_stale(db)
    # then the killed worker's job was queued again within the stale bound, once
    assert requeued == 1
    assert [r.getMessage() for r in caplog.records if "queued again" in r.getMessage()] == [
        f"job {dead_id} (test.record) queued again: its worker host:1:dead sent no heartbeat"
        f" since {START}"
    ]
    again = _job(committed_url, dead_id)
    assert (again.status, again.locked_by, again.heartbeat_at) == ("queued", None, None)
    assert again.run_at <= START + jobs.STALE_AFTER + timedelta(minutes=1)
    # and the job running long is still its worker's, its heartbeat the latest
    running = _job(committed_url, busy_id)
    assert (running.status, running.locked_by) == ("running", "host:2:busy")
    assert running.heartbeat_at == frozen()


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_a_worker_that_lost_its_job_cannot_mark_it_finished(
    committed_url, frozen, caplog, outcome
) -> None:
    # given a job whose worker stalls past the stale bound while running it, so that the job
    # is queued again and another worker takes it
    @jobs.job("test.stalls")
    def stalls(db: Session, payload: dict[str, Any]) -> None:
        frozen.advance(jobs.STALE_AFTER + timedelta(seconds=1))
        with open_session(committed_url) as other:
            assert jobs.requeue_stale(other) == 1
            assert jobs._claim(other, "w2") is not None
        if outcome == "failed":
            raise RuntimeError("the stalled worker's handler failed")

    try:
        with open_session(committed_url) as db:
            job_id = jobs.enqueue(db, kind="test.stalls", payload={}).id
            db.commit()
        # when the first worker's handler returns
        with caplog.at_level(logging.WARNING, logger="rapport.platform.jobs"):
            assert jobs.run_one(worker_id="w1", database_url=committed_url) == job_id
    finally:
        jobs._handlers.pop("test.stalls", None)
    # then the job stays with the worker that now runs it, neither done nor queued
    taken = _job(committed_url, job_id)
    assert (taken.status, taken.locked_by, taken.attempts) == ("running", "w2", 2)
    assert (taken.finished_at, taken.last_error) == (None, None)
    assert any(
        f"job {job_id} (test.stalls): worker w1 no longer owns it" in r.getMessage()
        and f"its {'completion' if outcome == 'done' else 'failure'} is not recorded"
        in r.getMessage()
        for r in caplog.records
    )


def test_the_heartbeat_advances_while_a_worker_runs_a_job(committed_url, monkeypatch) -> None:
    # given a worker beating every 50 ms, and a job that runs until the test lets it finish
    release = threading.Event()
    started = threading.Event()

    @jobs.job("test.long")
    def long(db: Session, payload: dict[str, Any]) -> None:
        started.set()
        assert release.wait(timeout=30)

    monkeypatch.setattr(jobs, "_schedules", {})
    monkeypatch.setattr(jobs, "_tick_hooks", [])
    worker = jobs.Worker(database_url=committed_url, poll_seconds=0.05, heartbeat_seconds=0.05)
    thread: threading.Thread | None = None
    try:
        with open_session(committed_url) as db:
            job_id = jobs.enqueue(db, kind="test.long", payload={}).id
            db.commit()
        thread = worker.start_thread()
        assert started.wait(timeout=30)
        # when it runs, the heartbeat is seen moving on three times
        first = _job(committed_url, job_id)
        assert (first.status, first.locked_by) == ("running", worker.worker_id)
        assert first.heartbeat_at is not None
        seen = [first.heartbeat_at]
        deadline = time.monotonic() + 20
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
            latest = _job(committed_url, job_id).heartbeat_at
            assert latest is not None
            if latest > seen[-1]:
                seen.append(latest)
        # then it advanced while the job ran, and the job still ran once to its end
        assert len(seen) == 4, seen
        release.set()
        deadline = time.monotonic() + 20
        while _job(committed_url, job_id).status == "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        done = _job(committed_url, job_id)
        assert (done.status, done.attempts, done.locked_by, done.heartbeat_at) == (
            "done",
            1,
            None,
            None,
        )
    finally:
        release.set()
        worker.stop()
        jobs._handlers.pop("test.long", None)
        if thread is not None:
            thread.join(timeout=30)
    assert thread is not None
    assert not thread.is_alive()


def test_each_worker_has_an_id_of_its_own() -> None:
    # host:pid:random, so that a restarted process with the same pid is another worker
    first, second = jobs.default_worker_id(), jobs.default_worker_id()
    assert first != second
    assert first.rsplit(":", 2)[1] == second.rsplit(":", 2)[1] == str(os.getpid())


def test_a_failing_tick_hook_holds_up_neither_the_other_hooks_nor_the_due_jobs(
    committed_url, handlers, calls, frozen, monkeypatch, caplog
) -> None:
    # given a due job, a tick hook that fails every time (a processor stuck on an event) and
    # one after it, and schedules whose queueing fails too
    with open_session(committed_url) as db:
        jobs.enqueue(db, kind="test.record", payload={"n": 1})
        db.commit()
    advanced: list[str | None] = []

    def stuck(url: str | None) -> int:
        raise ArithmeticError("an event no one foresaw")

    def steady(url: str | None) -> int:
        advanced.append(url)
        return 3

    monkeypatch.setattr(jobs, "_tick_hooks", [stuck, steady])
    monkeypatch.setattr(jobs, "_schedules", {"broken": None})  # not a Schedule: queueing fails

    # when the worker ticks, twice
    with caplog.at_level(logging.ERROR, logger="rapport.platform.jobs"):
        worker = jobs.Worker(database_url=committed_url)
        first, second = worker.tick(), worker.tick()

    # then the other hook and the job ran, and each failing part was logged
    assert calls == [{"n": 1}]
    assert advanced == [committed_url, committed_url]
    assert (first, second) == (3 + 1, 3)
    failures = [r.getMessage() for r in caplog.records]
    assert sum("stuck failed" in message for message in failures) == 2
    assert sum("schedules and stale jobs failed" in message for message in failures) == 1


def test_concurrent_workers_never_run_a_job_twice(committed_url, handlers, calls) -> None:
    # given 40 queued jobs
    with open_session(committed_url) as db:
        for n in range(40):
            jobs.enqueue(db, kind="test.record", payload={"n": n})
        db.commit()
    # when four workers drain the queue at once
    threads = [
        threading.Thread(
            target=jobs.run_due, kwargs={"worker_id": f"w{i}", "database_url": committed_url}
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then every job ran exactly once
    assert sorted(call["n"] for call in calls) == list(range(40))
    with open_session(committed_url) as db:
        statuses = list(db.scalars(select(Job.status)))
    assert statuses == ["done"] * 40


def test_one_server_process_per_data_directory_runs_the_embedded_worker(tmp_path) -> None:
    # given one process's claim on the embedded worker
    first = jobs.claim_embedded_worker(tmp_path)
    assert first is not None
    # then no other claim succeeds while it is held (flock: any other open file, any process)
    assert jobs.claim_embedded_worker(tmp_path) is None
    # and once it is given up (the process stopped), the next claim succeeds
    first.close()
    again = jobs.claim_embedded_worker(tmp_path)
    assert again is not None
    again.close()


def test_a_job_that_only_reads_leaves_the_shops_writers_free(
    committed_url, backend, frozen
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL locks rows, not the database: a reader never holds writers up")
    seen: list[bool] = []

    # given a job that reads in a read-only transaction (as model training does)
    @jobs.job("test.read")
    def read(db: Session, payload: dict[str, Any]) -> None:
        read_only(db)
        db.scalar(select(Job.id).limit(1))
        # while it reads, another connection (an API request) may begin writing at once
        with open_session(committed_url) as writer:
            seen.append(begin_write_now(writer))
            writer.rollback()

    try:
        with open_session(committed_url) as db:
            jobs.enqueue(db, kind="test.read", payload={})
            db.commit()
        # when the worker runs it
        assert jobs.run_due(worker_id="w1", database_url=committed_url) == 1
    finally:
        jobs._handlers.pop("test.read", None)
    # then the writer was not held up by the job's read
    assert seen == [True]
