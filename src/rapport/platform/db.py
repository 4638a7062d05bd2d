"""Database engine, sessions and the declarative base shared by every domain's tables."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from rapport.platform.settings import get_settings

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
    BEGIN IMMEDIATE, so read-then-write paths (balances, stock) cannot interleave."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
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
            driver.execute("BEGIN")
        elif options.get(NO_WAIT, False):
            driver.execute("PRAGMA busy_timeout=0")
            try:
                driver.execute("BEGIN IMMEDIATE")
            finally:
                driver.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        else:
            driver.execute("BEGIN IMMEDIATE")


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
            except Exception:  # a failed checkpoint is retried on the next tick
                log.exception("SQLite checkpoint failed")


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    return create_db_engine(url or get_settings().database_url)


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def open_session(url: str | None = None) -> Session:
    """A new session for CLI commands, jobs and scripts; the caller closes it."""
    return _session_factory(url or get_settings().database_url)()


READ_ONLY = "rapport_read_only"


def read_only(db: Session) -> None:
    """Declare that this session will only read, before its first statement: on SQLite its
    transaction then begins DEFERRED instead of IMMEDIATE, so hot read paths (recommendations)
    neither queue behind writers nor block them. Without effect on PostgreSQL, or once the
    session's transaction has begun."""
    if not db.in_transaction():
        db.connection(execution_options={READ_ONLY: True})


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
    except sqlite3.OperationalError as error:  # from the driver: the BEGIN runs there
        db.rollback()
        if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


def driver_cursor(db: Session) -> Any:
    """A DBAPI cursor in the session's transaction, for the hottest paths' statements: each
    one through SQLAlchemy's Connection costs about 0.1 ms of Python on a small machine."""
    return db.connection().connection.cursor()


async def get_db() -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request, closed (and rolled back if unfinished) after.

    Async so that FastAPI enters and leaves it on the event loop: a sync generator costs two
    worker-thread hops per request. Opening a session does no I/O, and closing one after its
    commit only hands the connection back to the pool."""
    session = open_session()
    try:
        yield session
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db)]


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
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
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
