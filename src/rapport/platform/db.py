"""Database engine, sessions and the declarative base shared by every domain's tables."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import math
import os
import random
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import psycopg
from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from rapport.platform import budget
from rapport.platform.settings import app_settings, get_settings

log = logging.getLogger(__name__)

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable), plain JSON text elsewhere.
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite, which stores naive text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# How long a SQLite statement waits for another connection's lock before failing.
BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers, and one writer at a time: every transaction starts with
    BEGIN IMMEDIATE, so read-then-write paths (balances, stock) cannot interleave. Writers
    queue for their turn first come, first served (see ``WriterTurn``)."""
    database = engine.url.database
    turn_file = (
        f"{database}-writer.lock"
        if _TURNS_SUPPORTED
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        else None
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if turn_file is not None and isinstance(dbapi_connection, TurnTakingConnection):
            dbapi_connection.writer_turn = WriterTurn(turn_file)
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Zero what an update or delete frees inside a page (CPU only, no extra I/O): an old
        # row version left there would keep an erased person's data in the file.
        cursor.execute("PRAGMA secure_delete=FAST")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if _background_checkpoints.is_set():
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Read-only sessions (see ``read_only``) begin DEFERRED: in WAL mode they read a
        # snapshot and never wait for, nor hold, the write lock. ``begin_write_now`` asks for
        # the lock without waiting. Statements go straight to the driver: every transaction
        # begins here, and each statement through SQLAlchemy's Connection costs ~0.1 ms.
        driver = connection.connection.driver_connection
        options = connection.get_execution_options()
        if options.get(READ_ONLY, False):
            driver.begin_reading()  # every SQLite engine here connects TurnTakingConnections
            return
        turn: WriterTurn | None = getattr(driver, "writer_turn", None)
        if options.get(NO_WAIT, False):
            if turn is not None and not turn.take(wait=False):
                raise WriterTurnBusy("another writer has the turn")
            _begin_immediate(driver, turn, busy_ms=0)
            return
        if turn is not None:
            turn.take(wait=True, bulk=options.get(BULK, False))
        # Within a request, SQLite's own wait (when a writer ahead left the queue, or holds
        # the lock without a turn) ends at the request's deadline too.
        busy_ms = _busy_ms_left()
        try:
            _begin_immediate(driver, turn, busy_ms=busy_ms)
        except sqlite3.OperationalError as error:
            if busy_ms is not None and error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise budget.OutOfTime(TURN_TIMEOUT_DETAIL) from error
            raise


def _busy_ms_left() -> int | None:
    """What is left of the request's budget, in ms, for SQLite's busy wait; ``None`` (the
    connection's own busy timeout) outside a request or with more than that left."""
    remaining = budget.remaining()
    if remaining is None or remaining * 1000 >= BUSY_TIMEOUT_MS:
        return None
    return max(int(remaining * 1000), 0)


def _begin_immediate(driver: Any, turn: WriterTurn | None, *, busy_ms: int | None) -> None:
    """``BEGIN IMMEDIATE``, waiting at most ``busy_ms`` for SQLite's lock (``None``: the
    connection's busy timeout); the turn is given back if it fails."""
    if busy_ms is not None:
        driver.execute(f"PRAGMA busy_timeout={busy_ms}")
    try:
        driver.execute("BEGIN IMMEDIATE")
    except BaseException:
        if turn is not None:
            turn.give_back()
        raise
    finally:
        if busy_ms is not None:
            driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


# --- SQLite's writers take turns, first come, first served ----------------------------------
#
# SQLite lets one connection write at a time, and a writer that finds the database locked
# waits in SQLite's busy handler: it sleeps, looks again, sleeps longer (up to 100 ms), so a
# steady stream of short writers (tracking ingestion, the event processors) can keep a ledger
# command waiting for seconds, or until its 30 s busy timeout. Instead every write transaction
# first queues for its turn on a lock file beside the database, shared by every process that
# writes it (``rapport serve --processes N``, ``rapport worker``, commands): each queued writer
# sleeps in the kernel on its predecessor's lock and is woken, alone, when that predecessor
# commits. Writers are served in the order they asked; bulk writers (event batches, the event
# processors) first queue among themselves, so that at most one bulk transaction is ever ahead
# of a command. A process that dies gives its place back with its file descriptors. SQLite's
# own lock stays what keeps writes apart: the queue only decides who asks for it next.

_TURNS_SUPPORTED = hasattr(fcntl, "F_OFD_SETLKW")  # open file description locks: Linux
_FLOCK = struct.Struct("hhqqi4x")  # struct flock: type, whence, start, length, pid (+ padding)
_TICKET_RING = 1 << 30  # ticket positions before they wrap (far more than writers waiting)


def _range_lock(fd: int, kind: int, offset: int, *, wait: bool) -> bool:
    """Lock (``F_WRLCK``) or unlock (``F_UNLCK``) one byte of the lock file for this open file
    description; False when ``wait`` is False and another description holds it."""
    command = fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK
    try:
        fcntl.fcntl(fd, command, _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0))
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _wait_until_free(fd: int, offset: int, timeout: float | None) -> bool:
    """Wait, asleep in the kernel, until no other open file description holds this byte;
    False when ``timeout`` seconds pass first. A thread waiting in ``fcntl`` cannot be
    stopped, so a wait with a timeout sleeps in a helper thread, on a duplicate descriptor
    (the same description: its locks are ours), which this thread stops waiting for; the
    helper ends when the byte is freed, holding it only for that instant."""
    if timeout is None:
        _range_lock(fd, fcntl.F_WRLCK, offset, wait=True)
        _range_lock(fd, fcntl.F_UNLCK, offset, wait=False)
        return True
    if _range_lock(fd, fcntl.F_WRLCK, offset, wait=False):
        _range_lock(fd, fcntl.F_UNLCK, offset, wait=False)
        return True
    if timeout <= 0:
        return False
    duplicate = os.dup(fd)
    freed = threading.Event()

    def wait() -> None:
        try:
            _range_lock(duplicate, fcntl.F_WRLCK, offset, wait=True)
            _range_lock(duplicate, fcntl.F_UNLCK, offset, wait=False)
        finally:
            os.close(duplicate)
            freed.set()

    threading.Thread(target=wait, name="writer-turn-wait", daemon=True).start()
    return freed.wait(timeout)


