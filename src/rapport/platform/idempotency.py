"""Idempotency keys for commands (IETF draft "The Idempotency-Key HTTP Header Field").

A command sent again with the same key answers the first answer and changes nothing; the same
key with a different body is 422; a retry while the first is still running is 409. The stored
answer is written inside the command's own transaction (through the verb's ``before_commit``
hook), so "answered" and "done" can never disagree.

A running command's claim names its holder (host, process id, a token per process and one per
claim) and holds for a short lease, renewed while the command runs by a thread of the holding
process. A retry may take the key over once the lease has run out, or at once when the holder
is a process of this host that no longer exists (a server that crashed or was killed). Taking
over is safe even when the holder is merely slow: the answer is stored only if the claim is
still the holder's own, in the command's transaction, so a command that lost its claim rolls
back and a retry never applies twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import orjson
from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, Table, delete, exists, literal, select, update
from sqlalchemy.orm import Session

from rapport.platform import budget, clock
from rapport.platform.db import insert_for
from rapport.platform.errors import PROBLEM_TYPE_BASE, Conflict, InvalidInput, Problem
from rapport.platform.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# What a verb runs last in its transaction, with its result, before it commits: the API passes
# the hook that stores the command's answer under its key (see :func:`run_idempotent`).
BeforeCommit = Callable[[Session, Any], None]
# The header as a command endpoint's parameter, documented the same everywhere.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Unique per command; a retry with the same key is answered, not applied",
    ),
]
# The same header in ``openapi_extra``, for the routes that read it themselves.
IDEMPOTENCY_KEY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": True,
    "description": "Unique per command; a retry with the same key is answered, not applied",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
log = logging.getLogger(__name__)

# How long a running command's claim holds without renewal: a retry may take the key over
# this long after its server died (at once when that server was a process of the same host).
LEASE = timedelta(seconds=10)
# How long a failed command may wait for the database to forget its key (a retry is told to
# come back after budget.RETRY_AFTER_SECONDS).
RELEASE_WAIT_S = 2.0
# How often the holding process renews the leases of commands still running.
RENEW_EVERY_S = 3.0
# When a retry of a command still running is told to come back (Retry-After): a command
# usually answers within it, and the retry then gets its answer; a holder that died on another
# host frees the key when its lease ends, a few such retries later.
STILL_RUNNING_RETRY_S = budget.RETRY_AFTER_SECONDS
_HOST = socket.gethostname()[:100]
_PROCESS_TOKEN = secrets.token_hex(4)


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str
    holder: str = ""


def _new_holder() -> str:
    """Who runs a command: this host and process (the pid is read now, not at import, so a
    forked process is itself), with a fresh token for this one claim."""
    return f"{_HOST} {os.getpid()} {_PROCESS_TOKEN} {secrets.token_hex(4)}"


def holder_is_gone(holder: str | None) -> bool:
    """Whether the process named in ``holder`` is known to have ended: it ran on this host and
    no process has its id any more. Other hosts' holders are never known gone (their lease
    decides); a reused process id only means waiting for the lease."""
    if not holder:
        return False
    host, _, rest = holder.partition(" ")
    pid_text = rest.split(" ", 1)[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return f" {_PROCESS_TOKEN} " not in holder  # this pid, but an earlier process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # some process of another user has that id now
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A process that has ended but whose parent has not collected it yet still has its id
    (a killed server's process until its supervisor reaps it). Linux only; elsewhere the
    lease decides."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses.
    return stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"])


class _LeaseRenewer:
    """Renews, every ``RENEW_EVERY_S``, the leases of this process's commands that have run
    that long: a command slower than the lease keeps its key. One daemon thread a process,
    started by the first command that needs it."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, str], tuple[Engine, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, engine: Engine, claimed: Claim) -> None:
        with self._lock:
            self._held[(claimed.scope, claimed.key, claimed.holder)] = (engine, time.monotonic())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="idempotency-leases", daemon=True
                )
                self._thread.start()

    def drop(self, claimed: Claim) -> None:
        with self._lock:
            self._held.pop((claimed.scope, claimed.key, claimed.holder), None)

    def _run(self) -> None:
        while True:
            time.sleep(RENEW_EVERY_S)
            try:
                self.renew()
            except Exception:  # a renewal missed is one lease shorter, nothing worse
                log.warning("renewing idempotency leases failed", exc_info=True)

    def renew(self) -> None:
        started_before = time.monotonic() - RENEW_EVERY_S
        with self._lock:
            due = [(k, e) for k, (e, since) in self._held.items() if since <= started_before]
        for (scope, key, holder), engine in due:
            # Each lease on its own: a database that cannot be reached must not hold back the
            # others' renewals.
            try:
                with engine.begin() as connection:
                    renewed = connection.execute(
                        update(_records)
                        .where(
                            _records.c.scope == scope,
                            _records.c.key == key,
                            _records.c.holder == holder,
                            _records.c.status == "running",
                        )
                        .values(lease_expires_at=clock.now() + LEASE)
                    ).rowcount
            except Exception as error:
                log.warning("renewing the idempotency lease of %s failed", key, exc_info=True)
                if _busy(error):
                    continue  # the database is there, only busy: the next round tries again
                renewed = 0
            if not renewed:
                # No longer this command's (done, released, taken over) or out of reach: stop
                # renewing. Should the command still run, a retry may take its key once the
                # lease ends, and the command then rolls back (ClaimLost): nothing twice.
                self.drop(Claim(scope=scope, key=key, holder=holder))


