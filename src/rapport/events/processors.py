"""Processors read the event log in order from a stored cursor and keep read models current.

Each processor's writes and its cursor move commit together, so a crash replays at most one
batch and applies nothing twice. Domains register processors in their ``tasks.py``.

A handler that raises on an event stops only at that event, and not for good: the batch's
events before it are applied, the event is tried again on the next ticks (a try is counted in
``processor_held_events``), and once it has failed ``HOLD_AFTER`` times over at least
``HOLD_PATIENCE`` it is *held*: set aside, logged and shown on the event processing page, and
the processor goes on past it. An operator mends the cause and applies the held events with
``rapport events retry`` (:func:`retry_held`). A processor whose events must apply in their
order per customer or order (``in_order_by``: points, profiles, tracked orders) holds the later
events of a held event's customer or order behind it, untried, and a retry applies them after
it, in log order; the other processors' held events may apply late. A processor that runs
``after`` others (the triggers and segments after the profile processor, which assigns an
event its customer) holds, untried, each event one of them holds: it never judges an event
they have not applied, and a retry applies it there once they have (processors in run order).
Errors that say nothing
about the event (the database unreachable, busy or timing out) are never counted: the batch
waits for the next tick; a database error every try meets again (a missing table) is counted
(:func:`_passing`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, aliased

from rapport.events.log import events_after, head_position
from rapport.events.models import Event, HeldEvent, ProcessorCursor
from rapport.platform import clock
from rapport.platform.db import (
    WriterTurnBusy,
    open_session,
    upsert_rows,
    writer_turn,
    writers_waiting,
)
from rapport.platform.middleware import METRICS

log = logging.getLogger(__name__)

Handler = Callable[[Session, list[Event]], None]
# The subjects whose events a processor must apply in log order: keys such as
# ``customer:cus_…`` or ``order:A-1``; two events are of one subject when they share a key.
Subjects = Callable[[Event], Iterable[str]]

# On PostgreSQL a position can become visible after a higher one (transactions commit out of
# order), and rolled-back or conflicting inserts leave permanent holes. A hole followed by an
# event received less than this long ago is waited for; an older one is a hole for good.
GAP_PATIENCE = timedelta(seconds=3)

# An event a handler raises on is set aside after this many tries spread over at least this
# long: a cause that passes (a deploy half done, a row another writer had not committed yet)
# gets its chance, and a flood of failures during one bad minute is not all set aside at once.
HOLD_AFTER = 3
HOLD_PATIENCE = timedelta(minutes=1)
_ERROR_CHARS = 500

HELD = Counter(
    "rapport_processor_events_held",
    "Events a processor set aside after its handler raised on them, by processor.",
    ["processor"],
    registry=METRICS,
)


@dataclass
class Processor:
    name: str
    handle: Handler
    batch_size: int = 500
    # None: a held event may be applied after the events that followed it (the handler's
    # outcome does not depend on their order). Otherwise the subjects an event is of: while
    # one is held, the later events of its subjects are held behind it.
    in_order_by: Subjects | None = None
    # The processors whose cursor this one never passes: it reads an event only once each of
    # them has handled it (the triggers read the customer the profile processor assigned).
    after: tuple[str, ...] = ()


_processors: dict[str, Processor] = {}


def processor(
    name: str,
    *,
    batch_size: int = 500,
    in_order_by: Subjects | None = None,
    after: Iterable[str] = (),
) -> Callable[[Handler], Handler]:
    """Register ``func`` to be called with each new batch of events, in log order.

    ``in_order_by`` names the subjects (a customer, an order) whose events the handler must
    apply in their order: a handler that keeps the latest state (a trait, a consent, an order's
    status) or builds on what came before (a return's points on the order's award). While an
    event is held, the later events of its subjects are held behind it and applied after it
    by ``rapport events retry``. Leave it out for a handler whose outcome does not depend on
    the order (an invitation, a webhook): its held events may be applied late.

    ``after`` names processors whose work the handler reads from the event log (the customer
    the profile processor assigns an event): it reads only events all of them have passed,
    and runs after them in each round (:func:`run_processors`)."""

    def register(func: Handler) -> Handler:
        _processors[name] = Processor(
            name=name,
            handle=func,
            batch_size=batch_size,
            in_order_by=in_order_by,
            after=tuple(after),
        )
        return func

    return register


def by_person(event: Event) -> set[str]:
    """The subjects of an event's person, as the event names them: Rapport's customer id, the
    sender's user id and visitor id (a user id of the form ``cus_…`` is the customer id)."""
    keys: set[str] = set()
    if event.customer_id:
        keys.add(f"customer:{event.customer_id}")
    if event.user_id:
        user = event.user_id
        keys.add(f"customer:{user}" if user.startswith("cus_") else f"user:{user}")
    if event.anonymous_id:
        keys.add(f"visitor:{event.anonymous_id}")
    return keys


