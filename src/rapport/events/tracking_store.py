"""Storing tracking events once each: the clock-skew and suppression checks, de-duplication
by ``event_id``, the group commit of single events arriving together, and driver-level
inserts (SQLite and PostgreSQL). Events arrive here validated (see ``ingest.py``) and are
committed before the API answers."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses
from functools import lru_cache
from itertools import chain
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlsplit

import orjson
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from rapport.events.behaviour import ANALYTICS_PURPOSE, browsing
from rapport.events.location import (
    LOCATION_PURPOSE,
    bare,
    choices_when_stored,
    has_coordinates,
    without_coordinates,
)
from rapport.events.models import Event
from rapport.events.suppression import IDENTIFYING_KEYS
from rapport.platform import clock
from rapport.platform.clock import MAX_CLOCK_SKEW
from rapport.platform.db import begin_write_now, driver_cursor, writer_turn
from rapport.platform.errors import Conflict, InvalidInput, field_error
from rapport.platform.identity import identity_digest, is_email, normalise_identity

Status = Literal["accepted", "duplicate", "rejected"]

# The ``source`` a tracking event is stored with when its key may only ingest (not write): the
# profile processor reads it to keep such an event from changing a known customer's contact
# email and phone, names and identities (customers.processor: a public key is readable by
# anyone, and customer numbers are easy to guess). Not compared between duplicates.
PUBLIC_API_SOURCE = "api-public"
PUBLIC_SEGMENT_SOURCE = "segment-public"
PUBLIC_SOURCES = frozenset({PUBLIC_API_SOURCE, PUBLIC_SEGMENT_SOURCE})


def from_public_key(source: str) -> bool:
    """Whether an event stored with ``source`` was sent with a key that may only ingest."""
    return source in PUBLIC_SOURCES


class NewEvent(TypedDict):
    """A validated tracking event, ready for the log (``user_id`` is the sender's person id)."""

    event_id: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    channel: str
    occurred_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event was not stored. ``field`` uses the names of ``POST /v1/events``."""

    field: str
    message: str
    code: str


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    position: int | None = None
    refusal: Refusal | None = None


@dataclass(frozen=True)
class Ingested:
    event_id: str
    position: int | None  # None: acknowledged, not stored (its person refused analytics)
    duplicate: bool


def ingest_events(
    db: Session, *, events: Sequence[NewEvent], compare_duplicates: bool = True
) -> list[Outcome]:
    """Store tracking events once each, in one transaction, and commit.

    Returns one outcome per event, in order. An event is rejected when it is dated more than
    ``MAX_CLOCK_SKEW`` ahead, names a suppressed (erased) identity, or, with
    ``compare_duplicates``, reuses a stored ``event_id`` with different content. An
    ``event_id`` already stored, or earlier in ``events``, is a duplicate and stores nothing.
    """
    now = clock.now()
    horizon = now + MAX_CLOCK_SKEW
    outcomes: list[Outcome | None] = [None] * len(events)
    # Everything that needs no database comes first, so that the transaction (which holds
    # SQLite's single write lock) is one query, one insert and the commit.
    sqlite = db.get_bind().dialect.name == "sqlite"
    # An id is de-duplicated per trust level (see _claimed_by_public_key): a public key's
    # event never makes a trusted key's event with the same id a duplicate.
    first_index: dict[tuple[str, bool], int] = {}
    named: dict[int, list[tuple[str, str]]] = {}
    rows: dict[int, tuple[Any, ...]] = {}
    located: list[int] = []  # events holding coordinates, stored only with consent
    for index, event in enumerate(events):
        if event["occurred_at"] > horizon:
            outcomes[index] = Outcome("rejected", refusal=_FUTURE)
        elif _dedupe_key(event) not in first_index:
            first_index[_dedupe_key(event)] = index
            # Stored without its coordinates unless its person has granted location (read
            # below, with the write lock held: a withdrawal committed before counts).
            located_here = has_coordinates(event)
            try:
                rows[index] = _row(
                    without_coordinates(event) if located_here else event, sqlite=sqlite
                )
            except orjson.JSONEncodeError:
                outcomes[index] = Outcome("rejected", refusal=_UNENCODABLE)
                continue
            named[index] = _identity_digests(event)
            if located_here:
                located.append(index)

    # A trusted event sharing its id with a public key's in this same call waits for the
    # public one's insert (then takes the id from it): one insert never holds an id twice.
    public_ids = {events[i]["event_id"] for i in rows if from_public_key(events[i]["source"])}
    deferred = {
        i
        for i in rows
        if events[i]["event_id"] in public_ids and not from_public_key(events[i]["source"])
    }
    # Under SQLite's write lock this process's other threads keep parsing, and every handover
    # of the GIL can cost the lock holder a switch interval: so the statements' parameters are
    # built before the lock is taken (for the usual case: nothing suppressed, nothing stored).
    wanted = {digest for found in named.values() for _, digest in found}
    suppression_check = _suppression_parameter(wanted, sqlite=sqlite) if wanted else None
    prepared = (
        _prepare_sqlite(list(rows.values()), received_at=now)
        if sqlite and rows and not deferred
        else None
    )
    with writer_turn(db, bulk=True):
        cursor = driver_cursor(db)
        suppressed = (
            _suppressed(cursor, suppression_check, sqlite=sqlite) if suppression_check else set()
        )
        for index, found in named.items():
            hit = next((field for field, digest in found if digest in suppressed), None)
            if hit is not None:
                outcomes[index] = Outcome("rejected", refusal=_suppressed_refusal(hit))
                del rows[index]
        # The people's choices, read once: a person who refused analytics has their browsing
        # acknowledged, not stored; one who granted location has their coordinates stored.
        kept = {i: events[i] for i in rows}
        asked = {ANALYTICS_PURPOSE: browsing(kept), LOCATION_PURPOSE: located}
        choices = choices_when_stored(db, kept, asked) if kept else {}
        on_analytics = choices.get(ANALYTICS_PURPOSE, {})
        refused = [i for i, choice in on_analytics.items() if not choice.granted]
        for index in refused:
            outcomes[index] = _ACCEPTED
            del rows[index]
        on_location = choices.get(LOCATION_PURPOSE, {})
        consented = sorted(i for i, choice in on_location.items() if choice.granted and i in rows)
        for index in consented:
            with suppress(orjson.JSONEncodeError):  # a number no coordinate is: left out
                rows[index] = _row(events[index], sqlite=sqlite)
        first_round = [row for index, row in rows.items() if index not in deferred]
        if not first_round:
            inserted: dict[str, int | None] = {}
        elif prepared is not None and not suppressed and not consented and not refused:
            inserted = _write_sqlite(cursor, prepared)
        else:
            inserted = _insert(cursor, first_round, received_at=now, sqlite=sqlite)
        stored_here = {
            i: inserted[events[i]["event_id"]]
            for i in rows
            if i not in deferred and events[i]["event_id"] in inserted
        }
        missing = [events[i]["event_id"] for i in rows if i not in stored_here]
        stored = _stored(db, missing) if missing else {}
        # Where each event not stored yet is kept: under its id, or beside a trusted event's
        stored_as = {i: events[i]["event_id"] for i in rows if i not in stored_here}
        apart = _kept_apart(events, stored_as, stored)
        if apart:
            stored_as |= apart
            stored_here |= _keep_apart(db, cursor, rows, apart, now=now, sqlite=sqlite)
            missing = [stored_as[i] for i in apart if i not in stored_here]
            stored |= _stored(db, missing) if missing else {}
        db.commit()

    for index in rows:
        if index in stored_here:
            position = stored_here[index]
            outcomes[index] = _ACCEPTED if position is None else Outcome("accepted", position)
        else:
            stored_event = stored[stored_as[index]]
            outcomes[index] = _as_duplicate(events[index], stored_event, compare_duplicates)
    for index, event in enumerate(events):
        if outcomes[index] is not None:
            continue
        first = first_index[_dedupe_key(event)]
        first_outcome = outcomes[first]
        assert first_outcome is not None
        if first_outcome.status == "rejected":
            outcomes[index] = first_outcome
        elif compare_duplicates and not _same_event(events[first], event):
            outcomes[index] = Outcome("rejected", refusal=_CONFLICT)
        else:
            outcomes[index] = Outcome("duplicate", position=first_outcome.position)
    return [outcome for outcome in outcomes if outcome is not None]


def _dedupe_key(event: NewEvent) -> tuple[str, bool]:
    return event["event_id"], from_public_key(event["source"])


def _kept_apart(
    events: Sequence[NewEvent], stored_as: dict[int, str], stored: dict[str, Any]
) -> dict[int, str]:
    """Of the events not stored under their ids (``stored_as``), those that a public key's
    event and a trusted key's keep apart, with the id each is to be stored under: a trusted
    event whose id a public key's event holds (or none does: one deferred behind a public
    event that was refused) takes it, the public one moving aside (:func:`public_claim_id`);
    a public key's event whose id a trusted event holds is stored aside at once.

    A public key is readable by anyone: with it a page could otherwise claim the id the
    shop's server derives from an order (``order-1005``) before the server sends the order,
    which would then be dropped as a duplicate."""
    apart: dict[int, str] = {}
    for index, event_id in stored_as.items():
        holder = stored.get(event_id)
        public = from_public_key(events[index]["source"])
        held_by_public = holder is not None and from_public_key(holder.source)
        if not public and (holder is None or held_by_public):
            apart[index] = event_id
        elif public and holder is not None and not held_by_public:
            apart[index] = public_claim_id(event_id)
    return apart


def public_claim_id(event_id: str) -> str:
    """The id a public key's event is kept under when a trusted event has its id: it begins
    with a space, which no sender's can (ids are stripped), so it is nobody's to claim."""
    moved = f" {event_id}"
    if len(moved) > MAX_EVENT_ID:
        moved = " " + hashlib.sha256(event_id.encode()).hexdigest()
    return moved


# The longest event id stored (``Event.event_id``).
MAX_EVENT_ID = 100


def _keep_apart(
    db: Session,
    cursor: Any,
    rows: dict[int, tuple[Any, ...]],
    apart: dict[int, str],
    *,
    now: datetime,
    sqlite: bool,
) -> dict[int, int | None]:
    """Store the events of ``apart`` under the ids it gives (:func:`_kept_apart`), a public
    key's event holding a trusted one's id moved aside first (kept as it is otherwise);
    returns the stored ones' log positions by index."""
    table = cast(Table, Event.__table__)
    for index, event_id in apart.items():
        if rows[index][0] == event_id:  # a trusted event taking its id back
            db.execute(
                update(table)
                .where(table.c.event_id == event_id, table.c.source.in_(PUBLIC_SOURCES))
                .values(event_id=public_claim_id(event_id))
            )
    renamed = [(event_id, *rows[index][1:]) for index, event_id in apart.items()]
    inserted = _insert(cursor, renamed, received_at=now, sqlite=sqlite)
    return {i: inserted[event_id] for i, event_id in apart.items() if event_id in inserted}


