"""Erasure while the processors run: a person tracked by a Segment batch, identified over the
API and erased at once, while a worker thread (its own sessions) runs the event processors.
Every erasure answers 200 (no deadlock or serialization failure reaches the caller), no
processor batch fails, and afterwards nothing of the person is anywhere in the database."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.customers.processor import process_profile_events
from rapport.domains import load_tasks
from rapport.events.log import events_after
from rapport.events.processors import (
    processor_lag,
    registered_processors,
    run_batch,
    run_processors,
)
from rapport.flows import privacy
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import app_committing_to, auth, command
from tests.customers.factories import track
from tests.events.factories import basic_auth
from tests.flows.test_privacy import dump_database

PEOPLE = 10

load_tasks()  # the processors register themselves with their domains' jobs


def person(index: int) -> dict[str, str]:
    """Values found nowhere else, so a dump holding one is a leak."""
    return {
        "user_id": f"CRM-RACE-{index:03d}-77",
        "anonymous_id": f"anon-race-{index:03d}-5521",
        "email": f"quintessa.racewell{index:03d}@example.org",
        "phone": f"+44 20 7946 {index:04d}",
        "phone_stored": f"+44207946{index:04d}",
        "first_name": f"Quintessa{index:03d}",
        "last_name": f"Racewell{index:03d}",
    }


def segment_batch(index: int, values: dict[str, str]) -> dict[str, Any]:
    """What a browser's Segment SDK sends: identify with traits, a page, a track."""
    at = (clock.now() - timedelta(seconds=5)).isoformat()
    common = {"userId": values["user_id"], "anonymousId": values["anonymous_id"], "timestamp": at}
    return {
        "batch": [
            {
                **common,
                "type": "identify",
                "messageId": f"race-{index}-identify",
                "traits": {
                    "email": values["email"],
                    "phone": values["phone"],
                    "firstName": values["first_name"],
                    "lastName": values["last_name"],
                },
            },
            {
                **common,
                "type": "page",
                "messageId": f"race-{index}-page",
                "name": "Account",
                "properties": {"url": f"https://shop.example/account?email={values['email']}"},
            },
            {
                **common,
                "type": "track",
                "messageId": f"race-{index}-track",
                "event": "Product Viewed",
                "properties": {"sku": "SKU-1", "name": f"{values['first_name']} wishlist"},
            },
        ]
    }


