"""Idempotency keys after a crash: a key whose command died with its server is free again at
once (same host) or after the documented lease, and a retry still applies exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from rapport.platform import clock, idempotency
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from rapport.platform.models import IdempotencyRecord
from rapport.recommend import service
from rapport.recommend.schemas import RuleIn
from tests.conftest import auth
from tests.orders.factories import CHIANTI, seed_catalog

SCOPE = "recommend.rule:test"
BODY = {"name": "Chianti first", "action": "pin", "sku": CHIANTI, "position": 1}


@pytest.fixture
def session(committed_url: str) -> Iterator[Session]:
    db = open_session(committed_url)
    try:
        seed_catalog(db)  # the product the rule pins: a rule on no product is refused
        db.commit()
        yield db
    finally:
        db.close()


def create_rule_once(db: Session, key: str) -> Any:
    """The command under test: add a merchandising rule, once per key."""
    rule = RuleIn.model_validate(BODY)
    return idempotency.run_idempotent(
        db,
        scope=SCOPE,
        key=key,
        request_body=BODY,
        status_code=201,
        execute=lambda hook: service.create_rule(db, rule=rule, by="test", before_commit=hook),
        render=lambda row: {"id": row.id, "name": row.name},
    )


def rules(db: Session) -> list[str]:
    db.rollback()
    return [r.name for r in service.list_rules(db)]


def claim_row(db: Session, key: str) -> IdempotencyRecord | None:
    db.rollback()
    return db.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == SCOPE, IdempotencyRecord.key == key
        )
    ).first()


CLAIM_AND_HANG = textwrap.dedent(
    """
    import sys, time
    from rapport.platform import idempotency
    from rapport.platform.db import open_session

    url, scope, key, fingerprint = sys.argv[1:5]
    db = open_session(url)
    idempotency.claim(db, scope=scope, key=key, fingerprint=fingerprint)
    print("claimed", flush=True)
    time.sleep(120)  # the command "runs" until the server dies
    """
)


def test_a_key_held_by_a_killed_server_is_free_at_once_and_applies_once(
    committed_url: str, session: Session
) -> None:
    # Given a server process that claimed a key and died mid-command (SIGKILL)
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CLAIM_AND_HANG,
            committed_url,
            SCOPE,
            "crash-1",
            idempotency.request_fingerprint(BODY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "claimed"
        row = claim_row(session, "crash-1")
        assert row is not None
        assert row.status == "running"
        assert row.holder is not None
        assert f" {server.pid} " in row.holder
        os.kill(server.pid, signal.SIGKILL)
        time.sleep(0.2)  # dead, not yet collected by its parent (as under a supervisor)
        # When the client retries with the same key right away
        first = create_rule_once(session, "crash-1")
    finally:
        server.kill()
        server.wait(timeout=10)
    # Then the command runs (the holder is known gone), once
    assert first.status_code == 201
    assert rules(session) == ["Chianti first"]
    # And a further retry is answered, not applied
    again = create_rule_once(session, "crash-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rules(session) == ["Chianti first"]


def test_a_key_held_on_another_host_is_free_after_the_lease(session: Session) -> None:
    # Given a key claimed by a server on another host that then went silent
    now = clock.now()
    clock.set_clock(clock.FrozenClock(now))
    session.execute(
        insert(IdempotencyRecord).values(
            scope=SCOPE,
            key="crash-2",
            fingerprint=idempotency.request_fingerprint(BODY),
            status="running",
            created_at=now,
            holder="another-host 4242 abcd0123 ef456789",
            lease_expires_at=now + idempotency.LEASE,
        )
    )
    session.commit()
    # When the client retries within the lease
    with pytest.raises(Conflict) as waiting:
        create_rule_once(session, "crash-2")
    # Then it is told to come back shortly (the command may well be running still)
    assert waiting.value.headers is not None
    assert waiting.value.headers["Retry-After"] == str(idempotency.STILL_RUNNING_RETRY_S)
    assert rules(session) == []
    # When it retries after the lease (ten seconds, not minutes)
    clock.set_clock(clock.FrozenClock(now + idempotency.LEASE + timedelta(seconds=1)))
    retried = create_rule_once(session, "crash-2")
    # Then the command runs once
    assert retried.status_code == 201
    assert rules(session) == ["Chianti first"]
    assert create_rule_once(session, "crash-2").headers["Idempotent-Replayed"] == "true"
    assert rules(session) == ["Chianti first"]


def test_a_slow_command_that_lost_its_key_rolls_back(committed_url: str, session: Session) -> None:
    # Given a command that claimed a key and then stalled past its lease (alive, not renewed)
    slow = open_session(committed_url)
    try:
        fingerprint = idempotency.request_fingerprint(BODY)
        claimed = idempotency.claim(slow, scope=SCOPE, key="slow-1", fingerprint=fingerprint)
        assert isinstance(claimed, idempotency.Claim)
        later = clock.now() + idempotency.LEASE + timedelta(seconds=1)
        clock.set_clock(clock.FrozenClock(later))
        # When a retry takes the key over and runs the command
        assert create_rule_once(session, "slow-1").status_code == 201
        # And the stalled command then finishes
        with pytest.raises(idempotency.ClaimLost):
            service.create_rule(
                slow,
                rule=RuleIn.model_validate(BODY),
                by="slow",
                before_commit=lambda db, row: idempotency.complete(
                    db, claimed, status_code=201, body={"id": row.id}
                ),
            )
        slow.rollback()
    finally:
        slow.close()
    # Then the command was applied exactly once, by the retry
    assert rules(session) == ["Chianti first"]
    row = claim_row(session, "slow-1")
    assert row is not None
    assert row.status == "done"


def test_a_running_command_keeps_its_key_by_renewing_the_lease(
    committed_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given short leases, renewed often, and a command that runs longer than one lease (held
    # by a renewer of its own: the process's one may be busy with earlier tests' databases)
    monkeypatch.setattr(idempotency, "LEASE", timedelta(seconds=1))
    monkeypatch.setattr(idempotency, "RENEW_EVERY_S", 0.2)
    monkeypatch.setattr(idempotency, "_renewer", idempotency._LeaseRenewer())
    running = open_session(committed_url)
    try:
        fingerprint = idempotency.request_fingerprint(BODY)
        claimed = idempotency.claim(running, scope=SCOPE, key="long-1", fingerprint=fingerprint)
        assert isinstance(claimed, idempotency.Claim)
        first = claim_row(session, "long-1")
        assert first is not None
        assert first.lease_expires_at is not None
        first_expiry = first.lease_expires_at
        # When more than a lease has passed while it runs (the renewer is one thread a
        # process: on a loaded machine it may first wait out another database's busy timeout)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            row = claim_row(session, "long-1")
            assert row is not None
            assert row.lease_expires_at is not None
            renewed = clock.as_utc(row.lease_expires_at) > clock.as_utc(first_expiry) + timedelta(
                seconds=1
            )
            # The poll ends its read before waiting: on SQLite an open transaction would keep
            # the renewer's write waiting behind it.
            session.rollback()
            if renewed:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the lease was not renewed")
        # Then a retry is still told to wait: the key is the running command's
        with pytest.raises(Conflict):
            create_rule_once(session, "long-1")
        idempotency.release(running, claimed)
    finally:
        running.close()
    assert rules(session) == []


def test_a_database_out_of_reach_holds_back_no_other_lease(
    committed_url: str, session: Session, tmp_path: Any
) -> None:
    # Given a running command's claim, and before it in the renewer's list a claim on a
    # database that cannot be reached any more (a server gone, a database dropped)
    running = open_session(committed_url)
    try:
        fingerprint = idempotency.request_fingerprint(BODY)
        claimed = idempotency.claim(running, scope=SCOPE, key="reach-1", fingerprint=fingerprint)
        assert isinstance(claimed, idempotency.Claim)
        idempotency._renewer.drop(claimed)  # renewed below, by a renewer of the test's own
        before = claim_row(session, "reach-1")
        assert before is not None
        assert before.lease_expires_at is not None
        expired_at_first = clock.as_utc(before.lease_expires_at)
        session.rollback()  # the renewer writes below, on this thread
        gone = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'gone.db'}")
        lost = idempotency.Claim(scope=SCOPE, key="lost-1", holder="elsewhere")
        renewer = idempotency._LeaseRenewer()
        started = time.monotonic() - 60  # both have run longer than a renewal period
        renewer._held[(lost.scope, lost.key, lost.holder)] = (gone, started)
        renewer._held[(claimed.scope, claimed.key, claimed.holder)] = (running.get_bind(), started)  # type: ignore[assignment]
        # When the leases are renewed, later than the claim
        clock.set_clock(clock.FrozenClock(clock.now() + timedelta(minutes=5)))
        renewer.renew()
        clock.reset_clock()
        # Then the running command's lease is longer, and the claim out of reach is let go
        after = claim_row(session, "reach-1")
        assert after is not None
        assert after.lease_expires_at is not None
        assert clock.as_utc(after.lease_expires_at) > expired_at_first
        assert list(renewer._held) == [(claimed.scope, claimed.key, claimed.holder)]
        session.rollback()
        idempotency.release(running, claimed)
    finally:
        running.close()


def test_a_retry_while_the_command_runs_is_told_to_come_back_in_seconds(client, db) -> None:
    # given a rule command still running under its key in this process (its lease 10 s)
    seed_catalog(db)
    issued = platform.create_api_key(db, name="shop", scopes=[platform.Scope.WRITE])
    body = RuleIn.model_validate(BODY).model_dump(mode="json")
    now = clock.now()
    db.execute(
        insert(IdempotencyRecord).values(
            scope=f"recommend.rule:{issued.key.id}",
            key="running-1",
            fingerprint=idempotency.request_fingerprint(body),
            status="running",
            created_at=now,
            holder=idempotency._new_holder(),
            lease_expires_at=now + idempotency.LEASE,
        )
    )
    db.commit()

    # when the shop's client sends it again with the same key
    response = client.post(
        "/v1/recommendations/rules",
        json=BODY,
        headers={**auth(issued.secret), "Idempotency-Key": "running-1"},
    )

    # then it is told to send it again in two seconds, the header and the words alike, not
    # at the end of the ten-second lease: the command is most likely answered by then
    assert response.status_code == 409
    assert response.headers["Retry-After"] == "2"
    problem = response.json()
    assert problem["field"] == "Idempotency-Key"
    assert "send it again in 2 s" in problem["detail"]
    assert service.list_rules(db) == []