class GroupCommit:
    """Single events that arrive together are stored in one transaction.

    Each caller queues its event; whoever finds no flush running becomes the leader, takes
    everything queued (its own event included), stores it with ``ingest_events`` in its own
    session and wakes the others with their outcomes. A caller leads at most one flush, so
    nobody's answer waits on an unbounded stream. Under load this turns many short turns at
    SQLite's write lock (and many commits) into a few, which is what keeps the latency of
    single events flat; alone, an event is written at once, as before. Every answer still
    comes after the commit that stored it."""

    def __init__(self, *, compare_duplicates: bool) -> None:
        self.compare_duplicates = compare_duplicates
        self._turn = threading.Condition()
        self._queued: list[_Slot] = []
        self._flushing = False

    def submit(self, db: Session, event: NewEvent) -> Outcome:
        slot = _Slot(event)
        with self._turn:
            self._queued.append(slot)
            while not slot.done and self._flushing:
                self._turn.wait()
            if slot.done:
                return slot.result()
            self._flushing = True
            batch, self._queued = self._queued[:MAX_GROUP], self._queued[MAX_GROUP:]
        try:
            outcomes = ingest_events(
                db, events=[s.event for s in batch], compare_duplicates=self.compare_duplicates
            )
        except BaseException as error:
            for queued in batch:
                queued.failure = error
        else:
            for queued, outcome in zip(batch, outcomes, strict=True):
                queued.outcome = outcome
        finally:
            with self._turn:
                for queued in batch:
                    queued.done = True
                self._flushing = False
                self._turn.notify_all()
        return slot.result()