class _InOrder:
    """The subjects of a processor's held events, each with the held event the later events of
    that subject wait behind (the one whose handler raised)."""

    def __init__(self, proc: Processor, subjects: Subjects) -> None:
        self.proc = proc
        self.subjects = subjects
        self.roots: dict[str, int] = {}

    @classmethod
    def load(cls, db: Session, proc: Processor) -> _InOrder | None:
        """The processor's held subjects as stored; None for a processor whose held events
        may apply late."""
        if proc.in_order_by is None:
            return None
        order = cls(proc, proc.in_order_by)
        rows = db.execute(
            select(HeldEvent.position, HeldEvent.behind, Event)
            .join(Event, Event.position == HeldEvent.position)
            .where(HeldEvent.processor == proc.name, HeldEvent.held_at.is_not(None))
            .order_by(HeldEvent.position)
        ).all()
        for position, behind, event in rows:
            order.hold(event, behind or position)
        return order

    def root(self, event: Event) -> int | None:
        """The held event this one must wait behind, if one of its subjects is held."""
        found = [self.roots[key] for key in self.subjects(event) if key in self.roots]
        return min(found) if found else None

    def hold(self, event: Event, root: int) -> None:
        for key in self.subjects(event):
            self.roots.setdefault(key, root)


def _waiting_reason(root: int) -> str:
    return (
        f"Waits behind the held event at log position {root}, of the same customer or order:"
        " applied after it by `rapport events retry`."
    )


def _unapplied_reason(proc: Processor) -> str:
    return (
        f"Waits for {' and '.join(proc.after)}, which holds this event: applied after it by"
        " `rapport events retry`."
    )


