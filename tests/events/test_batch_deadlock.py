"""Batches sharing event ids in other orders, stored at the same time, are all stored: on
PostgreSQL each insert takes the ids in one order (their own), so two never wait for each
other (a deadlock, which PostgreSQL ended by failing one: /v1/batch answered 503). Driven
below the HTTP layer, where two batches' inserts reliably overlap (over HTTP their parsing
spreads them apart; the tester's 2 of 3 runs)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rapport.events import service as events
from rapport.events.models import Event
from rapport.platform.db import open_session

ROUNDS = 4
IDS = 500
WHEN = datetime.now(UTC) - timedelta(minutes=1)


def _viewed(round_: int, number: int) -> events.NewEvent:
    return {
        "event_id": f"r{round_}-m{number}",
        "type": "product_viewed",
        "user_id": f"C-{number % 7}",
        "anonymous_id": None,
        "channel": "web",
        "occurred_at": WHEN,
        "properties": {"n": number},
        "context": {},
        "source": "segment",
    }


def test_batches_sharing_ids_in_other_orders_are_all_stored(backend, committed_url) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: its batches never wait for each other")
    failures: list[BaseException] = []
    for round_ in range(ROUNDS):
        # when two senders store the same ids at once, one in each order
        orders = (range(IDS), range(IDS - 1, -1, -1))
        start = threading.Barrier(len(orders))

        def store(order: range, start: threading.Barrier, round_: int) -> None:
            with open_session(committed_url) as db:
                batch = [_viewed(round_, number) for number in order]
                start.wait()
                try:
                    events.ingest_events(db, events=batch, compare_duplicates=False)
                except BaseException as error:  # reported below
                    failures.append(error)

        threads = [threading.Thread(target=store, args=(o, start, round_)) for o in orders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # then neither fails (no deadlock), and every id is stored once
    assert failures == []
    with open_session(committed_url) as db:
        counted = select(Event.event_id, func.count()).group_by(Event.event_id)
        stored = dict(db.execute(counted).all())
    assert len(stored) == ROUNDS * IDS
    assert set(stored.values()) == {1}


def test_a_batch_takes_its_log_positions_in_the_order_sent(db) -> None:
    # given a batch whose ids sort otherwise than it was sent (over 20 events: the COPY path)
    sent = [_viewed(9, number) for number in range(30, 0, -1)]

    # when it is stored
    outcomes = events.ingest_events(db, events=sent)

    # then its positions follow the order sent, as the log's order of arrival
    positions = [outcome.position for outcome in outcomes]
    stored = db.execute(select(Event.event_id).order_by(Event.position)).scalars().all()
    assert stored == [event["event_id"] for event in sent]
    assert None in positions or positions == sorted(positions)