# At most this many events in one group (one multi-row INSERT).
MAX_GROUP = 500


@dataclass(slots=True)
class _Slot:
    event: NewEvent
    done: bool = False
    outcome: Outcome | None = None
    failure: BaseException | None = None

    def result(self) -> Outcome:
        if self.failure is not None:
            raise self.failure
        assert self.outcome is not None
        return self.outcome


_groups: dict[tuple[str, bool], GroupCommit] = {}

_groups_lock = threading.Lock()


def ingest_grouped(db: Session, *, event: NewEvent, compare_duplicates: bool = True) -> Outcome:
    """Store one tracking event, in the same transaction as others arriving at the same time
    (see :class:`GroupCommit`). Answers after the commit."""
    key = (str(db.get_bind().engine.url), compare_duplicates)
    group = _groups.get(key)
    if group is None:
        with _groups_lock:
            group = _groups.setdefault(key, GroupCommit(compare_duplicates=compare_duplicates))
    return group.submit(db, event)


def ingest_event(db: Session, *, incoming: NewEvent) -> Ingested:
    """Store one tracking event once. A repeated ``event_id`` answers with the stored event;
    raises :class:`InvalidInput` (422) or :class:`Conflict` (409) when it is refused."""
    return _ingested(incoming, ingest_grouped(db, event=incoming))