def _range_locked(fd: int, offset: int) -> bool:
    """Whether another open file description holds this byte."""
    found = fcntl.fcntl(
        fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    )
    return bool(_FLOCK.unpack(found)[0] != fcntl.F_UNLCK)


class _Queue:
    """A first-come, first-served queue in a lock file. A writer takes the next ticket (a
    counter in the file, read and bumped under a lock on the ``guard`` byte) and at once
    locks its ticket's byte; its turn comes when the byte of the ticket before it is free,
    so each waiter sleeps on exactly one lock and is the only one woken when it is freed."""

    def __init__(self, *, guard: int, counter_at: int, tickets_at: int) -> None:
        self.guard = guard
        self.counter_at = counter_at
        self.tickets_at = tickets_at

    def enter(self, fd: int, *, wait: bool, timeout: float | None = None) -> int | None:
        """Queue and wait for the turn; the held byte. Without ``wait``: the turn only if
        nobody holds or awaits it this instant, else ``None``. With a ``timeout`` (seconds):
        ``None``, having left the queue, when the writer ahead has not left by then."""
        if not _range_lock(fd, fcntl.F_WRLCK, self.guard, wait=wait):
            return None
        try:
            stored = os.pread(fd, 8, self.counter_at)
            ticket = int.from_bytes(stored, "little") if len(stored) == 8 else 0
            ahead = self.tickets_at + (ticket - 1) % _TICKET_RING
            mine = self.tickets_at + ticket % _TICKET_RING
            if not wait and _range_locked(fd, ahead):
                return None
            _range_lock(fd, fcntl.F_WRLCK, mine, wait=True)  # free: nobody else has this ticket
            os.pwrite(fd, (ticket + 1).to_bytes(8, "little"), self.counter_at)
        finally:
            _range_lock(fd, fcntl.F_UNLCK, self.guard, wait=False)
        # sleep until the writer ahead leaves (at once if it has)
        if wait and not _wait_until_free(fd, ahead, timeout):
            # Out of the queue: the writer behind goes on to SQLite's own lock, as one whose
            # predecessor has left would.
            _range_lock(fd, fcntl.F_UNLCK, mine, wait=False)
            return None
        return mine

    @staticmethod
    def leave(fd: int, held: int) -> None:
        _range_lock(fd, fcntl.F_UNLCK, held, wait=False)