_renewer = _LeaseRenewer()

# What a database says when it is reachable but another writer holds it just now.
_BUSY = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")


def _busy(error: Exception) -> bool:
    """Whether a renewal failed only because the database was busy (not out of reach)."""
    text = str(error).lower()
    return any(sign in text for sign in _BUSY)


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


_records = cast(Table, IdempotencyRecord.__table__)


# A key whose answer named a person since erased is kept as this digest of itself (the key
# may spell the person out: "signup-ivy@example.com"), so that a retry still finds it.
ERASED_KEY_PREFIX = "erased:"


def erased_key(key: str) -> str:
    """What ``key`` is stored as once the person its answer named is erased."""
    return ERASED_KEY_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def _insert_running(db: Session, *, scope: str, key: str, fingerprint: str, holder: str) -> bool:
    """Insert the key as running, in one statement; False when it is already there, or
    stored as its erased digest."""
    insert = insert_for(db)
    now = clock.now()
    columns = _records.c
    erased = select(columns.key).where(columns.scope == scope, columns.key == erased_key(key))
    values = {
        "scope": scope,
        "key": key,
        "fingerprint": fingerprint,
        "status": "running",
        "created_at": now,
        "holder": holder,
        "lease_expires_at": now + LEASE,
    }
    statement = (
        insert(_records)
        .from_select(
            list(values),
            select(*(literal(value, columns[name].type) for name, value in values.items())).where(
                ~exists(erased)
            ),
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(columns.key)
    )
    return db.execute(statement).first() is not None


class KeyRequired(Problem):
    """A command sent without its Idempotency-Key: the request is incomplete, not its body
    malformed. 400, as every request to fix before sending again (clients read it so)."""

    status, slug, title = 400, "idempotency-key-required", f"{HEADER} header required"


def check_key(key: str | None) -> str:
    """The header's key: 400 ``idempotency-key-required`` when it is missing, 422 when it
    is too long."""
    if key is None or not key.strip():
        raise KeyRequired(
            f"This command needs an {HEADER} header: a unique string (up to 200 characters)"
            " per command, the same on each retry of it",
            field=HEADER,
        )
    if len(key) > 200:
        raise InvalidInput(f"{HEADER} is longer than 200 characters", field=HEADER)
    return key


def claim(db: Session, *, scope: str, key: str | None, fingerprint: str) -> Claim | Replay:
    """Start a command under ``key``, or return the first answer if it already ran (an answer
    that named a person since erased is :class:`AnswerErased`, raised)."""
    key = check_key(key)
    holder = _new_holder()
    for _ in range(3):
        # The usual case, a new key, is one statement and its commit.
        if _insert_running(db, scope=scope, key=key, fingerprint=fingerprint, holder=holder):
            db.commit()
            claimed = Claim(scope=scope, key=key, holder=holder)
            bind = db.get_bind()
            if isinstance(bind, Engine):  # (a test's session on one connection renews nothing)
                _renewer.hold(bind, claimed)
            return claimed
        record = db.execute(
            select(
                _records.c.fingerprint,
                _records.c.status,
                _records.c.response_status,
                _records.c.response_body,
                _records.c.created_at,
                _records.c.holder,
                _records.c.lease_expires_at,
            )
            .where(_records.c.scope == scope, _records.c.key.in_([key, erased_key(key)]))
            .order_by(_records.c.key.startswith(ERASED_KEY_PREFIX).desc())
            .limit(1)
        ).first()
        if record is None:
            continue  # released between our insert and our read
        if record.status == "done" and record.response_status == 410:
            # The person its answer named is erased: whatever is sent under the key now
            # applies nothing and reveals nothing, answered as a problem like every error.
            db.rollback()
            raise AnswerErased(_erased_detail(record.response_body), field=HEADER)
        if record.fingerprint != fingerprint:
            db.rollback()
            raise InvalidInput(
                f"This {HEADER} was used with a different request (another body, or another"
                " resource in the path); use a new key for each request",
                field=HEADER,
            )
        if record.status == "done":
            replay = Replay(status_code=record.response_status or 200, body=record.response_body)
            db.rollback()
            return replay
        expires: datetime = record.lease_expires_at or record.created_at + LEASE
        now = clock.now()
        if expires > now and not holder_is_gone(record.holder):
            db.rollback()
            lease_left = max(1, int((expires - now).total_seconds() + 0.999))
            raise _still_running(min(STILL_RUNNING_RETRY_S, lease_left))
        # The holder is gone or its lease ran out: take the key over, unless it finished or
        # was taken over by someone else in the meantime (then look again).
        db.execute(
            delete(_records).where(
                _records.c.scope == scope,
                _records.c.key == key,
                _records.c.status == "running",
                _records.c.holder.is_(None)
                if record.holder is None
                else _records.c.holder == record.holder,
            )
        )
    db.rollback()
    raise _still_running(1)


class AnswerErased(Problem):
    """A retry under a key whose stored answer named a person since erased: 410, and
    nothing applied or revealed (``Idempotent-Replayed``: it is the key's answer)."""

    status, slug, title = 410, "erased", "Answer erased"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail, field=field, headers={"Idempotent-Replayed": "true"})