def ingest_event_now(db: Session, *, incoming: NewEvent) -> Ingested | None:
    """:func:`ingest_event` on the calling thread if it need not wait: on SQLite, when no
    other writer holds the database this instant. ``None``, with nothing done, otherwise (and
    always on PostgreSQL, whose round trips would block the caller).

    For the event loop: a single event written in place answers in about a millisecond,
    where the trip to a worker thread and back costs as much again, mostly in waiting for
    the GIL, and more in the tail. Under contention events go on to the group commit."""
    if db.get_bind().dialect.name != "sqlite":
        return None
    with writer_turn(db, wait=False) as mine:
        if not mine or not begin_write_now(db):
            return None
        outcome = ingest_events(db, events=[incoming])[0]
    return _ingested(incoming, outcome)


def _ingested(incoming: NewEvent, outcome: Outcome) -> Ingested:
    if outcome.refusal is not None:
        refusal = outcome.refusal
        loc = ("body", *refusal.field.split("."))
        error = field_error(loc, refusal.message, refusal.code)
        problem = Conflict if refusal.code == "conflict" else InvalidInput
        raise problem(refusal.message, field=refusal.field, errors=[error])
    return Ingested(
        event_id=incoming["event_id"],
        position=outcome.position,
        duplicate=outcome.status == "duplicate",
    )


_ACCEPTED = Outcome("accepted")

_FUTURE = Refusal(
    "occurred_at",
    "occurred_at is more than 5 minutes in the future; check the sending device's clock",
    "clock_skew",
)

_UNENCODABLE = Refusal(
    "properties",
    "A number is too large to store; integers must fit in 64 bits",
    "number_too_large",
)

_CONFLICT = Refusal(
    "event_id",
    "This event_id was already used for a different event; give each event its own id",
    "conflict",
)


def _suppressed_refusal(field: str) -> Refusal:
    return Refusal(
        field,
        f"{re.split(r'[.?]', field)[-1]} belongs to an erased person;"
        " their events are not accepted",
        "suppressed",
    )


# Digests of recently seen identities. A plain dict of strings: the garbage collector does
# not track its entries (an lru_cache's linked entries would double the cost of every full
# collection). Emptied when full.
_DIGESTS: dict[str, str] = {}

_DIGESTS_MAX = 100_000


def _digest(kind: str, value: str) -> str:
    key = f"{kind}:{value}"
    found = _DIGESTS.get(key)
    if found is None:
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        found = _DIGESTS[key] = identity_digest(kind, value)
    return found


def _identity_digests(event: NewEvent) -> list[tuple[str, str]]:
    """(field, digest) for every identity an event names, for the suppression check."""
    named: list[tuple[str, str]] = []
    if event["user_id"] is not None:
        named.append(("customer_id", _digest("external_id", event["user_id"])))
    if event["anonymous_id"] is not None:
        named.append(("anonymous_id", _digest("anonymous_id", event["anonymous_id"])))
    # Any event's properties (a newsletter signup's email, a form's contact.email; an identify
    # call's traits sit in them) and its whole context (context.traits, the copy an SDK keeps
    # and sends with every track call; context.externalIds, context.user.email, a page's URL
    # with ?email=): an erased person's email or phone anywhere in them, however nested, is
    # refused (``contacts_named``).
    for where, document in (("properties", event["properties"]), ("context", event["context"])):
        named.extend(
            (field, _digest(kind, value)) for field, kind, value in contacts_named(where, document)
        )
    return named