_WRITERS = _Queue(guard=0, counter_at=0, tickets_at=1 << 32)
_BULK_WRITERS = _Queue(guard=1, counter_at=8, tickets_at=2 << 32)

# Threads holding a writer turn now, by thread id (see ``WriterTurn.take``).
_turn_holders: Counter[int] = Counter()
_turn_holders_lock = threading.Lock()


TURN_TIMEOUT_DETAIL = (
    "The database was busy with other changes for longer than this request may wait; retry shortly."
)


class WriterTurnBusy(sqlite3.OperationalError):
    """Another writer has the turn (raised by a begin that must not wait)."""


class WriterTurn:
    """One connection's place in the queue of a SQLite database's writers, held from just
    before its ``BEGIN IMMEDIATE`` until its commit or rollback has finished."""

    def __init__(self, path: str) -> None:
        # An open file description of its own: locks of two connections conflict even when
        # they are in one process.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._held: list[tuple[_Queue, int]] = []
        self._holder: int | None = None

    @property
    def held(self) -> bool:
        return bool(self._held)

    def take(self, *, wait: bool, bulk: bool = False) -> bool:
        """Wait for the turn (``wait``), or take it only if it is free this instant; whether
        the connection may go on to begin. A thread that already holds a turn on another
        connection, or runs an event loop, does not queue when it would wait: it would wait
        for itself, or hold up its loop; it goes on to SQLite's busy handler as before.
        Within a request the wait ends at the request's deadline (``budget``), raising
        ``OutOfTime``: a writer that keeps its turn (a paused process, a long import batch)
        must not hold requests for good."""
        if self._held:
            return True
        me = threading.get_ident()
        with _turn_holders_lock:
            holds_another = _turn_holders[me] > 0
        if holds_another or (wait and asyncio._get_running_loop() is not None):
            return True
        # The request's deadline is absolute: both queues wait for what is left of it.
        if bulk and wait:
            place = _BULK_WRITERS.enter(self._fd, wait=True, timeout=budget.remaining())
            if place is None:
                raise budget.OutOfTime(TURN_TIMEOUT_DETAIL)
            self._held.append((_BULK_WRITERS, place))
        place = _WRITERS.enter(self._fd, wait=wait, timeout=budget.remaining())
        if place is None and wait:
            self.give_back()
            raise budget.OutOfTime(TURN_TIMEOUT_DETAIL)
        if place is None:
            return False
        self._held.append((_WRITERS, place))
        self._holder = me
        with _turn_holders_lock:
            _turn_holders[me] += 1
        return True

    def others_waiting(self) -> bool:
        """Whether another writer has queued behind this turn since it was taken."""
        return any(
            _range_locked(
                self._fd, queue.tickets_at + (place - queue.tickets_at + 1) % _TICKET_RING
            )
            for queue, place in self._held
        )

    def give_back(self) -> None:
        """Leave the queue (a no-op when the turn is not held)."""
        while self._held:
            queue, place = self._held.pop()
            queue.leave(self._fd, place)
        if self._holder is not None:
            with _turn_holders_lock:
                _turn_holders[self._holder] -= 1
                if not _turn_holders[self._holder]:
                    del _turn_holders[self._holder]
            self._holder = None

    def close(self) -> None:
        self.give_back()
        os.close(self._fd)


class TurnTakingConnection(sqlite3.Connection):
    """A SQLite connection that gives its writer turn back once its transaction has ended,
    and lets a read-only transaction write nothing (``read_only``)."""

    writer_turn: WriterTurn | None = None
    reading_only = False

    def begin_reading(self) -> None:
        """Begin a transaction that reads one snapshot and refuses writes: SQLite's
        ``query_only`` belongs to the connection, so it is switched off again at the end."""
        self.execute("BEGIN")
        self.execute("PRAGMA query_only=1")
        self.reading_only = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._ended()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._ended()

    def _ended(self) -> None:
        try:
            if self.reading_only:
                self.reading_only = False
                self.execute("PRAGMA query_only=0")
        finally:
            if self.writer_turn is not None:
                self.writer_turn.give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.writer_turn is not None:
                self.writer_turn.close()
                self.writer_turn = None


