"""Single events arriving together share a transaction, and each is still stored exactly once
with its own position, on both databases."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import make_url

from rapport.events import service as events
from rapport.events.models import Event
from rapport.events.service import NewEvent
from rapport.platform.db import open_session, writer_turn

WHEN = datetime.now(UTC) - timedelta(minutes=1)


def tracked(event_id: str, sku: str = "W-1") -> NewEvent:
    return {
        "event_id": event_id,
        "type": "product_viewed",
        "user_id": "C-1",
        "anonymous_id": None,
        "channel": "web",
        "occurred_at": WHEN,
        "properties": {"sku": sku},
        "context": {},
        "source": "api",
    }


def test_concurrent_single_events_are_stored_once_with_their_positions(committed_url) -> None:
    # given 16 senders, each sending 10 events of its own and the same 5 shared ones
    results: dict[str, list[events.Ingested]] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(16)

    def send(sender: int) -> None:
        mine: list[events.Ingested] = []
        with open_session(committed_url) as db:
            start.wait()
            try:
                for number in range(10):
                    mine.append(events.ingest_event(db, incoming=tracked(f"s{sender}-{number}")))
                    if number < 5:
                        mine.append(events.ingest_event(db, incoming=tracked(f"shared-{number}")))
            except BaseException as error:  # reported below
                failures.append(error)
        results[str(sender)] = mine

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then every event is stored once, each answer names the stored position, and each shared
    # event was accepted once and answered as a duplicate 15 times with the same position
    assert failures == []
    with open_session(committed_url) as db:
        stored = {row[0]: row[1] for row in db.execute(select(Event.event_id, Event.position))}
    assert len(stored) == 16 * 10 + 5
    answers = [answer for mine in results.values() for answer in mine]
    assert all(stored[a.event_id] == a.position for a in answers)
    for number in range(5):
        shared = [a for a in answers if a.event_id == f"shared-{number}"]
        assert sorted(a.duplicate for a in shared) == [False] + [True] * 15


def test_a_conflicting_event_in_a_group_is_refused_alone(committed_url) -> None:
    with open_session(committed_url) as db:
        events.ingest_event(db, incoming=tracked("same", sku="A"))
    outcomes = []
    with open_session(committed_url) as db:
        group = events.GroupCommit(compare_duplicates=True)
        outcomes.append(group.submit(db, tracked("same", sku="B")))
        outcomes.append(group.submit(db, tracked("other")))
    assert outcomes[0].status == "rejected"
    assert outcomes[0].refusal is not None
    assert outcomes[0].refusal.code == "conflict"
    assert outcomes[1].status == "accepted"


def _stored_ids(url: str) -> set[str]:
    with open_session(url) as db:
        return set(db.scalars(select(Event.event_id)))


def test_an_event_is_written_in_place_when_nobody_else_is_writing(committed_url) -> None:
    with open_session(committed_url) as db:
        sqlite = db.get_bind().dialect.name == "sqlite"
        ingested = events.ingest_event_now(db, incoming=tracked("now-1"))
    if sqlite:
        # on SQLite, with the write lock free, it is stored and answered at once
        assert ingested is not None
        assert not ingested.duplicate
        assert _stored_ids(committed_url) == {"now-1"}
    else:
        # PostgreSQL's round trips would block the event loop: the caller queues it instead
        assert ingested is None
        assert _stored_ids(committed_url) == set()


def test_an_event_waits_for_nobody_in_place(committed_url) -> None:
    with open_session(committed_url) as probe:
        if probe.get_bind().dialect.name != "sqlite":
            return  # the in-place path is SQLite's alone (see the test above)
    held = threading.Event()
    release = threading.Event()

    def hold_turn() -> None:  # another thread of this process in the middle of a write
        with open_session(committed_url) as other, writer_turn(other):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_turn)
    holder.start()
    held.wait(10)
    with open_session(committed_url) as db:
        assert events.ingest_event_now(db, incoming=tracked("busy-1")) is None
    release.set()
    holder.join(10)

    # another connection holding SQLite's own write lock (a write outside the writer turn)
    with open_session(committed_url) as other:
        other.connection()  # BEGIN IMMEDIATE
        with open_session(committed_url) as db:
            assert events.ingest_event_now(db, incoming=tracked("busy-2")) is None
        other.rollback()

    # another server process taking its turn (they queue on a lock file beside the database)
    database = make_url(committed_url).database
    holder_process = subprocess.Popen(
        [sys.executable, "-c", _HOLD_TURN, f"{database}-writer.lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder_process.stdout is not None
    assert holder_process.stdout.readline().strip() == "held"
    with open_session(committed_url) as db:
        assert events.ingest_event_now(db, incoming=tracked("busy-3")) is None
    holder_process.communicate("\n", timeout=10)

    # nothing was stored by the refused attempts; with the lock free it goes straight in
    assert _stored_ids(committed_url) == set()
    with open_session(committed_url) as db:
        assert events.ingest_event_now(db, incoming=tracked("free-1")) is not None
    assert _stored_ids(committed_url) == {"free-1"}


# Another process: takes the writer turn, says so, holds it until told to stop.
_HOLD_TURN = (
    "import sys\nfrom rapport.platform.db import WriterTurn\n"
    "turn = WriterTurn(sys.argv[1])\nturn.take(wait=True)\n"
    "print('held', flush=True)\nsys.stdin.readline()\nturn.close()\n"
)
