"""One message per delivery when the worker dies mid-send: a worker killed -9 while the SMTP
server holds its answer, then another worker after the claim's lease, delivers every message
exactly once (nothing resent, nothing lost)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import LEASE, claim_due, dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.receivers import SmtpSink

WORKER = """
from rapport.domains import load_models
load_models()
from rapport.campaigns.delivery import sending
sending.SMTP_CONNECTIONS = 2  # groups of two messages: (1, 2), (3, 4), ...
sending.dispatch_due(limit=100, worker="doomed")
"""


def _queue(url: str, count: int) -> tuple[int, list[str]]:
    with open_session(url) as db:
        people = [make_customer(db, email=f"crash{n}@example.org") for n in range(count)]
        campaign = make_campaign(db)
        queue_deliveries(
            db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people]
        )
        db.commit()
        return campaign.id, people


def _statuses(url: str, campaign_id: int) -> Counter[str]:
    with open_session(url) as db:
        return Counter(
            db.scalars(select(Delivery.status).where(Delivery.campaign_id == campaign_id))
        )


def test_a_worker_killed_mid_send_then_restarted_sends_each_message_once(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    campaign_id, _ = _queue(committed_url, 8)
    # The server keeps the 4th message (the second group's last) but holds its answer: the
    # worker has written both terminators of that group and waits for the replies.
    smtp_sink.hold_after = 4
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, "RAPPORT_DATABASE_URL": committed_url},
    )
    try:
        assert smtp_sink.holding.wait(30), "the worker never reached the fourth message"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    smtp_sink.release.set()
    # Sent: the first group, acknowledged, and the second (3 and 4: marked before their
    # terminators, which both left before the worker waited for the held answer); the rest
    # are still claimed by the dead worker, never sent.
    assert _statuses(committed_url, campaign_id) == Counter({"sent": 4, "sending": 4})
    deadline = time.monotonic() + 5  # the other connection's message may still be arriving
    while len(smtp_sink.messages) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(smtp_sink.messages) == 4

    clock.set_clock(frozen := FrozenClock(clock.now()))
    with open_session(committed_url) as db:
        assert dispatch_batch(db, worker="heir") == 0  # the dead worker's claim still holds
        frozen.advance(LEASE + timedelta(seconds=1))
        assert dispatch_batch(db, worker="heir") == 4

    received = Counter(m.to for m in smtp_sink.messages)
    assert len(received) == 8
    assert set(received.values()) == {1}
    assert _statuses(committed_url, campaign_id) == Counter({"sent": 8})


def test_rows_left_sending_by_a_dead_worker_are_sent_once_after_the_lease(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    clock.set_clock(frozen := FrozenClock(clock.now()))
    campaign_id, _ = _queue(committed_url, 4)
    with open_session(committed_url) as db:
        # A worker claimed the rows and died before sending anything.
        assert len(claim_due(db, limit=10, worker="dead", now=clock.now())) == 4
        frozen.advance(LEASE + timedelta(seconds=1))
        assert dispatch_batch(db, worker="heir") == 4
        assert dispatch_batch(db, worker="heir") == 0
    assert sorted(m.to for m in smtp_sink.messages) == sorted(
        f"crash{n}@example.org" for n in range(4)
    )
    assert _statuses(committed_url, campaign_id) == Counter({"sent": 4})
