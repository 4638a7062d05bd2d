"""SQLite's writers take turns first come, first served, and bulk writers (event batches, the
event processors) never stand more than one deep in front of a command.

Each ``WriterTurn`` opens the lock file for itself, as another process or another pooled
connection does, so these tests see exactly what separate processes would."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from rapport.main import create_app
from rapport.platform import budget, idempotency
from rapport.platform import service as platform
from rapport.platform.db import (
    WriterTurn,
    create_db_engine,
    open_session,
    writer_turn,
    writers_waiting,
)
from rapport.platform.settings import Settings
from tests.conftest import auth, command


@pytest.fixture(autouse=True)
def _plain_thread() -> Iterator[None]:
    """The session's Playwright browser leaves an event loop marked running in the main thread,
    and a writer on an event loop's thread skips the queue by design (it must not block its
    loop); these tests take turns as a plain server thread does."""
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    yield
    asyncio._set_running_loop(loop)


def _tickets_taken(lock_file: Path, *, bulk: bool = False) -> int:
    """How many tickets the queue has handed out (the counter kept in the lock file)."""
    stored = lock_file.read_bytes()[8:16] if bulk else lock_file.read_bytes()[:8]
    return int.from_bytes(stored, "little") if len(stored) == 8 else 0


def _queue_up(
    lock_file: Path, name: str, served: list[str], *, bulk: bool = False
) -> threading.Thread:
    """A writer in a thread of its own that waits for its turn, notes it, and leaves. Returns
    once it has its ticket, so that writers queue in the order this is called."""
    taken = _tickets_taken(lock_file, bulk=bulk)

    def write() -> None:
        turn = WriterTurn(str(lock_file))
        turn.take(wait=True, bulk=bulk)
        served.append(name)
        turn.close()

    writer = threading.Thread(target=write, name=name)
    writer.start()
    deadline = time.monotonic() + 30
    while _tickets_taken(lock_file, bulk=bulk) == taken:
        assert time.monotonic() < deadline, f"{name} never queued"
        time.sleep(0.005)
    return writer


def _in_thread(work: Callable[[], None]) -> None:
    runner = threading.Thread(target=work)
    runner.start()
    runner.join(30)


def test_writers_are_served_in_the_order_they_asked(tmp_path: Path) -> None:
    # given a writer holding the turn, and four more queueing behind it one after the other
    lock_file = tmp_path / "shop.db-writer.lock"
    holder = WriterTurn(str(lock_file))
    assert holder.take(wait=True)
    served: list[str] = []
    waiting = [_queue_up(lock_file, f"writer-{number}", served) for number in range(4)]

    # when the holder commits
    time.sleep(0.05)
    assert served == []  # nobody went past the holder
    holder.close()
    for writer in waiting:
        writer.join(30)

    # then they are served first come, first served (not whoever polls at the right moment)
    assert served == ["writer-0", "writer-1", "writer-2", "writer-3"]


def test_a_command_goes_before_bulk_writers_queued_earlier(tmp_path: Path) -> None:
    # given an event batch holding the turn, two more batches queued, then a ledger command
    lock_file = tmp_path / "shop.db-writer.lock"
    batch = WriterTurn(str(lock_file))
    assert batch.take(wait=True, bulk=True)
    served: list[str] = []
    batches = [_queue_up(lock_file, f"batch-{n}", served, bulk=True) for n in range(2)]
    command = _queue_up(lock_file, "command", served)

    # when the batch commits
    batch.close()
    for writer in [*batches, command]:
        writer.join(30)

    # then the command is next: bulk writers queue among themselves first, so at most one of
    # them is ever ahead of a command
    assert served == ["command", "batch-0", "batch-1"]


def test_a_try_never_jumps_the_queue(tmp_path: Path) -> None:
    # given a writer holding the turn and another one waiting
    lock_file = tmp_path / "shop.db-writer.lock"
    holder = WriterTurn(str(lock_file))
    assert holder.take(wait=True)
    served: list[str] = []
    waiting = _queue_up(lock_file, "waiting", served)

    # when a third asks without waiting (from a thread holding no turn), before and after
    # the holder is done
    eager = WriterTurn(str(lock_file))
    answers: list[bool] = []

    def try_now() -> None:
        answers.append(eager.take(wait=False))

    _in_thread(try_now)
    refused_while_held = answers.pop()
    holder.close()
    waiting.join(30)
    _in_thread(try_now)
    granted_when_free = answers.pop()
    eager.close()

    # then it gets the turn only once nobody holds or awaits it
    assert refused_while_held is False
    assert served == ["waiting"]
    assert granted_when_free is True


def test_a_request_waits_for_its_turn_no_longer_than_its_budget(tmp_path: Path) -> None:
    # given a writer that keeps the turn (a paused import, a stuck process)
    lock_file = tmp_path / "shop.db-writer.lock"
    stuck = WriterTurn(str(lock_file))
    assert stuck.take(wait=True)
    outcome: list[object] = []

    # when a request's writer queues behind it with a quarter of a second left of its budget
    def request() -> None:
        turn = WriterTurn(str(lock_file))
        started = time.monotonic()
        try:
            with budget.deadline(0.25):
                turn.take(wait=True)
        except budget.OutOfTime as refused:
            outcome.extend([refused, time.monotonic() - started, turn.held])
        turn.close()

    try:
        _in_thread(request)

        # then it gives up at its deadline with a 503 to retry, holding nothing
        refused, waited, held = outcome
        assert isinstance(refused, budget.OutOfTime)
        assert refused.status == 503
        assert refused.headers == {"Retry-After": str(budget.RETRY_AFTER_SECONDS)}
        assert 0.2 <= waited < 2.0  # type: ignore[operator]
        assert held is False
        # and it left the queue: a writer asking after it is not held up by its ticket (only
        # by SQLite's own lock, which the stuck writer's transaction would hold)
        served: list[str] = []
        _queue_up(lock_file, "next", served).join(30)
        assert served == ["next"]
    finally:
        stuck.close()


def _half_a_second_each(
    backend: str, settings: Settings, url: str, name: str, scopes: list[str]
) -> tuple[FastAPI, str]:
    """A server on the test database whose requests have half a second each, and a key."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL has no database-wide write lock for a writer to keep")
    app = create_app(settings.model_copy(update={"request_timeout_seconds": 0.5}), run_worker=False)
    with open_session(url) as db:
        granted = [platform.Scope(scope) for scope in scopes]
        key = platform.create_api_key(db, name=name, scopes=granted).secret
    return app, key


