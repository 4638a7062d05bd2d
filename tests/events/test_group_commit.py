"""Single events arriving together share a transaction, and each is still stored exactly once
with its own position, on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rapport.events import service as events
from rapport.events.models import Event
from rapport.events.service import NewEvent
from rapport.platform.db import open_session

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