# In a server, the commit that fills the WAL would copy it back into the database and fsync
# while every other writer waits (tens of milliseconds on small disks): the server checkpoints
# from a background thread instead. Commands (imports, the demo) keep SQLite's own checkpoints.
_background_checkpoints = threading.Event()


class Checkpointer:
    """Checkpoints a SQLite database's WAL every ``seconds`` from a daemon thread. PASSIVE
    checkpoints never block writers; readers and writers carry on meanwhile."""

    def __init__(self, url: str, *, seconds: float = 1.0) -> None:
        self.url = url
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not _background_checkpoints.is_set():
            _background_checkpoints.set()
            get_engine(self.url).dispose()  # reconnect without automatic checkpoints
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.checkpoint()

    def checkpoint(self) -> None:
        connection = get_engine(self.url).raw_connection()
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.checkpoint()
            except sqlite3.OperationalError as error:
                # Another connection of this process holding a table (a schema change or a
                # long read at start-up) is the usual cause: the next tick retries quietly.
                if "locked" in str(error) or "busy" in str(error):
                    log.debug("SQLite checkpoint put off: %s", error)
                else:
                    log.exception("SQLite checkpoint failed")
            except Exception:  # a failed checkpoint is retried on the next tick
                log.exception("SQLite checkpoint failed")


# PostgreSQL: how long opening a connection may take at most (libpq's connect_timeout; in a
# request, what is left of its budget if less), and TCP keepalives, so that a connection whose
# server or network went away is found dead in about a minute rather than two hours.
CONNECT_TIMEOUT_S = 10
KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# How long a statement or a rollback may wait for PostgreSQL once a request's budget is
# spent: a healthy server answers at once, and one that does not loses the connection. A
# command slow in Python past its deadline still finishes (its answer says what happened); a
# server that stopped answering holds it at most this much longer.
ROLLBACK_GRACE_S = 5.0


class DatabaseTimeout(psycopg.OperationalError):
    """PostgreSQL did not answer within the request's time budget: the connection is closed,
    so its transaction, which had not begun to commit, is never committed."""


class BudgetedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits for PostgreSQL no longer than the request's time budget
    (``budget``): opening it (``connect_timeout``), the pool's ping, ``BEGIN`` and every
    statement (one that starts past the deadline gets ``ROLLBACK_GRACE_S``). Past that it
    closes itself and raises :class:`DatabaseTimeout` (a
    503 ``database-unavailable``), leaving the transaction uncommitted: a server that stopped
    answering (paused, overloaded, cut off) would otherwise hold a command for good, as the
    kernel still takes what is sent to it. Its ``COMMIT`` alone is never cut short: a command
    whose commit was sent has either been done or not, and only the server can say which.
    Outside a request (commands, the worker) it waits as psycopg does."""

    _committing = False

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> BudgetedConnection:
        remaining = budget.remaining()
        if remaining is not None:
            if remaining <= 0:
                raise DatabaseTimeout("no time left in the request to connect to the database")
            configured = int(kwargs.get("connect_timeout", CONNECT_TIMEOUT_S))
            kwargs["connect_timeout"] = max(min(configured, math.ceil(remaining)), 2)
        return super().connect(conninfo, **kwargs)

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        remaining = budget.remaining()
        if remaining is None or timeout is not None or self._committing:
            return super().wait(gen, interval=interval, timeout=timeout)
        try:
            return super().wait(gen, interval=interval, timeout=max(remaining, ROLLBACK_GRACE_S))
        except psycopg.errors._WaitTimeout:
            # Mid-exchange: the connection can carry nothing more, and closing it makes the
            # server roll its transaction back.
            self.pgconn.finish()
            raise DatabaseTimeout(
                "the database did not answer within the request's time budget"
            ) from None

    def commit(self) -> None:
        self._committing = True
        try:
            super().commit()
        finally:
            self._committing = False


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``. Never with the statements' parameters in its errors
    (``hide_parameters``): they hold people's email addresses, names and phones, and a
    logged error would keep them in the server's log, where erasure cannot reach."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": TurnTakingConnection,
            },
            pool_size=8,
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, **KEEPALIVES},
    )
    if engine.dialect.driver == "psycopg":

        @event.listens_for(engine, "do_connect")
        def _budgeted(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return BudgetedConnection.connect(*cargs, **cparams)

    return engine


# The SQLSTATEs PostgreSQL fails a transaction with to break its conflict with another
# (serialization_failure, deadlock_detected): the transaction was rolled back, and running it
# again is the remedy.
RUN_AGAIN_SQLSTATES = frozenset({"40001", "40P01"})

_Result = TypeVar("_Result")


def run_again_on_conflict(
    db: Session, work: Callable[[], _Result], *, attempts: int, what: str
) -> _Result:
    """``work()``, run again (after a rollback and a short random pause, so the other side
    finishes first) when PostgreSQL failed it to break a deadlock or a serialization failure,
    up to ``attempts`` runs in all; any other error, or the last run's, goes to the caller.
    ``what`` names the work in the log (no customer's id: logs are kept from erasure)."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as error:
            sqlstate = getattr(error.orig, "sqlstate", None)
            if sqlstate not in RUN_AGAIN_SQLSTATES or attempt == attempts:
                raise
            db.rollback()
            log.warning("%s met %s; running it again", what, sqlstate)
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    return create_db_engine(url or get_settings().database_url)


@lru_cache(maxsize=16)
def _session_factory(url: str, reading: bool = False) -> sessionmaker[Session]:
    engine = get_engine(url)
    if reading:
        # The same pool; each transaction is read-only (see ``read_only``).
        engine = engine.execution_options(**READ_ONLY_OPTIONS)
    return sessionmaker(engine, expire_on_commit=False)


def open_session(url: str | None = None, *, reading: bool = False) -> Session:
    """A new session for CLI commands, jobs and scripts; the caller closes it. ``reading``:
    every transaction of the session is read-only, as ``read_only`` makes one."""
    return _session_factory(url or get_settings().database_url, reading)()


READ_ONLY = "rapport_read_only"
# A reading session's every transaction (``open_session(reading=True)``, a GET request's):
# on SQLite as ``read_only`` makes one, on PostgreSQL ``BEGIN READ ONLY``.
READ_ONLY_OPTIONS: dict[str, Any] = {READ_ONLY: True, "postgresql_readonly": True}


def read_only(db: Session) -> None:
    """Declare that this session's transaction will only read, before its first statement.
    On SQLite it then begins DEFERRED instead of IMMEDIATE, so read paths (recommendations, the
    API's and admin pages' ``GET``s) neither queue behind writers nor block them, and a write
    in it fails at once ("attempt to write a readonly database") rather than asking for the
    write lock mid-transaction, which SQLite may refuse when a writer has committed since. On
    PostgreSQL (whose readers never wait for writers) it begins ``READ ONLY``, so a write in
    it fails there too, and a path that writes by mistake fails on both databases alike.
    Without effect once a transaction has begun: the session's, or that of the connection it
    is joined to (the tests' sessions), since a begun transaction's mode cannot change. The
    session's next transaction is an ordinary one."""
    bind = db.get_bind()
    if db.in_transaction() or (isinstance(bind, Connection) and bind.in_transaction()):
        return
    db.connection(execution_options=READ_ONLY_OPTIONS)


def in_read_only_transaction(db: Session) -> bool:
    """Whether the session's transaction began read-only (``read_only``, a reading session):
    what follows it must end it before it writes."""
    return db.in_transaction() and bool(db.connection().get_execution_options().get(READ_ONLY))


NO_WAIT = "rapport_no_wait"


def begin_write_now(db: Session) -> bool:
    """Begin the session's transaction if SQLite's write lock is free this instant; False,
    with nothing begun, when another connection holds it. For an event loop, which must never
    wait for a lock. Always True on PostgreSQL (which locks rows, not the database) and once
    the session's transaction has begun."""
    if db.in_transaction():
        return True
    try:
        db.connection(execution_options={NO_WAIT: True})
    except WriterTurnBusy:
        db.rollback()
        return False
    except sqlite3.OperationalError as error:  # from the driver: the BEGIN runs there
        db.rollback()
        if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


BULK = "rapport_bulk_write"


def writers_waiting(db: Session) -> bool:
    """Whether another writer has queued for SQLite's write turn since this session's
    transaction took it: a long bulk transaction (an event processor's batch) commits what it
    has done and queues again, instead of keeping commands waiting. False on PostgreSQL."""
    if not db.in_transaction() or db.get_bind().dialect.name != "sqlite":
        return False
    turn = getattr(db.connection().connection.driver_connection, "writer_turn", None)
    return turn is not None and turn.others_waiting()


@contextmanager
def writer_turn(db: Session, *, wait: bool = True, bulk: bool = False) -> Iterator[bool]:
    """Begin the session's write transaction, after the writers ahead of it on SQLite (see
    ``WriterTurn``; on PostgreSQL, which locks rows, nothing is begun here). Yields whether it
    began: with ``wait=False`` only if the turn was free this instant (``begin_write_now``).
    ``bulk`` marks a transaction that stores many rows (an event batch, a processor's batch):
    bulk writers queue among themselves first, so commands never find more than one ahead.
    The turn is given back when the transaction commits or rolls back; the block's error
    rolls it back."""
    if db.get_bind().dialect.name != "sqlite":
        yield True
        return
    if not wait:
        yield begin_write_now(db)
        return
    if not db.in_transaction():
        db.connection(execution_options={BULK: bulk})
    try:
        yield True
    except BaseException:
        db.rollback()
        raise


def driver_cursor(db: Session) -> Any:
    """A DBAPI cursor in the session's transaction, for the hottest paths' statements: each
    one through SQLAlchemy's Connection costs about 0.1 ms of Python on a small machine."""
    return db.connection().connection.cursor()


READING_METHODS = frozenset({"GET", "HEAD"})


async def get_db(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request, closed (and rolled back if unfinished) after.
    A ``GET`` or ``HEAD`` reads only (``read_only``): on SQLite it never waits for the writers'
    queue. A ``GET`` that must write (a customer's export is recorded, a referral code is
    made on the first ask) takes ``WritingDbSession`` instead.

    Async so that FastAPI enters and leaves it on the event loop: a sync generator costs two
    worker-thread hops per request. Opening a session does no I/O, and closing one after its
    commit only hands the connection back to the pool."""
    url = app_settings(request).database_url
    with open_session(url, reading=request.method in READING_METHODS) as session:
        yield session


async def get_writing_db(request: Request) -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request that may write, whatever the method."""
    with open_session(app_settings(request).database_url) as session:
        yield session


DbSession = Annotated[Session, Depends(get_db)]
WritingDbSession = Annotated[Session, Depends(get_writing_db)]


def among(
    db: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any], values: Iterable[str]
) -> ColumnElement[bool]:
    """``column IN (values)``, the values sent as one JSON text parameter that the database
    reads (``json_each`` on SQLite, ``jsonb_array_elements_text`` on PostgreSQL): for hot
    paths whose lists run to a thousand values, where binding each one costs SQLAlchemy and
    the driver several times the query (1,600 visitor ids: 0.7 ms against 3 to 7 ms)."""
    listed = bindparam(None, orjson.dumps(sorted(set(values))).decode(), type_=String)
    if db.get_bind().dialect.name == "sqlite":
        return column.in_(select(func.json_each(listed).table_valued("value").c.value))
    elements = func.jsonb_array_elements_text(cast(listed, JSONB)).column_valued("value")
    return column.in_(select(elements))


def insert_for(db: Session) -> Any:
    """The ``insert`` of the session's database dialect, which has ``on_conflict_do_*``
    (SQLite's and PostgreSQL's ``INSERT … ON CONFLICT``)."""
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def upsert_rows(
    db: Session,
    table: Any,
    rows: list[dict[str, Any]],
    *,
    key_columns: list[str] | None,
    update_columns: list[str] | None = None,
) -> None:
    """Insert ``rows`` into ``table``; rows whose key exists are updated (or skipped when
    ``update_columns`` is empty; with no ``key_columns``, rows clashing with any unique
    constraint are skipped). Uses INSERT … ON CONFLICT on both SQLite and PostgreSQL."""
    if not rows:
        return
    statement = insert_for(db)(table)
    if update_columns:
        statement = statement.on_conflict_do_update(
            index_elements=key_columns,
            set_={column: statement.excluded[column] for column in update_columns},
        )
    elif key_columns:
        statement = statement.on_conflict_do_nothing(index_elements=key_columns)
    else:
        statement = statement.on_conflict_do_nothing()
    db.execute(statement, rows)
