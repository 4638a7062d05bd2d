"""Hot commands as one SQL statement on PostgreSQL, sent straight from the event loop.

Through the ORM session a points command costs about seven round trips (the pool's ping,
BEGIN, the Idempotency-Key claim and its commit, the ledger, the event, the answer and the
commit) and several milliseconds of Python in a worker thread. For the usual case, a domain
can instead write its whole command as one statement (data-modifying CTEs: its rows, its
event, the stored answer for its Idempotency-Key) and send it here: one round trip, on a
small pool of connections in autocommit, so the statement is its own transaction.

Those transactions run at REPEATABLE READ. A statement that reads rows and then writes what
it read (a redemption reads the open lots it consumes) would, at READ COMMITTED, act on a
snapshot taken before it waited for a row lock; at REPEATABLE READ PostgreSQL refuses it
instead (a serialization failure), and it runs again on a fresh snapshot. A statement that
keeps refusing, or that breaks a unique key (its Idempotency-Key was stored by an earlier
request), answers ``None``: the caller then takes its general path, which handles both.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

# Contention on one member is rare and brief: a few fresh snapshots, then the general path
# (which waits for the row lock instead of racing for it).
ATTEMPTS = 3


def conninfo(database_url: str) -> str:
    """libpq's URI for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class StatementPool:
    """A few autocommit connections at REPEATABLE READ, in UTC, for one event loop."""

    def __init__(self, database_url: str, *, connections: int) -> None:
        self._pool = AsyncConnectionPool(
            conninfo(database_url),
            min_size=1,
            max_size=connections,
            kwargs={
                "autocommit": True,
                "options": "-c default_transaction_isolation=repeatable\\ read -c timezone=UTC",
            },
            open=False,
            name="rapport-statements",
        )

    async def open(self) -> None:
        # Connections open in the background: the service starts even when PostgreSQL is
        # still starting, and the first commands take the general path meanwhile.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def first_row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run ``sql`` as its own transaction and answer its first row; ``None`` when it
        gave no row, kept meeting concurrent changes, broke a unique key, or could not
        reach the database (the caller's general path handles and reports each of these)."""
        for _ in range(ATTEMPTS):
            try:
                async with self._pool.connection(timeout=5) as connection:
                    cursor = await connection.execute(sql, params)
                    return await cursor.fetchone()
            except errors.SerializationFailure:
                continue
            except errors.UniqueViolation:
                return None
            except (psycopg.OperationalError, TimeoutError) as error:
                log.warning("one-statement command fell back to the general path: %s", error)
                return None
        return None
