"""Hot commands as one SQL statement on PostgreSQL, sent straight from the event loop.

Through the ORM session a points command costs about seven round trips (the pool's ping,
BEGIN, the Idempotency-Key claim and its commit, the ledger, the event, the answer and the
commit) and several milliseconds of Python in a worker thread. For the usual case, a domain
can instead write its whole command as one statement (data-modifying CTEs: its rows, its
event, the stored answer for its Idempotency-Key) and send it here: one round trip, on a
small pool of connections in autocommit, so the statement is its own transaction (or, under
load, shares one with the statements that waited beside it: see ``StatementPool``).

Those transactions run at REPEATABLE READ. A statement that reads rows and then writes what
it read (a redemption reads the open lots it consumes) would, at READ COMMITTED, act on a
snapshot taken before it waited for a row lock; at REPEATABLE READ PostgreSQL refuses it
instead (a serialization failure), and it runs again on a fresh snapshot. A statement that
keeps refusing, or that breaks a unique key (its Idempotency-Key was stored by an earlier
request), answers ``None``: the caller then takes its general path, which handles both.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

from rapport.platform import budget
from rapport.platform.db import CONNECT_TIMEOUT_S, KEEPALIVES
from rapport.platform.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# Contention on one member is rare and brief: a few fresh snapshots, then the general path
# (which waits for the row lock instead of racing for it).
ATTEMPTS = 3


def conninfo(database_url: str) -> str:
    """libpq's URI for a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


# Statements waiting while every connection is busy go out together, pipelined, in one
# transaction: on a small machine each round trip costs more CPU (system calls, wake-ups on
# both sides) than a statement's own work. Measured on two vCPUs, per statement: alone, about
# 440 µs in the client and 700 µs in PostgreSQL; four together, 300 and 540; eight, 210 and 440.
MAX_GROUP = 16


@dataclass(slots=True)
class _Waiting:
    sql: str
    params: dict[str, Any]
    answer: asyncio.Future[tuple[Any, ...] | None]


class StatementPool:
    """A few autocommit connections at REPEATABLE READ, in UTC, for one event loop.

    A statement is sent at once while a connection is free. Under load, those that arrive
    meanwhile wait and are sent by the next free connection as a group: pipelined, one
    transaction, so they commit together (each caller is answered after that commit). When one
    of a group fails, the group's transaction is rolled back as a whole and each statement
    runs again alone, so that one statement's failure is never another's."""

    def __init__(self, database_url: str, *, connections: int) -> None:
        self._pool = AsyncConnectionPool(
            conninfo(database_url),
            min_size=1,
            max_size=connections,
            kwargs={
                "autocommit": True,
                "options": "-c default_transaction_isolation=repeatable\\ read -c timezone=UTC",
                "connect_timeout": CONNECT_TIMEOUT_S,
                **KEEPALIVES,
            },
            open=False,
            name="rapport-statements",
        )
        self._senders_allowed = connections
        self._senders: set[asyncio.Task[None]] = set()
        self._waiting: list[_Waiting] = []

    async def open(self) -> None:
        # Connections open in the background: the service starts even when PostgreSQL is
        # still starting, and the first commands take the general path meanwhile.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def first_row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """Run ``sql`` as its own transaction (or in a group's) and answer its first row;
        ``None`` when it gave no row, kept meeting concurrent changes, broke a unique key, or
        could not reach the database (the caller's general path handles and reports each).

        Within a request, an answer that has not come by the request's deadline (the server
        stopped answering) raises :class:`DatabaseUnavailable`: the statement, its own
        transaction, may still be applied should the server wake, so the problem says to send
        the command again with its Idempotency-Key, which is then answered as first done."""
        for _ in range(ATTEMPTS):
            try:
                return await self._answer_in_time(self._send(sql, params))
            except errors.SerializationFailure:
                continue
            except errors.UniqueViolation:
                return None
            except (psycopg.OperationalError, TimeoutError) as error:
                log.warning("one-statement command fell back to the general path: %s", error)
                return None
        return None

    @staticmethod
    async def _answer_in_time(
        answer: asyncio.Future[tuple[Any, ...] | None],
    ) -> tuple[Any, ...] | None:
        remaining = budget.remaining()
        if remaining is None:
            return await answer
        try:
            return await asyncio.wait_for(asyncio.shield(answer), max(remaining, 0.001))
        except TimeoutError:
            answer.add_done_callback(_collect)
            raise DatabaseUnavailable(UNANSWERED) from None

    def _send(self, sql: str, params: dict[str, Any]) -> asyncio.Future[tuple[Any, ...] | None]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(sql, params, loop.create_future())
        self._waiting.append(waiting)
        if len(self._senders) < self._senders_allowed:
            sender = loop.create_task(self._sender())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return waiting.answer

    async def _sender(self) -> None:
        """Send what waits, a group at a time, until nothing does."""
        while self._waiting:
            group = self._waiting[:MAX_GROUP]
            del self._waiting[:MAX_GROUP]
            try:
                await self._run(group)
            except BaseException as error:  # cancelled at shutdown: nobody waits for ever
                for waiting in group:
                    _settle(waiting, error=error)
                raise

    async def _run(self, group: list[_Waiting]) -> None:
        try:
            async with self._pool.connection(timeout=5) as connection:
                if len(group) == 1:
                    cursor = await connection.execute(group[0].sql, group[0].params)
                    rows = [await cursor.fetchone()]
                else:
                    try:
                        async with connection.pipeline() as pipeline:
                            cursors = [await connection.execute(w.sql, w.params) for w in group]
                            await pipeline.sync()
                            rows = [await cursor.fetchone() for cursor in cursors]
                    except psycopg.Error:
                        # After a failed pipeline psycopg still counts on statements it had
                        # prepared in it, which the server discarded: the pool replaces it.
                        await connection.close()
                        raise
        except Exception as error:
            if len(group) == 1:
                _settle(group[0], error=error)
            else:
                for waiting in group:
                    await self._run([waiting])
            return
        for waiting, row in zip(group, rows, strict=True):
            _settle(waiting, row=row)


UNANSWERED = (
    "The database did not answer within the request's time. The command may still be applied"
    " if it wakes: send it again with the same Idempotency-Key, which is answered as first"
    " done, or done now"
)


def _collect(answer: asyncio.Future[tuple[Any, ...] | None]) -> None:
    """Collect an answer nobody waits for any more, so that asyncio does not log it."""
    if not answer.cancelled():
        answer.exception()


def _settle(
    waiting: _Waiting, *, row: tuple[Any, ...] | None = None, error: BaseException | None = None
) -> None:
    if waiting.answer.done():  # its request went away meanwhile
        return
    if error is not None:
        waiting.answer.set_exception(error)
    else:
        waiting.answer.set_result(row)
