"""SQLite transactions: writers take the lock up front, declared readers never wait for it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from rapport.platform.db import create_db_engine, read_only


def test_read_only_sessions_read_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    with engine.begin() as setup:
        setup.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        setup.exec_driver_sql("INSERT INTO t VALUES (1)")
    begins: list[str] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: (
            begins.append(statement) if statement.startswith("BEGIN") else None
        ),
    )
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
