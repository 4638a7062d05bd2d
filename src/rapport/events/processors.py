"""Processors read the event log in order from a stored cursor and keep read models current.

Each processor's writes and its cursor move commit together, so a crash replays at most one
batch and applies nothing twice. Domains register processors in their ``tasks.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rapport.events.log import events_after, head_position
from rapport.events.models import Event, ProcessorCursor
from rapport.platform import clock
from rapport.platform.db import open_session, upsert_rows, writer_turn, writers_waiting

log = logging.getLogger(__name__)

Handler = Callable[[Session, list[Event]], None]

# On PostgreSQL a position can become visible after a higher one (transactions commit out of
# order), and rolled-back or conflicting inserts leave permanent holes. A hole followed by an
# event received less than this long ago is waited for; an older one is a hole for good.
GAP_PATIENCE = timedelta(seconds=3)


@dataclass
class Processor:
    name: str
    handle: Handler
    batch_size: int = 500


_processors: dict[str, Processor] = {}


def processor(name: str, *, batch_size: int = 500) -> Callable[[Handler], Handler]:
    """Register ``func`` to be called with each new batch of events, in log order."""

    def register(func: Handler) -> Handler:
        _processors[name] = Processor(name=name, handle=func, batch_size=batch_size)
        return func

    return register


def registered_processors() -> list[Processor]:
    return list(_processors.values())


def lock_processor_cursors(db: Session) -> None:
    """Lock every registered processor's cursor (creating those not stored yet), by name, for
    the rest of the caller's transaction (PostgreSQL): a processor batch holds its own cursor
    for the whole batch, so this waits for running batches and no batch starts until the
    caller commits. Workflows that must not race the processors (erasure) take it first."""
    known = [
        {"name": p.name, "position": 0, "updated_at": clock.now()} for p in _processors.values()
    ]
    upsert_rows(db, ProcessorCursor.__table__, known, key_columns=["name"])
    db.execute(select(ProcessorCursor.name).order_by(ProcessorCursor.name).with_for_update()).all()


def _locked_cursor(db: Session, name: str) -> ProcessorCursor:
    query = select(ProcessorCursor).where(ProcessorCursor.name == name)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    cursor = db.scalar(query)
    if cursor is not None:
        return cursor
    try:
        with db.begin_nested():
            db.add(ProcessorCursor(name=name, position=0, updated_at=clock.now()))
    except IntegrityError:
        pass  # another worker created it first
    cursor = db.scalar(query)
    assert cursor is not None
    return cursor


def settled(
    start: int, events: list[Event], *, now: datetime, final_through: int = 0
) -> list[Event]:
    """The events up to the first hole that may still fill in. A hole is final when it lies
    at or below ``final_through`` (see :func:`_final_through`), or once the event after it
    was received ``GAP_PATIENCE`` ago, since a writer holding the missing position would have
    had to stay uncommitted all that time."""
    expected = start + 1
    for index, event in enumerate(events):
        fresh = now - event.received_at < GAP_PATIENCE
        if event.position != expected and event.position - 1 > final_through and fresh:
            return events[:index]
        expected = event.position + 1
    return events


def _final_through(db: Session) -> int:
    """The highest log position below which no hole can still fill (PostgreSQL), read before
    the batch's events are: the newest position handed out so far, when no other session of
    this database is writing; 0 when one is, and then only time settles a hole. Read in that
    order, every position handed out by then belongs to a transaction that was over when the
    sessions were looked at (a hole for good, or committed and so in the read that follows),
    and any handed out later is above it. (That needs the log's sequence to hand out one
    value at a time, as the migrations create it: with a per-session ``CACHE`` a session could
    still hand out a position below it.)"""
    newest = db.execute(
        text("SELECT pg_sequence_last_value(pg_get_serial_sequence(:table, 'position'))"),
        {"table": Event.__tablename__},
    ).scalar()
    return 0 if _other_writers_active(db) else int(newest or 0)


def _other_writers_active(db: Session) -> bool:
    """Whether another session of this database is inside a transaction that has written
    (``backend_xid``) or a statement that may be writing (``backend_xmin``: an INSERT takes
    its position before it gets a transaction id); if none is, no hole in the log can still
    fill and there is nothing to wait for. Sessions of other databases on the same server
    cannot fill a hole in ours and do not count. (The server's snapshot does not serve here:
    it lists only transactions older than the newest one finished, so the newest writer of
    all goes unseen.) Both columns are shown for every role's sessions, not only ours."""
    # The server keeps what a transaction first read of the sessions until it ends.
    db.execute(text("SELECT pg_stat_clear_snapshot()"))
    return (
        db.execute(
            text(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
                " AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) LIMIT 1"
            )
        ).first()
        is not None
    )


