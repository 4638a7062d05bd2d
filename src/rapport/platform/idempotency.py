"""Idempotency keys for commands (IETF draft "The Idempotency-Key HTTP Header Field").

A command sent again with the same key answers the first answer and changes nothing; the same
key with a different body is 422; a retry while the first is still running is 409. The stored
answer is written inside the command's own transaction (through the verb's ``before_commit``
hook), so "answered" and "done" can never disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, cast

import orjson
from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, MalformedBody
from rapport.platform.models import IdempotencyRecord

HEADER = "Idempotency-Key"
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
# A key still 'running' after this long belongs to a command whose transaction never
# committed (the answer is stored in that same transaction), so it may run again.
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


@dataclass(frozen=True)
class Claim:
    scope: str
    key: str


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


_records = cast(Table, IdempotencyRecord.__table__)


def _insert_running(db: Session, *, scope: str, key: str, fingerprint: str) -> bool:
    """Insert the key as running, in one statement; False when it is already there."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(_records)
        .values(
            scope=scope, key=key, fingerprint=fingerprint, status="running", created_at=clock.now()
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(_records.c.key)
    )
    return db.execute(statement).first() is not None


def check_key(key: str | None) -> str:
    """The header's key: 400 when it is missing, 422 when it is too long."""
    if key is None or not key.strip():
        raise MalformedBody(f"This command needs an {HEADER} header", field=HEADER)
    if len(key) > 200:
        raise InvalidInput(f"{HEADER} is longer than 200 characters", field=HEADER)
    return key


def claim(db: Session, *, scope: str, key: str | None, fingerprint: str) -> Claim | Replay:
    """Start a command under ``key``, or return the first answer if it already ran."""
    key = check_key(key)
    for _ in range(2):
        # The usual case, a new key, is one statement and its commit.
        if _insert_running(db, scope=scope, key=key, fingerprint=fingerprint):
            db.commit()
            return Claim(scope=scope, key=key)
        record = db.execute(
            select(
                _records.c.fingerprint,
                _records.c.status,
                _records.c.response_status,
                _records.c.response_body,
                _records.c.created_at,
            ).where(_records.c.scope == scope, _records.c.key == key)
        ).first()
        if record is None:
            continue  # released between our insert and our read
        if record.fingerprint != fingerprint:
            db.rollback()
            raise InvalidInput(
                f"This {HEADER} was used with a different request body; use a new key",
                field=HEADER,
            )
        if record.status == "done":
            replay = Replay(status_code=record.response_status or 200, body=record.response_body)
            db.rollback()
            return replay
        if clock.now() - record.created_at < ABANDONED_AFTER:
            db.rollback()
            raise Conflict(
                f"A request with this {HEADER} is still being processed; retry shortly",
                field=HEADER,
            )
        db.execute(delete(_records).where(_records.c.scope == scope, _records.c.key == key))
    raise Conflict(f"A request with this {HEADER} is still being processed", field=HEADER)


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


def complete(db: Session, claimed: Claim, *, status_code: int, body: Any) -> None:
    """Store the answer, inside the command's transaction (no commit here)."""
    db.execute(
        update(_records)
        .where(_records.c.scope == claimed.scope, _records.c.key == claimed.key)
        .values(
            status="done",
            response_status=status_code,
            response_body=body,
            completed_at=clock.now(),
        )
    )


def release(db: Session, claimed: Claim) -> None:
    """The command failed and changed nothing: forget the key so a corrected retry can run."""
    db.rollback()
    db.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.scope == claimed.scope,
            IdempotencyRecord.key == claimed.key,
            IdempotencyRecord.status == "running",
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
    execute: Callable[[Callable[[Session, Any], None]], Any],
    render: Callable[[Any], Any],
) -> JSONResponse:
    """Run a command once per key. ``execute`` receives the hook to pass as the verb's
    ``before_commit``; ``render`` turns the verb's result into the JSON answer."""
    claimed = claim(db, scope=scope, key=key, fingerprint=request_fingerprint(request_body))
    if isinstance(claimed, Replay):
        return JSONResponse(
            claimed.body, status_code=claimed.status_code, headers={"Idempotent-Replayed": "true"}
        )
    answer: dict[str, Any] = {}

    def store_answer(session: Session, result: Any) -> None:
        answer["body"] = render(result)
        complete(session, claimed, status_code=status_code, body=answer["body"])

    try:
        execute(store_answer)
    except Exception:
        release(db, claimed)
        raise
    return JSONResponse(answer["body"], status_code=status_code)