def _hold_behind(db: Session, proc: Processor, event: Event, root: int) -> None:
    """Hold ``event`` untried behind the held event at ``root`` (one of its subjects', or
    ``event`` itself where a processor ``proc`` runs after holds it)."""
    name = proc.name
    now = clock.now()
    entry = db.get(HeldEvent, (name, event.position))
    if entry is None:
        entry = HeldEvent(processor=name, position=event.position, attempts=0)
        entry.first_failed_at = now
        db.add(entry)
    entry.error = _unapplied_reason(proc) if root == event.position else _waiting_reason(root)
    entry.last_failed_at = now
    entry.held_at = entry.held_at or now
    entry.behind = root
    log.warning(
        "processor %s holds event %s (%s) behind the held event at log position %s, of the"
        " same customer or order (its own: a processor it runs after holds it)",
        name,
        event.event_id,
        event.type,
        root,
    )


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
    all goes unseen.) Both columns are shown for every role's sessions, not only ours. Only
    client sessions count: the server's own workers (autovacuum, which holds an ``xmin`` while
    it vacuums the log's busy tables) never insert an event."""
    # The server keeps what a transaction first read of the sessions until it ends.
    db.execute(text("SELECT pg_stat_clear_snapshot()"))
    return (
        db.execute(
            text(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
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
    # Read before the events: an event at or below it was handled, and its writes committed
    # with that cursor, by every processor this one runs after.
    through = _passed_by(db, proc.after) if proc.after else None
    events = events_after(db, position=start, limit=proc.batch_size)
    if postgres:
        events = settled(start, events, now=clock.now(), final_through=final_through)
    if through is not None:
        events = [event for event in events if event.position <= through]
    if not events:
        db.rollback()
        return 0, False
    more = len(events) == proc.batch_size
    # Events a processor this one runs after has held: passed by its cursor, never applied
    # (the customer it would have assigned is not there). Held here too, untried, until it is.
    unapplied = _held_by(db, proc.after, events) if proc.after else set()
    order = _InOrder.load(db, proc)
    ready, behind = _partition(order, events, unapplied)
    try:
        with db.begin_nested():
            done = _handle_in_turn(db, proc, ready) if ready else []
    except Exception as error:
        if _passing(error):
            raise
        handled, read_on = _isolate(db, proc, events, unapplied)
    else:
        # The events the cursor may pass: all, or those before the first ready one not
        # handled in this turn (the held-behind ones among them are held now).
        if len(done) < len(ready):
            handled = [e for e in events if e.position < ready[len(done)].position]
        else:
            handled = events
        for event in handled:
            if event.position in behind:
                _hold_behind(db, proc, event, behind[event.position])
        if handled:
            _forget_tries(db, proc.name, through=handled[-1].position)
        read_on = more or len(handled) < len(events)
    if handled:
        cursor.position = handled[-1].position
        cursor.updated_at = clock.now()
    db.commit()
    return len(handled), read_on


def _held_by(db: Session, names: tuple[str, ...], events: list[Event]) -> set[int]:
    """The positions among ``events`` that a processor in ``names`` holds (set aside, or
    waiting behind another of its held events): passed by its cursor but not applied."""
    if not events:
        return set()
    return set(
        db.scalars(
            select(HeldEvent.position).where(
                HeldEvent.processor.in_(names),
                HeldEvent.held_at.is_not(None),
                HeldEvent.position >= events[0].position,
                HeldEvent.position <= events[-1].position,
            )
        )
    )


def _partition(
    order: _InOrder | None, events: list[Event], unapplied: set[int]
) -> tuple[list[Event], dict[int, int]]:
    """The events free to handle, and those to hold (by position: the held one each waits
    behind, its own position for one a processor it runs after holds), in log order."""
    ready: list[Event] = []
    behind: dict[int, int] = {}
    for event in events:
        root = order.root(event) if order is not None else None
        if root is None and event.position in unapplied:
            root = event.position
        if root is None:
            ready.append(event)
        else:
            behind[event.position] = root
            if order is not None:
                order.hold(event, root)
    return ready, behind


def _passed_by(db: Session, names: tuple[str, ...]) -> int:
    """The log position every processor in ``names`` has passed (0 for one that has not
    started); a name no processor is registered under is an error, not a wait for ever."""
    unknown = [name for name in names if name not in _processors]
    if unknown:
        raise LookupError(f"processors run after unregistered processors: {', '.join(unknown)}")
    rows = db.execute(
        select(ProcessorCursor.name, ProcessorCursor.position).where(
            ProcessorCursor.name.in_(names)
        )
    ).all()
    positions = {row.name: row.position for row in rows}
    return min(int(positions.get(name, 0)) for name in names)


def in_run_order() -> list[Processor]:
    """The registered processors in the order a round runs them: as registered, except that
    each comes after the processors it names in ``after``."""
    ordered: dict[str, Processor] = {}
    visiting: set[str] = set()

    def place(proc: Processor) -> None:
        if proc.name in ordered:
            return
        if proc.name in visiting:
            raise LookupError(f"processors wait on each other in a circle: {proc.name}")
        visiting.add(proc.name)
        for name in proc.after:
            if name in _processors:
                place(_processors[name])
        visiting.discard(proc.name)
        ordered[proc.name] = proc

    for proc in _processors.values():
        place(proc)
    return list(ordered.values())


# PostgreSQL's errors that pass, by SQLSTATE: a whole class (08 the connection, 40 a
# serialization failure or deadlock, 53 resources such as a full disk or too many
# connections, 57 an operator's or a timeout's cancel, 58 the server's own I/O), or one code
# (55P03 a lock not available in time). Every other code names something a statement will meet
# again (42 a missing table or column, 54 a program limit such as too many arguments).
_PASSING_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_PASSING_SQLSTATES = frozenset({"55P03"})
# SQLite's, by primary result code: busy or locked, out of memory, I/O, a full disk, a file it
# cannot open, a lock protocol clash, an interrupted statement, a schema changed under a
# prepared statement. SQLITE_ERROR (a missing table or column, a syntax error, too many SQL
# variables) and the rest are the statement's own.
_PASSING_SQLITE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_SCHEMA,
    }
)
# The same, by message, for an error raised without its code.
_PASSING_SQLITE_MESSAGES = (
    "locked",
    "busy",
    "disk i/o error",
    "unable to open database file",
    "database or disk is full",
    "out of memory",
    "interrupted",
    "schema has changed",
)


def _passing(error: BaseException) -> bool:
    """Whether ``error`` says nothing about the events handled: the database could not be
    reached, was busy (SQLite's lock, a lock timeout, a serialization failure, a deadlock) or
    the pool ran dry. Such a batch is not counted against its events; the next tick tries
    again. An ``OperationalError`` that every try would meet again (a missing table or column,
    a syntax error, too many SQL variables or arguments) is the events' own, and counted:
    PostgreSQL's by the SQLSTATE class of the driver's error, SQLite's by its result code (or
    message)."""
    if isinstance(error, InterfaceError | PoolTimeout):
        return True
    if not isinstance(error, OperationalError):
        return False
    return _passing_driver_error(error.orig)


def _passing_driver_error(orig: BaseException | None) -> bool:
    if isinstance(orig, WriterTurnBusy):
        return True
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _PASSING_SQLITE_CODES
        message = str(orig).lower()
        return any(phrase in message for phrase in _PASSING_SQLITE_MESSAGES)
    sqlstate = getattr(orig, "sqlstate", None)
    if not isinstance(sqlstate, str) or len(sqlstate) != 5:
        # No answer from the server (a connection refused or lost): nothing about the events.
        return True
    return sqlstate[:2] in _PASSING_SQLSTATE_CLASSES or sqlstate in _PASSING_SQLSTATES


def _isolate(
    db: Session, proc: Processor, events: list[Event], unapplied: set[int]
) -> tuple[list[Event], bool]:
    """After the batch raised as a whole: its events one at a time, each in its own savepoint,
    up to the first that raises alone. That one has a try counted; once held it is passed
    over, and so are the later events of its subjects, held behind it (``in_order_by``).
    Returns the events the cursor may pass, and whether to read on in this tick (not while an
    event waits for its next try, so that the tries fall on separate ticks)."""
    passed: list[Event] = []
    order = _InOrder.load(db, proc)
    for event in events:
        root = order.root(event) if order is not None else None
        if root is None and event.position in unapplied:
            root = event.position  # a processor this one runs after holds it
        if root is not None:
            _hold_behind(db, proc, event, root)
            if order is not None:
                order.hold(event, root)
            passed.append(event)
            continue
        try:
            with db.begin_nested():
                proc.handle(db, [event])
        except Exception as error:
            if _passing(error):
                raise
            if not _count_try(db, proc.name, event, error):
                return passed, False
            if order is not None:
                order.hold(event, event.position)
        else:
            _forget_tries(db, proc.name, through=event.position)
        passed.append(event)
    return passed, True


def _count_try(db: Session, name: str, event: Event, error: Exception) -> bool:
    """Record that ``name``'s handler raised on ``event``; whether the event is now held."""
    now = clock.now()
    reason = f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
    entry = db.get(HeldEvent, (name, event.position))
    if entry is None:
        entry = HeldEvent(
            processor=name,
            position=event.position,
            attempts=0,
            error=reason,
            first_failed_at=now,
            last_failed_at=now,
        )
        db.add(entry)
    entry.attempts += 1
    entry.error = reason
    entry.last_failed_at = now
    if entry.attempts >= HOLD_AFTER and now - clock.as_utc(entry.first_failed_at) >= HOLD_PATIENCE:
        entry.held_at = now
        HELD.labels(name).inc()
        log.error(
            "processor %s set aside event %s (%s) after %d tries: %s; it goes on past it, and"
            " `rapport events retry` applies it once the cause is mended",
            name,
            event.event_id,
            event.type,
            entry.attempts,
            reason,
        )
        return True
    log.warning(
        "processor %s failed on event %s (%s), try %d: %s; it waits there and tries again",
        name,
        event.event_id,
        event.type,
        entry.attempts,
        reason,
    )
    return False


def _forget_tries(db: Session, name: str, *, through: int) -> None:
    """Failed tries of events up to ``through`` that have now been applied (held ones stay
    until retried)."""
    db.execute(
        delete(HeldEvent).where(
            HeldEvent.processor == name,
            HeldEvent.held_at.is_(None),
            HeldEvent.position <= through,
        )
    )


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

    Processors are independent: an event a handler raises on is tried again and then held
    (see the module's docstring), and a batch that fails for a passing reason (the database
    busy or gone) is rolled back (its cursor stays, and the next call retries it) and logged,
    the processors after it still advance, and then the first such error is raised (the
    worker logs it and goes on with its tick)."""
    handled = 0
    failed: list[Exception] = []
    with open_session(database_url) as db:
        behind = _behind_the_head(db)
    # A processor reading what another writes to the log runs after it (``after``), so that
    # it reads this round's events rather than waiting for the next.
    for proc in in_run_order():
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


@dataclass(frozen=True)
class HeldEventView:
    """A held event as the operator sees it: where it is, what it is and why it failed, or
    which held event of the same customer or order it waits behind (``behind_event_id``)."""

    processor: str
    position: int
    event_id: str
    event_type: str
    attempts: int
    error: str
    held_at: datetime
    behind_event_id: str | None = None


def held_events(db: Session, *, limit: int = 50) -> tuple[int, list[HeldEventView]]:
    """How many events processors hold, and the newest ``limit`` of them."""
    total = db.scalar(select(func.count()).where(HeldEvent.held_at.is_not(None))) or 0
    root = aliased(Event)
    rows = db.execute(
        select(HeldEvent, Event.event_id, Event.type, root.event_id)
        .join(Event, Event.position == HeldEvent.position)
        .outerjoin(root, root.position == HeldEvent.behind)
        .where(HeldEvent.held_at.is_not(None))
        .order_by(HeldEvent.held_at.desc(), HeldEvent.position.desc())
        .limit(limit)
    ).all()
    return int(total), [
        HeldEventView(
            processor=held.processor,
            position=held.position,
            event_id=event_id,
            event_type=event_type,
            attempts=held.attempts,
            error=held.error,
            held_at=clock.as_utc(held.held_at or held.last_failed_at),
            behind_event_id=behind_event_id if held.behind is not None else None,
        )
        for held, event_id, event_type, behind_event_id in rows
    ]


def count_held_behind(db: Session) -> int:
    """How many of the held events wait behind an earlier one of their customer or order."""
    return (
        db.scalar(
            select(func.count()).where(
                HeldEvent.held_at.is_not(None), HeldEvent.behind.is_not(None)
            )
        )
        or 0
    )


@dataclass(frozen=True)
class RetryOutcome:
    applied: int
    still_failing: int
    # Held behind an event of the same customer or order that still fails: not tried.
    still_waiting: int = 0


def retry_held(
    *, database_url: str | None = None, processor_name: str | None = None
) -> RetryOutcome:
    """Apply the held events again through their processors, in log order, each on its own:
    an applied one is deleted, one that raises again stays held with its try counted. Events
    are applied in their processor's turn (its cursor locked). A processor that applies in
    order (``in_order_by``) has held the later events of a held event's subjects behind it:
    they are applied after it, in their order, and while it still fails they stay held behind
    it, untried; one that fails in turn holds the rest of its subjects behind itself. The other
    processors' held events are applied after the events that came after them: their handlers
    accept that, as they accept a replayed batch."""
    applied = failing = waiting = 0
    # In run order: a processor's held events apply before those of the processors after it.
    for proc in in_run_order():
        if processor_name is not None and proc.name != processor_name:
            continue
        # The subjects that stay held in this retry, as it goes (those it applies are free).
        order = _InOrder(proc, proc.in_order_by) if proc.in_order_by is not None else None
        last = 0
        while True:
            # One held event at a time, the next in log order: the processor may hold more
            # behind them meanwhile (at higher positions), and this retry reaches those too.
            with open_session(database_url) as db, writer_turn(db):
                _locked_cursor(db, proc.name)
                held = db.scalar(
                    select(HeldEvent)
                    .where(
                        HeldEvent.processor == proc.name,
                        HeldEvent.held_at.is_not(None),
                        HeldEvent.position > last,
                    )
                    .order_by(HeldEvent.position)
                    .limit(1)
                )
                if held is None:
                    db.rollback()
                    break
                last = held.position
                event = db.get(Event, held.position)
                if event is None:
                    db.rollback()
                    continue
                root = order.root(event) if order is not None else None
                if root is None and proc.after and _held_by(db, proc.after, [event]):
                    root = event.position  # still not applied by a processor it runs after
                if root is not None:
                    held.behind = root
                    held.error = (
                        _unapplied_reason(proc) if root == event.position else _waiting_reason(root)
                    )
                    if order is not None:
                        order.hold(event, root)
                    waiting += 1
                    db.commit()
                    continue
                try:
                    with db.begin_nested():
                        proc.handle(db, [event])
                except Exception as error:
                    if _passing(error):
                        raise
                    held.attempts += 1
                    held.error = f"{type(error).__name__}: {error}"[:_ERROR_CHARS]
                    held.last_failed_at = clock.now()
                    held.behind = None
                    if order is not None:
                        order.hold(event, event.position)
                    failing += 1
                else:
                    db.delete(held)
                    applied += 1
                db.commit()
    return RetryOutcome(applied=applied, still_failing=failing, still_waiting=waiting)


def skip_held(
    *, event_id: str, database_url: str | None = None, processor_name: str | None = None
) -> list[str]:
    """Give up on a held event without applying it (its data cannot be mended): its row is
    deleted, so the next retry applies the events held behind it. Returns the processors that
    held it (none: it was not held, or not by ``processor_name``)."""
    with open_session(database_url) as db, writer_turn(db):
        query = (
            select(HeldEvent)
            .join(Event, Event.position == HeldEvent.position)
            .where(Event.event_id == event_id, HeldEvent.held_at.is_not(None))
        )
        if processor_name is not None:
            query = query.where(HeldEvent.processor == processor_name)
        held = list(db.scalars(query.order_by(HeldEvent.processor)))
        for entry in held:
            log.warning(
                "processor %s skips held event %s (log position %s) without applying it, as an"
                " operator asked",
                entry.processor,
                event_id,
                entry.position,
            )
            db.delete(entry)
        db.commit()
        return [entry.processor for entry in held]


def known_processor(name: str) -> bool:
    return name in _processors