def run_batch(db: Session, proc: Processor) -> int:
    """Process the next batch for ``proc``. Returns how many events it handled."""
    return run_batch_counted(db, proc)[0]


def run_batch_counted(db: Session, proc: Processor) -> tuple[int, bool]:
    """:func:`run_batch`, and whether the log may hold more events for ``proc`` right now (a
    full batch was read)."""
    cursor = _locked_cursor(db, proc.name)
    start = cursor.position
    # SQLite has one writer at a time, so a hole there is always a rolled-back insert.
    postgres = db.get_bind().dialect.name == "postgresql"
    final_through = _final_through(db) if postgres else 0
    events = events_after(db, position=start, limit=proc.batch_size)
    if postgres:
        events = settled(start, events, now=clock.now(), final_through=final_through)
    if not events:
        db.rollback()
        return 0, False
    more = len(events) == proc.batch_size
    handled = _handle_in_turn(db, proc, events)
    cursor.position = handled[-1].position
    cursor.updated_at = clock.now()
    db.commit()
    return len(handled), more or len(handled) < len(events)


# On SQLite a batch holds the database's only write turn while it is handled: it is handed to
# the processor in slices, and once another writer has queued (a ledger command, ingestion)
# the batch ends after the current slice, committing what was handled. Batches are arbitrary
# cuts of the log, so a shorter one changes nothing but when the rest is handled.
TURN_SLICE = 20


def _handle_in_turn(db: Session, proc: Processor, events: list[Event]) -> list[Event]:
    """Handle ``events``, or a first part of them when other writers wait; the handled ones."""
    if db.get_bind().dialect.name != "sqlite" or len(events) <= TURN_SLICE:
        proc.handle(db, events)
        return events
    done = 0
    while done < len(events):
        proc.handle(db, events[done : done + TURN_SLICE])
        done += TURN_SLICE
        if writers_waiting(db):
            break
    return events[:done]


def run_processors(*, database_url: str | None = None, max_batches: int = 20) -> int:
    """Advance every processor by up to ``max_batches`` batches; returns events handled.

    Processors are independent: a batch that raises is rolled back (its cursor stays, and the
    next call retries it) and logged, the processors after it still advance, and then the
    first such error is raised (the worker logs it and goes on with its tick). A handler
    should not raise for one event it cannot apply, or it stops itself at that event: it
    keeps the event's refusal and moves on (``orders.tracked`` does)."""
    handled = 0
    failed: list[Exception] = []
    with open_session(database_url) as db:
        behind = _behind_the_head(db)
    for proc in _processors.values():
        if proc.name not in behind:
            continue
        try:
            handled += _advance(proc, database_url=database_url, max_batches=max_batches)
        except Exception as error:
            log.exception("processor %s failed; its cursor stays, retried next time", proc.name)
            failed.append(error)
    if failed:
        raise failed[0]
    return handled


def _advance(proc: Processor, *, database_url: str | None, max_batches: int) -> int:
    handled = 0
    for _ in range(max_batches):
        with open_session(database_url) as db, writer_turn(db, bulk=True):
            # One batch per turn: on SQLite, ingestion and commands queue for the same
            # turn, first come first served, so they go between the processor's batches.
            count, more = run_batch_counted(db, proc)
        handled += count
        if not more:
            break
    return handled


def _behind_the_head(db: Session) -> set[str]:
    """The processors whose cursor is behind the newest event: two reads, so that an idle
    worker's tick does not take the write turn and lock a cursor for every processor. An
    event appended after this look is the next tick's."""
    head = head_position(db)
    rows = db.execute(select(ProcessorCursor.name, ProcessorCursor.position)).all()
    cursors: dict[str, int] = {row.name: row.position for row in rows}
    return {name for name in _processors if cursors.get(name, 0) < head}


def processor_lag(db: Session) -> dict[str, int]:
    """How many log positions each processor is behind the head."""
    head = head_position(db)
    cursors = {c.name: c.position for c in db.scalars(select(ProcessorCursor))}
    return {name: head - cursors.get(name, 0) for name in _processors}