# A key whose text is a phone number wherever it sits (``phone``, ``mobile_phone``,
# ``contact.tel``), compared lower-cased without '_', '-', '.' or spaces.
_PHONE_KEYS = ("phone", "mobile", "tel")


def _contact_kinds(key: str, value: str) -> list[tuple[str, str]]:
    """(kind, text to digest) for each identity a property's text names: its key's
    (:data:`IDENTIFYING_KEYS`), an email address under any key (``reply_to``, a list of
    recipients; as NFKC folds it, so a full-width U+FF20 counts; also
    ``mailto:ann@example.com`` and ``Ann <ann@example.com>, bob@example.com``), a phone under a
    phone's key (``mobile_phone``)."""
    if not value.strip():
        return []
    if key in IDENTIFYING_KEYS:
        return [(key, value)]
    emails = _emails_in(value)
    if emails:
        return [("email", email) for email in emails]
    form = "".join(ch for ch in key.lower() if ch.isalnum())
    if any(form.startswith(part) or form.endswith(part) for part in _PHONE_KEYS):
        return [("phone", value)]
    return []


def _emails_in(value: str) -> list[str]:
    """The email addresses ``value`` is, once folded as identities are (invisible characters
    dropped, NFKC): the whole text, or the addresses of a ``mailto:`` or of ``Name <address>``
    (a list of them too)."""
    if value.isascii() and "@" not in value:
        return []  # the usual text: no folding can make it an address
    folded = normalise_identity("email", value)
    if "@" not in folded:
        return []
    if folded.startswith("mailto:"):  # before the whole: the address pattern is lenient
        folded = folded.removeprefix("mailto:").split("?", 1)[0]
    elif is_email(folded):
        return [value]
    return [address for _, address in getaddresses([folded]) if is_email(address)]


def _query_texts(value: str) -> list[tuple[str, str]]:
    """(name, value) of the query of a URL (``https://…?email=…``) or a query string
    (``?email=…``, a page's ``search``): a text like any other."""
    if not (value.startswith(("?", "http://", "https://")) and "=" in value):
        return []
    query = value[1:] if value.startswith("?") else urlsplit(value).query
    return parse_qsl(query, keep_blank_values=False)


def contacts_named(where: str, document: Any) -> list[tuple[str, str, str]]:
    """(field, kind, value) for each email or phone ``document`` (an event's properties or
    traits) names, at any depth: the one rule the suppression check reads them by. Its size is
    bounded by the body's (``platform.bodies``: its length and nesting); each string is looked
    at once, and only an email or a phone's text is digested."""
    found: list[tuple[str, str, str]] = []
    stack: list[tuple[str, str, Any]] = [(where, "", document)]
    while stack:
        path, key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}", str(k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}", key, v) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, str) and path != where:
            found.extend((path, kind, text) for kind, text in _contact_kinds(key, value))
            stack.extend((f"{path}?{name}", name, text) for name, text in _query_texts(value))
    return found


def _suppression_parameter(digests: set[str], *, sqlite: bool) -> str:
    # One text parameter, not an array: psycopg adapts arrays element by element.
    return orjson.dumps(list(digests)).decode() if sqlite else ",".join(digests)


def _suppressed(cursor: Any, parameter: str, *, sqlite: bool) -> set[str]:
    """The suppressed digests among those in ``parameter``: one query for the whole batch."""
    if sqlite:
        sql = (
            "SELECT digest FROM suppressed_identities"
            " WHERE digest IN (SELECT value FROM json_each(?))"
        )
    else:
        sql = (
            "SELECT digest FROM suppressed_identities WHERE digest = ANY(string_to_array(%s, ','))"
        )
    cursor.execute(sql, (parameter,))
    return {row[0] for row in cursor.fetchall()}