ERASED_DETAIL = (
    "This request's answer named a person whose data has since been erased; nothing was"
    " applied again"
)


def _erased_detail(stored: Any) -> str:
    """The detail an erased answer is replayed with: the one stored by the erasure, which
    says why, or this module's own words."""
    detail = stored.get("detail") if isinstance(stored, dict) else None
    return detail if isinstance(detail, str) and detail else ERASED_DETAIL


def _still_running(seconds: int) -> Conflict:
    """The 409 for a retry of a command still running: when to send it again, said alike in
    the detail and ``Retry-After``."""
    return Conflict(
        f"A request with this {HEADER} is still being processed; send it again in "
        f"{seconds} s for its answer",
        field=HEADER,
        headers={"Retry-After": str(seconds)},
    )


def store_answer_sql(*, source: str, body: str) -> str:
    """For a command written as one PostgreSQL statement: a data-modifying CTE body storing
    its answer (``body``, a jsonb expression over ``source``) as done under its key, answering
    the stored ``response_body``. A key already stored breaks the primary key, so the whole
    statement, and everything it did, is refused: the caller then replays through
    :func:`claim`. Parameters: :func:`store_answer_parameters` and ``now``."""
    return (
        f"INSERT INTO {_records.name} (scope, key, fingerprint, status, response_status,"
        " response_body, created_at, completed_at)"
        " SELECT %(answer_scope)s, %(answer_key)s, %(answer_fingerprint)s, 'done',"
        f" %(answer_status)s, {body}, %(now)s, %(now)s FROM {source} RETURNING response_body"
    )


def store_answer_parameters(
    *, scope: str, key: str, request_body: Any, status_code: int
) -> dict[str, Any]:
    return {
        "answer_scope": scope,
        "answer_key": key,
        "answer_fingerprint": request_fingerprint(request_body),
        "answer_status": status_code,
    }


class ClaimLost(Conflict):
    """The command ran past its lease and a retry took its key over: this run rolls back and
    the retry's answer stands."""


def complete(db: Session, claimed: Claim, *, status_code: int, body: Any) -> None:
    """Store the answer, inside the command's transaction (no commit here). Refused (and the
    command with it) when the claim is no longer this command's own."""
    stored = db.execute(
        update(_records)
        .where(
            _records.c.scope == claimed.scope,
            # (an erasure run under a key naming the person has kept it as its digest)
            _records.c.key.in_([claimed.key, erased_key(claimed.key)]),
            _records.c.status == "running",
            _records.c.holder == claimed.holder,
        )
        .values(
            status="done",
            response_status=status_code,
            response_body=body,
            completed_at=clock.now(),
            holder=None,
            lease_expires_at=None,
        )
    )
    _renewer.drop(claimed)
    if stored.rowcount != 1:  # type: ignore[attr-defined]
        raise ClaimLost(
            f"This command ran past its {HEADER} lease and a retry took the key over;"
            " nothing was changed by this request",
            field=HEADER,
        )