def test_points_sent_behind_a_stuck_writer_answer_503_in_time_and_apply_once_later(
    committed_url: str, backend: str, settings: Settings
) -> None:
    # given a server whose requests have half a second each, a member, and a till's key
    app, key = _half_a_second_each(backend, settings, committed_url, "till", ["write"])
    till = {**auth(key), "Idempotency-Key": "till-7-receipt-1"}
    earn = {"points": 5, "reason": "receipt 1"}
    with TestClient(app, raise_server_exceptions=False) as client:
        member = client.post("/v1/customers", json={"external_id": "M-1"}, headers=command(key))
        assert member.status_code == 201, member.text
        path = f"/v1/loyalty/members/{member.json()['customer_id']}/earn"

        # when the points are sent while another writer keeps the database (a paused import)
        stuck = open_session(committed_url)
        answers: list[Any] = []
        try:
            stuck.execute(text("SELECT 1"))  # begins writing: holds the turn and the lock
            started = time.monotonic()
            _in_thread(lambda: answers.append(client.post(path, json=earn, headers=till)))
            waited = time.monotonic() - started
        finally:
            stuck.rollback()
            stuck.close()

        # then the till hears 503 with when to retry once its half second is spent (and the
        # moment the key's release may take), not once the writer is done
        (refused,) = answers
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == str(budget.RETRY_AFTER_SECONDS)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert waited < 0.5 + idempotency.RELEASE_WAIT_S + 1.5
        # and its retry with the same key, once the writer is gone, applies the points once
        retried = client.post(path, json=earn, headers=till)
        again = client.post(path, json=earn, headers=till)
        assert (retried.status_code, again.status_code) == (201, 201)
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json()["balance"] == retried.json()["balance"] == 5


def test_a_long_transaction_sees_that_a_command_is_waiting(tmp_path: Path) -> None:
    # given a bulk transaction in a SQLite database (an event processor's batch)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    bulk = Session(engine)
    with writer_turn(bulk, bulk=True):
        bulk.execute(text("INSERT INTO t VALUES (1)"))
        alone = writers_waiting(bulk)

        # when a command starts writing in another thread
        def command() -> None:
            with Session(engine) as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
                session.commit()

        commanding = threading.Thread(target=command)
        commanding.start()
        deadline = time.monotonic() + 30
        while not writers_waiting(bulk):
            assert time.monotonic() < deadline, "the waiting command was never seen"
            time.sleep(0.005)

        # then the bulk transaction can tell, and once it commits the command goes through
        bulk.commit()
    commanding.join(30)
    assert alone is False
    assert sorted(bulk.execute(text("SELECT n FROM t")).scalars()) == [1, 2]
    bulk.close()
    engine.dispose()


def test_reads_are_answered_while_another_writer_keeps_the_database(
    committed_url: str, backend: str, settings: Settings
) -> None:
    # given a server whose requests have half a second each, a customer, and a shop's key
    app, key = _half_a_second_each(backend, settings, committed_url, "shop", ["read", "write"])
    with TestClient(app, raise_server_exceptions=False) as client:
        made = client.post("/v1/customers", json={"external_id": "C-1"}, headers=command(key))
        assert made.status_code == 201, made.text
        profile = f"/v1/customers/{made.json()['customer_id']}"

        # when the profile is read while another writer keeps the database (a paused import)
        stuck = open_session(committed_url)
        try:
            stuck.execute(text("SELECT 1"))  # begins writing: holds the turn and the lock
            started = time.monotonic()
            read = client.get(profile, headers=auth(key))
            waited = time.monotonic() - started
            # and a customer is created meanwhile
            write = client.post("/v1/customers", json={"external_id": "C-2"}, headers=command(key))
        finally:
            stuck.rollback()
            stuck.close()

        # then the read is answered from the last commit at once, not refused at its deadline
        assert read.status_code == 200, read.text
        assert read.json()["customer_id"] == made.json()["customer_id"]
        assert waited < 0.4
        # while the write still waits its turn, and is refused with when to retry
        assert write.status_code == 503, write.text
        # and the reading request's connection, back in the pool, writes again
        again = client.post("/v1/customers", json={"external_id": "C-2"}, headers=command(key))
        assert again.status_code == 201, again.text
