"""SQLite transactions: writers take the lock up front, declared readers never wait for it,
and a caller that must not wait (the event loop) can ask for the lock only if it is free."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, String, column, event, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from rapport.platform import budget
from rapport.platform import service as platform
from rapport.platform.db import among, begin_write_now, create_db_engine, open_session, read_only


def _engine_with_table(path: Path, begins: list[str]) -> Engine:
    """A SQLite engine whose connections report every BEGIN they run to ``begins``."""
    engine = create_db_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(
            lambda statement: begins.append(statement) if statement.startswith("BEGIN") else None
        )

    with engine.begin() as setup:
        setup.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        setup.exec_driver_sql("INSERT INTO t VALUES (1)")
    begins.clear()
    return engine


def _writer_holding_the_lock(path: Path) -> tuple[Engine, Session]:
    """An engine on a fresh database, and a session holding SQLite's write lock in it."""
    engine = _engine_with_table(path, [])
    writer = Session(engine)
    writer.execute(text("UPDATE t SET n = 2"))
    return engine, writer


def _then_it_writes_as_usual(engine: Engine, writer: Session, other: Session) -> None:
    """Once ``writer`` commits, ``other`` writes and commits as usual; everything closed."""
    writer.commit()
    other.execute(text("UPDATE t SET n = 3"))
    other.commit()
    assert other.execute(text("SELECT n FROM t")).scalar_one() == 3
    other.close()
    writer.close()
    engine.dispose()


def test_read_only_sessions_read_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    begins: list[str] = []
    engine = _engine_with_table(tmp_path / "locks.db", begins)
    writer = Session(engine)
    writer.execute(text("UPDATE t SET n = 2"))  # holds the write lock, uncommitted
    reader = Session(engine)
    read_only(reader)
    # A reader that began IMMEDIATE would wait here for the writer (busy timeout).
    assert reader.execute(text("SELECT n FROM t")).scalar_one() == 1
    reader.close()
    writer.commit()
    writer.close()
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]
    engine.dispose()


def test_a_reading_session_writes_nothing_and_its_connection_writes_again_after(
    committed_url: str,
) -> None:
    # given a session opened for reading, as every GET request's is
    with open_session(committed_url, reading=True) as reader:
        # when something in it tries to write, then the database refuses at once
        with pytest.raises(DBAPIError, match=r"(?i)read-?only"):
            platform.create_api_key(reader, name="from a read", scopes=[platform.Scope.READ])
        reader.rollback()
        # and a later transaction of the same session is read-only too
        with pytest.raises(DBAPIError, match=r"(?i)read-?only"):
            platform.create_api_key(reader, name="from a read", scopes=[platform.Scope.READ])
    # and the pooled connections a writing session gets next write as usual
    for name in ("till", "shop"):
        with open_session(committed_url) as writer:
            platform.create_api_key(writer, name=name, scopes=[platform.Scope.READ])
    with open_session(committed_url, reading=True) as reader:
        names = reader.execute(text("SELECT name FROM api_keys ORDER BY name")).scalars().all()
    assert names == ["shop", "till"]


def test_a_transaction_declared_read_only_refuses_writes_and_the_next_one_writes(
    committed_url: str,
) -> None:
    # given an ordinary session whose transaction is declared read-only before it begins
    with open_session(committed_url) as db:
        read_only(db)
        # when something in it writes, then the database refuses at once, on either database
        with pytest.raises(DBAPIError, match=r"(?i)read-?only"):
            platform.create_api_key(db, name="from a read", scopes=[platform.Scope.READ])
        db.rollback()
        # and the session's next transaction is an ordinary one, which writes
        platform.create_api_key(db, name="after the read", scopes=[platform.Scope.READ])
        db.commit()
    # and so do the pooled connections other sessions get next
    for name in ("till", "shop"):
        with open_session(committed_url) as writer:
            platform.create_api_key(writer, name=name, scopes=[platform.Scope.READ])
            writer.commit()
    with open_session(committed_url, reading=True) as reader:
        names = reader.execute(text("SELECT name FROM api_keys ORDER BY name")).scalars().all()
    assert names == ["after the read", "shop", "till"]


def test_begin_write_now_does_not_wait_for_a_busy_lock(tmp_path: Path) -> None:
    # given a writer holding SQLite's write lock
    engine, writer = _writer_holding_the_lock(tmp_path / "locks.db")

    # when another session asks for the lock without waiting
    other = Session(engine)
    started = time.monotonic()
    got = begin_write_now(other)

    # then it is refused at once (not after the 30 s busy timeout), with nothing begun
    assert got is False
    assert time.monotonic() - started < 1
    assert not other.in_transaction()

    # and once the writer is done the lock is granted, and holds as a normal write
    writer.commit()
    assert begin_write_now(other) is True
    _then_it_writes_as_usual(engine, writer, other)


def test_a_request_waits_for_the_lock_no_longer_than_its_budget(tmp_path: Path) -> None:
    # given a writer holding SQLite's write lock (from this thread: no queue stands between
    # them, as for a writer whose predecessor left the queue, or a tool without one)
    engine, writer = _writer_holding_the_lock(tmp_path / "locks.db")

    # when a request with a quarter of a second left tries to write
    other = Session(engine)
    started = time.monotonic()
    with budget.deadline(0.25), pytest.raises(budget.OutOfTime) as refused:
        other.execute(text("UPDATE t SET n = 3"))

    # then it is refused at its deadline (not after the 30 s busy timeout), to retry
    assert 0.2 <= time.monotonic() - started < 2.0
    assert refused.value.status == 503
    other.rollback()
    # and once the writer is done, the same session writes as usual
    _then_it_writes_as_usual(engine, writer, other)


def test_begin_write_now_restores_the_busy_timeout(tmp_path: Path) -> None:
    # given a writer holding the lock, and connections that report every statement
    engine = create_db_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    statements: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    writer = Session(engine)
    writer.execute(text("CREATE TABLE t (n INTEGER)"))

    # when another session is refused the lock
    other = Session(engine)
    statements.clear()
    assert begin_write_now(other) is False

    # then its connection went back to the usual 30 s wait straight after the refused BEGIN
    assert statements[:3] == [
        "PRAGMA busy_timeout=0",
        "BEGIN IMMEDIATE",
        "PRAGMA busy_timeout=30000",
    ]
    writer.rollback()
    writer.close()
    other.close()
    engine.dispose()


def test_among_matches_a_list_sent_as_one_parameter(db: Session) -> None:
    # given stored values with characters a list's text could trip on, among 1,500 more
    odd = ["a,b", 'quote"d', "it's", "ünï", " spaced ", "[1]"]
    wanted = [*odd, *(f"v-{n}" for n in range(1500))]
    db.execute(text("CREATE TEMPORARY TABLE listed (value VARCHAR(20))"))
    stored = table("listed", column("value", String))
    db.execute(stored.insert(), [{"value": value} for value in [*wanted[::2], "other"]])

    # when they are looked up with among
    def found(listed: list[str]) -> set[str]:
        query = select(stored.c.value).where(among(db, stored.c.value, listed))
        return set(db.scalars(query))

    # then each stored one is found, once, and nothing else; an empty list finds nothing
    assert found(wanted) == set(wanted[::2])
    assert found(odd) == set(odd[::2])
    assert found([]) == set()
