"""The statement pool on a real PostgreSQL server: statements that wait are sent as a group
in one transaction, and one statement's failure is never its neighbours'."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rapport.platform.statements import StatementPool

SCRATCH = "statement_pool_scratch"
INSERT = f"INSERT INTO {SCRATCH} (id) VALUES (%(id)s) RETURNING id, xmin::text"


@pytest.fixture
def scratch_url(committed_url: str, backend: str) -> Iterator[str]:
    if backend != "postgresql":
        pytest.skip("the statement pool serves PostgreSQL only")
    engine = create_engine(committed_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {SCRATCH} (id integer PRIMARY KEY)"))
    yield committed_url
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {SCRATCH}"))
    engine.dispose()


def insert_all(url: str, ids: list[int]) -> list[Any]:
    """Insert ``ids`` at once through a pool of ONE connection: the first goes alone, the
    others wait for the connection."""

    async def run() -> list[Any]:
        pool = StatementPool(url, connections=1)
        await pool.open()
        try:
            return await asyncio.gather(*(pool.first_row(INSERT, {"id": i}) for i in ids))
        finally:
            await pool.close()

    with ThreadPoolExecutor(max_workers=1) as thread:  # Playwright's loop runs in this one
        return thread.submit(asyncio.run, run()).result()


def stored(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = list(connection.scalars(text(f"SELECT id FROM {SCRATCH} ORDER BY id")))
    engine.dispose()
    return ids


def test_statements_that_wait_for_a_connection_commit_together(scratch_url) -> None:
    rows = insert_all(scratch_url, list(range(10)))
    # every statement answered its own row ...
    assert [row[0] for row in rows] == list(range(10))
    # ... in fewer transactions than statements (xmin names the inserting transaction)
    assert len({row[1] for row in rows}) < 10
    assert stored(scratch_url) == list(range(10))


def test_one_failing_statement_does_not_fail_its_group(scratch_url) -> None:
    # when two statements of one group insert the same key
    rows = insert_all(scratch_url, [1, 2, 3, 4, 3, 5, 6])
    # then the group's transaction is undone and each runs alone: only the repeat is refused
    assert [row[0] if row else None for row in rows] == [1, 2, 3, 4, None, 5, 6]
    assert len({row[1] for row in rows if row}) == 6  # each its own transaction
    assert stored(scratch_url) == [1, 2, 3, 4, 5, 6]