def _row(event: NewEvent, *, sqlite: bool) -> tuple[Any, ...]:
    """An event as insert parameters, JSON encoded by orjson (ten times faster than json)."""
    occurred_at = event["occurred_at"]
    return (
        event["event_id"],
        event["type"],
        event["user_id"],
        event["anonymous_id"],
        event["channel"],
        _sqlite_time(occurred_at) if sqlite else occurred_at,
        orjson.dumps(event["properties"]).decode(),
        orjson.dumps(event["context"]).decode(),
        event["source"],
    )


# Driver-level SQL: SQLAlchemy's per-row parameter processing would cost more than the
# database's own work. SQLite gets one multi-row VALUES. PostgreSQL gets one array per column
# for a few events; a batch is COPYed into a per-connection staging table and moved from there
# (measured: adapting 1,000-element arrays costs psycopg ~80 ms of CPU, COPY ~8 ms).
#
# On PostgreSQL the rows take their log positions in the request's order, then are inserted in
# the order of their event ids: two batches holding the same ids in other orders then wait
# for each other's ids in one order, never each for the other's (a deadlock, which PostgreSQL
# ends by failing one of the two requests).
_PG_POSITION = "nextval(pg_get_serial_sequence('events', 'position'))"

_PG_INSERT = (
    "INSERT INTO events (position, event_id, type, user_id, anonymous_id, channel, occurred_at, "
    "received_at, properties, context, source) "
    "SELECT n, e, t, u, a, c, o, %s, p::jsonb, x::jsonb, s FROM ("
    f"SELECT {_PG_POSITION} AS n, r.* FROM unnest("
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], "
    "%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS r(e, t, u, a, c, o, p, x, s, i) "
    "ORDER BY i) AS numbered ORDER BY e "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, position"
)

_PG_COPY_FROM_ROWS = 20

_PG_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS incoming_events (ordinal int, event_id text, type text, "
    "user_id text, anonymous_id text, channel text, occurred_at timestamptz, properties jsonb, "
    "context jsonb, source text) ON COMMIT DELETE ROWS"
)

_PG_FROM_STAGING = (
    "INSERT INTO events (position, event_id, type, user_id, anonymous_id, channel, occurred_at, "
    "received_at, properties, context, source) "
    "SELECT n, event_id, type, user_id, anonymous_id, channel, occurred_at, %s, properties, "
    f"context, source FROM (SELECT {_PG_POSITION} AS n, * FROM incoming_events "
    "ORDER BY ordinal) AS numbered ORDER BY event_id "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, position"
)


def _pg_insert(cursor: Any, rows: list[tuple[Any, ...]], received_at: datetime) -> None:
    if len(rows) < _PG_COPY_FROM_ROWS:
        columns = [list(column) for column in zip(*rows, strict=True)]
        cursor.execute(_PG_INSERT, (received_at, *columns))
        return
    cursor.execute(_PG_STAGING)
    with cursor.copy("COPY incoming_events FROM STDIN") as copy:
        for ordinal, row in enumerate(rows):  # log positions follow the request's order
            copy.write_row((ordinal, *row))
    cursor.execute(_PG_FROM_STAGING, (received_at,))


@lru_cache(maxsize=64)
def _sqlite_insert(rows: int) -> str:
    values = ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * rows)
    return (
        "INSERT INTO events (event_id, type, user_id, anonymous_id, channel, occurred_at, "
        f"properties, context, source, received_at) VALUES {values}"
    )


# SQLite's INSERT takes at most 32,766 parameters.
_SQLITE_ROWS_PER_INSERT = 1000


def _insert(
    cursor: Any, rows: list[tuple[Any, ...]], *, received_at: datetime, sqlite: bool
) -> dict[str, int | None]:
    """Insert the rows whose ``event_id`` is new; return their ``event_id`` → log position
    (``None`` where SQLite does not say it cheaply: batches of more than one row)."""
    if not sqlite:
        _pg_insert(cursor, rows, received_at)
        return {row[0]: row[1] for row in cursor.fetchall()}
    return _write_sqlite(cursor, _prepare_sqlite(rows, received_at=received_at))


@dataclass(frozen=True, slots=True)
class _SqliteBatch:
    rows: list[tuple[Any, ...]]
    received: tuple[str]
    ids_parameter: str
    # (statement, parameters) per chunk, for when none of the rows is stored yet.
    statements: list[tuple[str, tuple[Any, ...]]]