def release(db: Session, claimed: Claim) -> None:
    """The command failed and changed nothing: forget the key so a corrected retry can run.
    A command that failed for want of time (its request's deadline passed, the database busy)
    gets a moment more to do so, bounded: a key left behind is free once its lease ends."""
    _renewer.drop(claimed)
    db.rollback()
    with budget.deadline(RELEASE_WAIT_S):
        db.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == claimed.scope,
                IdempotencyRecord.key == claimed.key,
                IdempotencyRecord.status == "running",
                IdempotencyRecord.holder == claimed.holder,
            )
        )
        db.commit()


def stored_keys(db: Session, *, scope: str) -> list[str]:
    return list(db.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.scope == scope)))


def run_idempotent(
    db: Session,
    *,
    scope: str,
    key: str | None,
    request_body: Any,
    status_code: int,
    execute: Callable[[BeforeCommit], Any],
    render: Callable[[Any], Any],
    kept: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """Run a command once per key. ``execute`` receives the hook to pass as the verb's
    ``before_commit``; ``render`` turns the verb's result into the JSON answer. ``kept``, when
    given, turns that answer into the one stored for a retry, for an answer holding what must
    never be stored (a new API key's secret, shown once)."""
    claimed = claim(db, scope=scope, key=key, fingerprint=request_fingerprint(request_body))
    if isinstance(claimed, Replay):
        if claimed.status_code >= 400:
            raise replayed_refusal(claimed)
        return JSONResponse(
            claimed.body, status_code=claimed.status_code, headers={"Idempotent-Replayed": "true"}
        )
    answer: dict[str, Any] = {}

    def store_answer(session: Session, result: Any) -> None:
        answer["body"] = render(result)
        stored = answer["body"] if kept is None else kept(answer["body"])
        complete(session, claimed, status_code=status_code, body=stored)

    try:
        execute(store_answer)
    except Exception as failure:
        try:
            if kept_refusal(failure):
                refuse(db, claimed, cast(Conflict, failure))
            else:
                release(db, claimed)
        except Exception:  # the caller hears why the command failed, not why the key stayed
            db.rollback()
            log.warning("releasing idempotency key %s failed", claimed.key, exc_info=True)
        raise
    return JSONResponse(answer["body"], status_code=status_code)


def kept_refusal(failure: BaseException) -> bool:
    """Whether a command's failure is its answer for good, stored under its key: a ``409``
    the business gave (not enough points, a campaign already launched), not one that asks to
    retry (a ``Retry-After``) nor a lost claim. Any other failure changed nothing and
    releases the key: a request refused as invalid (``422``) is never stored."""
    return (
        isinstance(failure, Conflict)
        and not isinstance(failure, ClaimLost)
        and not (failure.headers and "Retry-After" in failure.headers)
    )


def refuse(db: Session, claimed: Claim, refusal: Conflict) -> None:
    """Store the command's refusal as its key's answer (what it changed rolled back): a retry
    under the key is answered the same refusal, as a retry of an answered command is."""
    db.rollback()
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + refusal.slug,
        "title": refusal.title,
        "detail": refusal.detail,
    }
    if refusal.field is not None:
        body["field"] = refusal.field
    if refusal.errors:
        body["errors"] = refusal.errors
    if refusal.extra:
        body["extra"] = refusal.extra
    with budget.deadline(RELEASE_WAIT_S):
        complete(db, claimed, status_code=refusal.status, body=body)
        db.commit()


def replayed_refusal(replay: Replay) -> Problem:
    """The refusal stored under a key (:func:`refuse`), raised again for a retry of it."""
    body = replay.body
    refusal = Problem(
        body["detail"],
        field=body.get("field"),
        errors=body.get("errors"),
        headers={"Idempotent-Replayed": "true"},
        **body.get("extra", {}),
    )
    refusal.status = replay.status_code
    refusal.slug = str(body["type"]).removeprefix(PROBLEM_TYPE_BASE)
    refusal.title = body["title"]
    return refusal
