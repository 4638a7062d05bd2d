"""Background jobs: a table-backed queue, retries with exponential backoff, and schedules.

Domains declare handlers next to their code (``<domain>/tasks.py``) with :func:`job` and
periodic work with :func:`scheduled`. Handlers must be idempotent: a job can run again after a
crash between its work and its completion mark.

A running job carries its worker's id (``locked_by``) and a heartbeat (``heartbeat_at``) that a
thread of the worker's refreshes every ``HEARTBEAT_SECONDS`` while the handler runs. A job whose
heartbeat is older than ``STALE_AFTER`` lost its worker and is queued again; a job running long
keeps its heartbeat fresh and stays with its worker. A worker marks a job done or failed only
while it still owns that run of it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any, NamedTuple

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.platform import admin_security, clock
from rapport.platform.db import in_read_only_transaction, open_session
from rapport.platform.errors import database_unavailable
from rapport.platform.models import Job

log = logging.getLogger(__name__)

JobHandler = Callable[[Session, dict[str, Any]], None]

BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_CAP = timedelta(hours=1)
# A running job's worker refreshes its heartbeat this often; one whose heartbeat is older than
# STALE_AFTER (several missed beats) lost its worker and is queued again.
HEARTBEAT_SECONDS = 20.0
STALE_AFTER = timedelta(minutes=2)
HOUSEKEEPING_SECONDS = 10.0
# While the database is unavailable the worker tries again after 0.25 s, doubling up to 30 s.
OUTAGE_FIRST_WAIT_S = 0.25
OUTAGE_MAX_WAIT_S = 30.0


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: str
    every: timedelta
    payload: dict[str, Any] = field(default_factory=dict)


_handlers: dict[str, JobHandler] = {}
_schedules: dict[str, Schedule] = {}
# Work the worker does on every tick besides jobs, such as advancing event processors.
TickHook = Callable[[str | None], int]
_tick_hooks: list[TickHook] = []


def on_tick(hook: TickHook) -> TickHook:
    """Call ``hook(database_url)`` on every worker tick; it returns how much it did."""
    if hook not in _tick_hooks:
        _tick_hooks.append(hook)
    return hook


def _name_of(hook: TickHook) -> str:
    return f"{getattr(hook, '__module__', '')}.{getattr(hook, '__qualname__', repr(hook))}"


def job(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register ``func`` as the handler for jobs of ``kind``."""

    def register(func: JobHandler) -> JobHandler:
        _handlers[kind] = func
        return func

    return register


def scheduled(kind: str, *, every: timedelta, payload: dict[str, Any] | None = None) -> None:
    """Run jobs of ``kind`` every ``every``, at most once per period across all workers."""
    _schedules[kind] = Schedule(name=kind, kind=kind, every=every, payload=payload or {})


def registered_schedules() -> list[Schedule]:
    return list(_schedules.values())


def backoff(attempts: int) -> timedelta:
    """Delay before retry number ``attempts``: 10 s, 20 s, 40 s … capped at an hour."""
    return min(BACKOFF_BASE * (1 << max(attempts - 1, 0)), BACKOFF_CAP)