def _prepare_sqlite(rows: list[tuple[Any, ...]], *, received_at: datetime) -> _SqliteBatch:
    received = (_sqlite_time(received_at),)
    return _SqliteBatch(
        rows=rows,
        received=received,
        ids_parameter=orjson.dumps([row[0] for row in rows]).decode(),
        statements=_sqlite_statements(rows, received),
    )


def _sqlite_statements(
    rows: list[tuple[Any, ...]], received: tuple[str]
) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        (
            _sqlite_insert(len(chunk)),
            tuple(chain.from_iterable(row + received for row in chunk)),
        )
        for chunk in (
            rows[start : start + _SQLITE_ROWS_PER_INSERT]
            for start in range(0, len(rows), _SQLITE_ROWS_PER_INSERT)
        )
    ]


def _write_sqlite(cursor: Any, batch: _SqliteBatch) -> dict[str, int | None]:
    # This transaction has held the database's write lock since its first statement (BEGIN
    # IMMEDIATE), so ids absent now are still absent when inserted. The existing ids come
    # back as one JSON row and the insert returns nothing: Python's sqlite3 gives up and
    # retakes the GIL for every row fetched, which under load stalls the switch interval
    # (5 ms) per row.
    existing = _sqlite_existing(cursor, batch.ids_parameter)
    fresh = batch.rows
    statements = batch.statements
    if existing:
        fresh = [row for row in batch.rows if row[0] not in existing]
        statements = _sqlite_statements(fresh, batch.received)
    positions: dict[str, int | None] = {}
    done = 0
    for statement, parameters in statements:
        cursor.execute(statement, parameters)
        # With the write lock held, one INSERT's rows take consecutive rowids in order.
        chunk = fresh[done : done + _SQLITE_ROWS_PER_INSERT]
        first = cursor.lastrowid - len(chunk) + 1
        positions.update((row[0], first + offset) for offset, row in enumerate(chunk))
        done += len(chunk)
    return positions


def _sqlite_existing(cursor: Any, ids_parameter: str) -> set[str]:
    sql = (
        "SELECT json_group_array(event_id) FROM events"
        " WHERE event_id IN (SELECT value FROM json_each(?))"
    )
    found = cursor.execute(sql, (ids_parameter,)).fetchone()[0]
    return set(orjson.loads(found)) if found else set()


def _sqlite_time(value: datetime) -> str:
    """The text UTCDateTime stores on SQLite ("2026-06-01 12:00:00.000000"), made directly:
    SQLAlchemy's own processor costs more than the rest of the row."""
    if value.tzinfo is not UTC:  # ingestion hands over UTC already; converting costs a third
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _stored(db: Session, event_ids: list[str]) -> dict[str, Any]:
    table = Event.__table__
    query = select(
        table.c.event_id,
        table.c.position,
        table.c.type,
        table.c.user_id,
        table.c.anonymous_id,
        table.c.channel,
        table.c.occurred_at,
        table.c.properties,
        table.c.context,
        table.c.source,
    ).where(table.c.event_id.in_(event_ids))
    return {row.event_id: row for row in db.execute(query)}


def _as_duplicate(event: NewEvent, stored: Any, compare: bool) -> Outcome:
    if compare and not _same_event(event, stored._mapping):
        return Outcome("rejected", refusal=_CONFLICT)
    return Outcome("duplicate", position=stored.position)


_COMPARED = (
    "type",
    "user_id",
    "anonymous_id",
    "channel",
    "occurred_at",
    "properties",
    "context",
)


def _same_event(event: NewEvent, other: Any) -> bool:
    """Whether ``other`` (stored, or earlier in the batch) is ``event`` sent again: its
    coordinates aside, which one of the two may have been stored without (no consent then)."""
    if all(event[name] == other[name] for name in _COMPARED):  # type: ignore[literal-required]
        return True
    if not (has_coordinates(event) or has_coordinates(other)):
        return False
    return all(
        event[name] == other[name]  # type: ignore[literal-required]
        for name in _COMPARED
        if name not in ("properties", "context")
    ) and bare(event["type"], event["properties"], event["context"]) == bare(
        other["type"], other["properties"], other["context"]
    )