class Worker:
    """The event processors in a loop on their own thread and sessions, as `rapport worker`
    runs them; every exception a batch raised is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if run_processors(database_url=self.url, max_batches=5) == 0:
                    time.sleep(0.005)
            except Exception as error:  # a failed batch: what the worker would log
                self.errors.append(error)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=60)


@pytest.fixture
def client(committed_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    application = app_committing_to(
        committed_url, tmp_path, secret_key="privacy-race-secret-for-tests"
    )
    with open_session(committed_url) as db:
        secret = platform.create_api_key(db, name="race", scopes=[platform.Scope.ADMIN]).secret
    with TestClient(application, raise_server_exceptions=False) as test_client:
        yield test_client, secret


def test_erasures_racing_the_processors_all_succeed_and_leave_nothing(
    client: tuple[TestClient, str], committed_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    http, secret = client
    headers = auth(secret)
    segment = basic_auth(secret)
    answers: list[int] = []
    erased: list[str] = []
    # given a worker running the processors on its own sessions
    with caplog.at_level(logging.ERROR), Worker(committed_url) as worker:
        for index in range(PEOPLE):
            values = person(index)
            # when a browser's batch arrives, the person is identified over the API ...
            batch = http.post("/v1/batch", json=segment_batch(index, values), headers=segment)
            assert batch.status_code == 200, batch.text
            identified = http.post(
                "/v1/customers/identify",
                json={
                    "identities": {"email": values["email"], "external_id": values["user_id"]},
                    "first_name": values["first_name"],
                    "last_name": values["last_name"],
                },
                headers=command(headers),
            )
            assert identified.status_code == 200, identified.text
            cid = identified.json()["customer_id"]
            # ... and erased at once, while the worker may be processing their batch
            erasure = http.post(
                f"/v1/customers/{cid}/erase", json={"requested_by": "dpo"}, headers=command(headers)
            )
            answers.append(erasure.status_code)
            assert erasure.status_code < 500, erasure.text
            erased.append(cid)
        # (let the worker catch up with everything while still racing nothing)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not worker.errors:
            with open_session(committed_url) as db:
                if max(processor_lag(db).values(), default=0) == 0:
                    break
            time.sleep(0.05)

    # then every erasure answered 200 and no processor batch failed
    assert answers == [200] * PEOPLE
    assert worker.errors == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    # and nobody came back: every profile erased, no identity of theirs known
    with open_session(committed_url) as db:
        statuses = dict(db.execute(select(Customer.customer_id, Customer.status)).all())
        assert {statuses[cid] for cid in erased} == {"erased"}
        assert [cid for cid, status in statuses.items() if status == "active"] == []
        for index in range(PEOPLE):
            values = person(index)
            for kind in ("email", "external_id", "anonymous_id"):
                key = {"external_id": "user_id"}.get(kind, kind)
                assert customers.find_customer(db, kind=kind, value=values[key]) is None
    # and a dump of the whole database holds none of their values
    dump = dump_database(committed_url)
    leaks = [value for index in range(PEOPLE) for value in person(index).values() if value in dump]
    assert leaks == []


# --- one batch held mid-way while an erasure runs (PostgreSQL row locks) ----------------------

OTHER_EMAIL = "ottoline.elsewhere@example.org"
GONE_EMAIL = "perpetua.midbatch@example.org"
GONE_ID = "CRM-MIDBATCH-4410"


def _queue_two_identifies(url: str) -> tuple[str, str, list[int]]:
    """Two people identified through the API, then two tracked identify events (not yet
    processed): the first names the other person, the second the one to be erased."""
    with open_session(url) as db:
        other = customers.identify_customer(db, identities={"email": OTHER_EMAIL}).customer_id
        gone = customers.identify_customer(
            db, identities={"email": GONE_EMAIL, "external_id": GONE_ID}
        ).customer_id
        first = track(
            db,
            "identified",
            anonymous_id="anon-other-1",
            properties={"traits": {"email": OTHER_EMAIL}},
        )
        second = track(
            db,
            "identified",
            user_id=GONE_ID,
            anonymous_id="anon-midbatch-2",
            properties={"traits": {"email": GONE_EMAIL, "firstName": "Perpetua"}},
        )
        db.commit()
        return other, gone, [first.position, second.position]


def _hold_profile(url: str, customer_id: str) -> Session:
    """Another transaction holding a profile's row, so that a processor batch resolving that
    profile waits mid-way (as it would behind an identify call)."""
    holder = open_session(url)
    holder.execute(
        select(Customer.customer_id).where(Customer.customer_id == customer_id).with_for_update()
    ).all()
    return holder


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # kept for the test to show
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _assert_gone(url: str, gone: str, other: str) -> None:
    with open_session(url) as db:
        assert db.get(Customer, gone).status == "erased"  # type: ignore[union-attr]
        assert db.get(Customer, other).status == "active"  # type: ignore[union-attr]
        assert customers.find_customer(db, kind="email", value=GONE_EMAIL) is None
        assert customers.find_customer(db, kind="anonymous_id", value="anon-midbatch-2") is None
        active = db.scalars(select(Customer).where(Customer.status == "active")).all()
        assert [c.customer_id for c in active] == [other]
    dump = dump_database(url)
    assert [v for v in (GONE_EMAIL, GONE_ID, "Perpetua", "anon-midbatch-2") if v in dump] == []


def test_an_erasure_waits_for_the_processor_batch_running_and_neither_fails(
    committed_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: nothing can interleave")
    other, gone, _ = _queue_two_identifies(committed_url)
    profile = next(p for p in registered_processors() if p.name == "customers.profile")
    holder = _hold_profile(committed_url, other)

    # given a processor batch under way, waiting mid-batch on the first event's profile
    def run_one_batch() -> None:
        with open_session(committed_url) as db:
            run_batch(db, profile)

    batch, batch_errors = _in_thread(run_one_batch)
    time.sleep(0.5)

    # when the person its second event names is erased meanwhile
    def erase() -> None:
        with open_session(committed_url) as db:
            privacy.erase_customer(db, customer_id=gone, requested_by="dpo")

    erasure, erasure_errors = _in_thread(erase)
    erasure.join(timeout=1.5)
    holder.rollback()
    holder.close()
    batch.join(timeout=30)
    erasure.join(timeout=30)

    # then neither failed, and the person is gone with what the batch linked to them
    assert batch_errors == []
    assert erasure_errors == []
    with open_session(committed_url) as db:
        while run_batch(db, profile):
            pass
    _assert_gone(committed_url, gone, other)


def test_a_batch_meeting_an_erasure_committed_mid_batch_forgets_the_event(
    committed_url: str, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: nothing can interleave")
    other, gone, positions = _queue_two_identifies(committed_url)
    holder = _hold_profile(committed_url, other)

    # given the profile processor's handler working through a batch (here without its
    # cursor, so nothing makes the erasure wait), stopped at the first event's profile
    def handle_batch() -> None:
        with open_session(committed_url) as db:
            events = [e for e in events_after(db, position=0, limit=100) if e.position in positions]
            process_profile_events(db, events)
            db.commit()

    batch, batch_errors = _in_thread(handle_batch)
    time.sleep(0.5)
    # when the person its second event names is erased and that commits first
    with open_session(committed_url) as db:
        privacy.erase_customer(db, customer_id=gone, requested_by="dpo")
    holder.rollback()
    holder.close()
    batch.join(timeout=30)

    # then the batch finished without an error: the late event was an erased person's
    assert batch_errors == []
    _assert_gone(committed_url, gone, other)