def enqueue(
    db: Session,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> Job:
    """Add a job to the caller's transaction: it is queued only if that transaction commits."""
    now = clock.now()
    queued = Job(
        kind=kind,
        payload=payload or {},
        status="queued",
        dedupe_key=dedupe_key,
        attempts=0,
        max_attempts=max_attempts,
        run_at=run_at or now,
        created_at=now,
    )
    db.add(queued)
    db.flush()  # assigns the id, still inside the caller's transaction
    return queued


def pending(db: Session, *, kind: str) -> Job | None:
    """A queued or running job of ``kind``, if there is one (to avoid queueing work twice)."""
    return db.scalar(
        select(Job).where(Job.kind == kind, Job.status.in_(("queued", "running"))).limit(1)
    )


def _period(at: datetime, every: timedelta) -> int:
    return int(at.timestamp() // every.total_seconds())


def period_start(every: timedelta) -> datetime:
    """When the current period of a schedule running ``every`` began (periods count from the
    Unix epoch: a daily schedule's start at midnight UTC)."""
    return datetime.fromtimestamp(_period(clock.now(), every) * every.total_seconds(), tz=UTC)


def enqueue_schedules(db: Session) -> int:
    """Queue each schedule's run for the current period unless some worker already did."""
    now = clock.now()
    added = 0
    for schedule in _schedules.values():
        period = _period(now, schedule.every)
        dedupe_key = f"schedule:{schedule.name}:{period}"
        if db.scalar(select(Job.id).where(Job.dedupe_key == dedupe_key)) is not None:
            continue
        try:
            with db.begin_nested():
                enqueue(db, kind=schedule.kind, payload=schedule.payload, dedupe_key=dedupe_key)
            added += 1
        except IntegrityError:
            continue  # another worker queued this period first
    db.commit()
    return added


def requeue_stale(db: Session, *, stale_after: timedelta = STALE_AFTER) -> int:
    """Jobs left 'running' by a worker that died (no heartbeat for ``stale_after``) go back to
    the queue; a job running long, its heartbeat fresh, stays with its worker."""
    cutoff = clock.now() - stale_after
    stale = and_(
        Job.status == "running",
        or_(Job.heartbeat_at < cutoff, and_(Job.heartbeat_at.is_(None), Job.started_at < cutoff)),
    )
    found = db.execute(select(Job.id, Job.kind, Job.locked_by, Job.heartbeat_at).where(stale))
    requeued = 0
    for job_id, kind, worker_id, heartbeat_at in found.all():
        # Stale still: a beat that came in since the read keeps the job with its worker.
        result = db.execute(
            update(Job)
            .where(Job.id == job_id, stale)
            .values(status="queued", locked_by=None, heartbeat_at=None, run_at=clock.now())
        )
        if result.rowcount:  # type: ignore[attr-defined]
            requeued += 1
            log.warning(
                "job %s (%s) queued again: its worker %s sent no heartbeat since %s",
                job_id,
                kind,
                worker_id,
                heartbeat_at or "it started",
            )
    db.commit()
    return requeued


class _Claimed(NamedTuple):
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # this run's number, counted from 1
    max_attempts: int


def _claim(db: Session, worker_id: str) -> _Claimed | None:
    """Mark the next due job running, in a transaction of its own that has ended on return:
    the handler begins its own, and so may read in a read-only one (``read_only``), which
    on SQLite neither waits for writers nor holds them up while a model trains."""
    now = clock.now()
    query = (
        select(Job)
        .where(Job.status == "queued", Job.run_at <= now)
        .order_by(Job.run_at, Job.id)
        .limit(1)
    )
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    candidate = db.scalar(query)
    if candidate is None:
        db.rollback()
        return None
    # Plain values, read before the update changes the object: the handler's rollback would
    # expire it.
    job = _Claimed(
        candidate.id,
        candidate.kind,
        dict(candidate.payload),
        candidate.attempts + 1,
        candidate.max_attempts,
    )
    # The status guard makes the claim safe even where SKIP LOCKED does not exist.
    claimed = db.execute(
        update(Job)
        .where(Job.id == candidate.id, Job.status == "queued")
        .values(
            status="running",
            attempts=Job.attempts + 1,
            locked_by=worker_id,
            started_at=now,
            heartbeat_at=now,
        )
    )
    db.commit()
    return job if claimed.rowcount else None  # type: ignore[attr-defined]


def _owned(job: _Claimed, worker_id: str) -> ColumnElement[bool]:
    """Whether the job is still this worker's run of it: running, locked by the worker, at
    this run's attempt (a job queued again and claimed anew counts another attempt)."""
    return and_(
        Job.id == job.id,
        Job.status == "running",
        Job.locked_by == worker_id,
        Job.attempts == job.attempts,
    )


def beat(job: _Claimed, *, worker_id: str, database_url: str | None = None) -> bool:
    """Refresh a running job's heartbeat, in a short transaction of its own (on SQLite one
    UPDATE by id holds the write lock); False when the worker no longer owns the job."""
    with open_session(database_url) as db:
        result = db.execute(
            update(Job).where(_owned(job, worker_id)).values(heartbeat_at=clock.now())
        )
        db.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


class _Heartbeat:
    """A thread that refreshes a running job's heartbeat every ``every`` seconds until
    stopped; a beat that fails (the database briefly unavailable) is logged and tried again
    at the next one."""

    def __init__(
        self, job: _Claimed, *, worker_id: str, database_url: str | None, every: float
    ) -> None:
        self.job = job
        self.worker_id = worker_id
        self.database_url = database_url
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"rapport-job-{job.id}-heartbeat", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                owned = beat(self.job, worker_id=self.worker_id, database_url=self.database_url)
            except Exception as error:
                log.warning(
                    "job %s (%s): its heartbeat failed; trying again in %g s: %s",
                    self.job.id,
                    self.job.kind,
                    self.every,
                    _first_line(f"{type(error).__name__}: {error}"),
                )
                continue
            if not owned:
                if not self.stopped.is_set():
                    log.warning(
                        "job %s (%s): worker %s no longer owns it (queued again after its"
                        " heartbeat stopped); its heartbeat stops",
                        self.job.id,
                        self.job.kind,
                        self.worker_id,
                    )
                return

    def stop(self) -> None:
        """Stop beating; returns at once (a beat under way may still finish)."""
        self.stopped.set()

    def join(self) -> None:
        self.thread.join(timeout=max(self.every, 5.0) + 30.0)


def _finish(
    db: Session, job: _Claimed, worker_id: str, values: dict[str, Any], outcome: str
) -> None:
    """Record how the run ended, only if the worker still owns the job: a job queued again
    and taken by another worker is left to that worker."""
    result = db.execute(update(Job).where(_owned(job, worker_id)).values(**values))
    db.commit()
    if not result.rowcount:  # type: ignore[attr-defined]
        log.warning(
            "job %s (%s): worker %s no longer owns it (queued again after its heartbeat"
            " stopped); its %s is not recorded",
            job.id,
            job.kind,
            worker_id,
            outcome,
        )


def run_one(
    *,
    worker_id: str,
    database_url: str | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> int | None:
    """Claim and run the next due job. Returns its id, or ``None`` when nothing is due."""
    with open_session(database_url) as db:
        claimed = _claim(db, worker_id)
        if claimed is None:
            return None
        heartbeat = _Heartbeat(
            claimed, worker_id=worker_id, database_url=database_url, every=heartbeat_seconds
        )
        try:
            _run_claimed(db, claimed, worker_id, heartbeat)
        finally:
            heartbeat.stop()
            # After the completion mark has committed: on SQLite a beat under way may be
            # waiting for the write lock that the handler's transaction holds until then.
            heartbeat.join()
        return claimed.id


def _run_claimed(db: Session, claimed: _Claimed, worker_id: str, heartbeat: _Heartbeat) -> None:
    job_id, kind, payload, attempts, max_attempts = claimed
    handler = _handlers.get(kind)
    try:
        if handler is None:
            raise LookupError(f"no handler registered for job kind {kind!r}")
        handler(db, payload)
    except Exception:
        heartbeat.stop()
        db.rollback()
        error = traceback.format_exc(limit=5)
        log.warning("job %s (%s) failed: %s", job_id, kind, error)
        exhausted = attempts >= max_attempts
        values: dict[str, Any] = {
            "status": "failed" if exhausted else "queued",
            "last_error": error[-4000:],
            "locked_by": None,
            "heartbeat_at": None,
        }
        if exhausted:
            values["finished_at"] = clock.now()
        else:
            values["run_at"] = clock.now() + backoff(attempts)
        _finish(db, claimed, worker_id, values, "failure")
    else:
        heartbeat.stop()
        if in_read_only_transaction(db):
            db.commit()  # the handler only read; its read-only transaction cannot write
        _finish(
            db,
            claimed,
            worker_id,
            {
                "status": "done",
                "finished_at": clock.now(),
                "locked_by": None,
                "heartbeat_at": None,
                "last_error": None,
            },
            "completion",
        )


def run_due(
    *,
    worker_id: str,
    database_url: str | None = None,
    limit: int = 1000,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> int:
    """Run every job due now (up to ``limit``); used by tests and ``rapport worker --once``."""
    ran = 0
    while (
        ran < limit
        and run_one(
            worker_id=worker_id, database_url=database_url, heartbeat_seconds=heartbeat_seconds
        )
        is not None
    ):
        ran += 1
    return ran


def default_worker_id() -> str:
    """``host:pid:random``: unique to this worker, also where a restarted container's process
    has the same host name and pid as the one before it."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """The worker loop: tick schedules, recover stale jobs, run due jobs, sleep when idle."""

    def __init__(
        self,
        *,
        database_url: str | None = None,
        poll_seconds: float = 1.0,
        worker_id: str = "",
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.database_url = database_url
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.worker_id = worker_id or default_worker_id()
        self.stop_event = threading.Event()
        self._last_housekeeping = -HOUSEKEEPING_SECONDS
        # The database outage under way: failed attempts so far, since when, the next wait.
        self._outage_attempts = 0
        self._outage_since = 0.0
        self._outage_wait = OUTAGE_FIRST_WAIT_S
        # The last failure of each part, and how many times in a row it failed so.
        self._last_failure: dict[str, tuple[str, int]] = {}
        self._schema_problem: tuple[str, str] | None = None

    def tick(self) -> int:
        """One round of work: housekeeping, each tick hook, then the due jobs. Each part runs
        whatever the others do: one that raises is logged and the rest still run, so a
        processor failing on some event holds up neither the other hooks nor any job.

        Nothing runs while the database's schema is not the one this code expects (migrated
        under a running worker, by a newer or older Rapport): every job would fail on it."""
        done = 0
        # Schedules and stale-job recovery write to the database; on SQLite every write takes
        # the single writer lock, so they run every few seconds rather than on every tick.
        if time.monotonic() - self._last_housekeeping >= HOUSEKEEPING_SECONDS:
            self._last_housekeeping = time.monotonic()
            self._guarded("schema check", self._check_schema)
            if self._schema_problem is None:
                self._guarded("schedules and stale jobs", self._housekeeping)
        if self._schema_problem is not None:
            return 0
        for hook in list(_tick_hooks):
            done += self._guarded(_name_of(hook), partial(hook, self.database_url))
        return done + self._guarded(
            "due jobs",
            lambda: run_due(
                worker_id=self.worker_id,
                database_url=self.database_url,
                limit=100,
                heartbeat_seconds=self.heartbeat_seconds,
            ),
        )

    def _check_schema(self) -> int:
        from rapport.platform.migrations_runner import schema_problem

        with open_session(self.database_url) as db:
            problem = schema_problem(db.connection())
        if problem != self._schema_problem:
            if problem is not None:
                log.error("worker %s takes no jobs: %s %s", self.worker_id, *problem)
            else:
                log.info("worker %s takes jobs again: the schema is current", self.worker_id)
        self._schema_problem = problem
        return 0

    def _housekeeping(self) -> int:
        with open_session(self.database_url) as db:
            enqueue_schedules(db)
            requeue_stale(db)
        return 0

    def _guarded(self, what: str, part: Callable[[], int]) -> int:
        """Run one part of the tick, logging what it raised. A database that is unavailable
        is not the part's failure: it ends the tick (``DatabaseDown``), for the loop to back
        off. A part failing the same way as last time is one line with a count, not another
        traceback."""
        try:
            done = part()
        except Exception as error:
            if database_unavailable(error):
                raise DatabaseDown(error) from error
            said = f"{type(error).__name__}: {error}"
            previous, times = self._last_failure.get(what, ("", 0))
            if said == previous:
                self._last_failure[what] = (said, times + 1)
                log.error(
                    "worker tick: %s failed again (%d times in a row): %s",
                    what,
                    times + 1,
                    _first_line(said),
                )
            else:
                self._last_failure[what] = (said, 1)
                log.exception("worker tick: %s failed; the rest of the tick goes on", what)
            return 0
        if self._last_failure.pop(what, None) is not None:
            log.info("worker tick: %s works again", what)
        return done

    def run_forever(self) -> None:
        log.info("worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            try:
                ran = self.tick()
            except DatabaseDown as down:
                self._database_down(down.error)
                self.stop_event.wait(self._outage_wait)
                self._outage_wait = min(self._outage_wait * 2, OUTAGE_MAX_WAIT_S)
                continue
            except Exception:  # keep the loop alive through anything else
                log.exception("worker tick failed")
                ran = 0
            self._database_back()
            if ran == 0:
                self.stop_event.wait(self.poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def _database_down(self, error: BaseException) -> None:
        """Log one failed attempt of an outage: its traceback the first time, then a line."""
        self._outage_attempts += 1
        if self._outage_attempts == 1:
            self._outage_since = time.monotonic()
            log.error(
                "worker %s: the database is unavailable; trying again in %g s, then less and"
                " less often (at most every %g s)",
                self.worker_id,
                self._outage_wait,
                OUTAGE_MAX_WAIT_S,
                exc_info=error,
            )
            return
        log.warning(
            "worker %s: the database is still unavailable (attempt %d, %.0f s); next try in"
            " %g s: %s",
            self.worker_id,
            self._outage_attempts,
            time.monotonic() - self._outage_since,
            self._outage_wait,
            _first_line(f"{type(error).__name__}: {error}"),
        )

    def _database_back(self) -> None:
        if not self._outage_attempts:
            return
        log.info(
            "worker %s: database available again after %d failed attempts (%.0f s)",
            self.worker_id,
            self._outage_attempts,
            time.monotonic() - self._outage_since,
        )
        self._outage_attempts = 0
        self._outage_wait = OUTAGE_FIRST_WAIT_S

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="rapport-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()


class DatabaseDown(Exception):
    """A part of the worker's tick found the database unavailable: the tick ends there."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _first_line(text: str) -> str:
    return text.splitlines()[0][:300] if text else text


@job("platform.prune_finished_jobs")
def prune_finished_jobs(db: Session, payload: dict[str, Any]) -> None:
    """Delete completed jobs older than ``keep_days`` (failed ones stay for inspection)."""
    cutoff = clock.now() - timedelta(days=int(payload.get("keep_days", 7)))
    db.execute(delete(Job).where(Job.status == "done", Job.finished_at < cutoff))
    db.commit()


scheduled("platform.prune_finished_jobs", every=timedelta(days=1), payload={"keep_days": 7})


@job("platform.prune_login_failures")
def prune_login_failures(db: Session, payload: dict[str, Any]) -> None:
    """Delete the admin wrong-password counters forgotten 24 hours after their last failure:
    the emails typed and the client addresses are not kept past the limits' memory."""
    admin_security.prune_login_failures(db)
    db.commit()


scheduled("platform.prune_login_failures", every=timedelta(hours=1))


def job_counts(db: Session) -> dict[str, int]:
    rows = db.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {status: int(count) for status, count in rows}


def claim_embedded_worker(data_dir: Path) -> IO[bytes] | None:
    """The right to run the embedded worker, for one server process per data directory (with
    ``rapport serve --processes N`` every process would otherwise start one). Held while the
    returned file stays open; ``None`` when another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "embedded-worker.lock").open("wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
