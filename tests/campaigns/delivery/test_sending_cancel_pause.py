"""Cancel and pause stop a campaign's sending at once, even for deliveries a dispatcher has
already claimed: only a group of messages marked sent before the cancel's (or pause's) commit
may still reach the server; the rest never get their DATA terminated. And one try is one
attempt, a refusal at the end of DATA included."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.campaigns import service as campaigns
from rapport.campaigns.delivery import sending
from rapport.campaigns.delivery.log import delivery_out
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch, dispatch_due
from rapport.campaigns.models import Delivery, DeliveryStatus
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_campaign, make_customer, make_endpoint
from tests.campaigns.receivers import ReceivedMail, SmtpSink, WebhookReceiver

GROUP = 2  # SMTP connections side by side: messages go out two at a time
COUNT = 12


def _queue(url: str, count: int = COUNT) -> int:
    with open_session(url) as db:
        people = [make_customer(db) for _ in range(count)]
        campaign = make_campaign(db, audience_count=count, started_at=clock.now())
        queue_deliveries(
            db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people]
        )
        db.commit()
        return campaign.id


def _rows(url: str, campaign_id: int) -> dict[int, tuple[str, str]]:
    with open_session(url) as db:
        return {
            row.id: (row.status, row.reason)
            for row in db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))
        }


def _delivery_id(mail: ReceivedMail) -> int:
    found = re.search(r"<delivery-(\d+)@", str(mail.message["Message-ID"]))
    assert found is not None
    return int(found.group(1))


def _dispatch_while(url: str, smtp_sink: SmtpSink, verb: str, campaign_id: int) -> float:
    """Run a dispatcher over the whole batch in a thread; once the server took a first message,
    call ``verb`` on the campaign. Returns when the verb returned (monotonic)."""
    worker = threading.Thread(
        target=dispatch_due, kwargs={"limit": 100, "worker": "busy", "database_url": url}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not smtp_sink.messages and time.monotonic() < deadline:
            time.sleep(0.005)
        assert smtp_sink.messages, "the dispatcher sent nothing"
        with open_session(url) as db:
            getattr(campaigns, f"{verb}_campaign")(db, campaign_id=campaign_id)
        returned = time.monotonic()
    finally:
        worker.join(60)
    assert not worker.is_alive()
    return returned


@pytest.fixture
def slow_groups(monkeypatch: pytest.MonkeyPatch, smtp_sink: SmtpSink) -> SmtpSink:
    monkeypatch.setattr(sending, "SMTP_CONNECTIONS", GROUP)
    smtp_sink.delay = 0.2  # each message taken 0.2 s after its terminator
    return smtp_sink


def test_cancel_mid_batch_stops_the_claimed_messages(
    committed_url: str, slow_groups: SmtpSink
) -> None:
    campaign_id = _queue(committed_url)
    cancelled = _dispatch_while(committed_url, slow_groups, "cancel", campaign_id)
    time.sleep(0.5)  # anything still on its way arrives

    rows = _rows(committed_url, campaign_id)
    received = [_delivery_id(m) for m in slow_groups.messages]
    sent = {i for i, (status, _) in rows.items() if status == "sent"}
    # Each message the server took is a delivery marked sent (before the cancel), once.
    assert Counter(received) == Counter(sent)
    # After the cancel returned, at most the group in flight (marked sent before it).
    late = [m for m in slow_groups.messages if m.at > cancelled]
    assert len(late) <= GROUP
    # Everything else, the claimed rows included, is suppressed for the cancel.
    assert len(sent) < COUNT
    assert {rows[i] for i in rows.keys() - sent} == {("suppressed", "campaign cancelled")}
    # Their history ends with the cancel: no mark of the dispatcher's came after it.
    with open_session(committed_url) as db:
        history = db.execute(
            select(DeliveryStatus.delivery_id, DeliveryStatus.status)
            .where(DeliveryStatus.delivery_id.in_(rows.keys() - sent))
            .order_by(DeliveryStatus.id)
        ).all()
    last = {row.delivery_id: row.status for row in history}
    assert set(last.values()) == {"suppressed"}
    assert "sent" not in {status for _, status in history}


def test_pause_mid_batch_holds_the_claimed_messages_and_resume_sends_them_once(
    committed_url: str, slow_groups: SmtpSink
) -> None:
    campaign_id = _queue(committed_url)
    paused = _dispatch_while(committed_url, slow_groups, "pause", campaign_id)
    time.sleep(0.5)

    rows = _rows(committed_url, campaign_id)
    sent = {i for i, (status, _) in rows.items() if status == "sent"}
    assert Counter(_delivery_id(m) for m in slow_groups.messages) == Counter(sent)
    assert len([m for m in slow_groups.messages if m.at > paused]) <= GROUP
    assert len(sent) < COUNT
    # The rest wait (not suppressed), none left claimed.
    assert {rows[i] for i in rows.keys() - sent} == {("deferred", "campaign paused")}

    with open_session(committed_url) as db:
        campaigns.resume_campaign(db, campaign_id=campaign_id)
    # Due at once after the resume, not after the paused recheck.
    assert dispatch_due(limit=100, worker="after", database_url=committed_url) == COUNT - len(sent)
    assert Counter(_delivery_id(m) for m in slow_groups.messages) == Counter(
        set(_rows(committed_url, campaign_id))
    )
    assert set(_rows(committed_url, campaign_id).values()) == {("sent", "")}


def _webhook_campaign(url: str, receiver: WebhookReceiver, count: int) -> int:
    """A webhook campaign to ``receiver`` with ``count`` deliveries queued; its id."""
    with open_session(url) as db:
        endpoint = make_endpoint(db, url=receiver.url)
        people = [make_customer(db, consents={"marketing_push": True}) for _ in range(count)]
        campaign = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id)
        queue_deliveries(
            db, campaign=campaign, recipients=[Recipient(customer_id=p) for p in people]
        )
        db.commit()
        return campaign.id


def _dispatching(url: str) -> threading.Thread:
    """A dispatcher ("busy") sending what is due, started in a thread."""
    worker = threading.Thread(
        target=dispatch_due, kwargs={"limit": 100, "worker": "busy", "database_url": url}
    )
    worker.start()
    return worker


def test_cancel_mid_batch_stops_the_claimed_webhooks(
    committed_url: str, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending, "WEBHOOK_CONCURRENCY", GROUP)
    webhook_receiver.delay = 0.2
    campaign_id = _webhook_campaign(committed_url, webhook_receiver, COUNT)
    worker = _dispatching(committed_url)
    try:
        deadline = time.monotonic() + 30
        while not webhook_receiver.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        with open_session(committed_url) as db:
            campaigns.cancel_campaign(db, campaign_id=campaign_id)
            posted_by_then = len(webhook_receiver.requests)
    finally:
        worker.join(60)
    rows = _rows(committed_url, campaign_id)
    sent = {i for i, (status, _) in rows.items() if status == "sent"}
    # After the cancel, at most the requests already in flight (one slot each).
    assert len(webhook_receiver.requests) <= posted_by_then + GROUP
    assert len(sent) < COUNT
    assert {rows[i] for i in rows.keys() - sent} == {("suppressed", "campaign cancelled")}
    with open_session(committed_url) as db:
        statuses = set(
            db.scalars(
                select(DeliveryStatus.status).where(
                    DeliveryStatus.delivery_id.in_(rows.keys() - sent)
                )
            )
        )
    assert "sent" not in statuses  # an answer after the cancel marks nothing


def test_cancel_suppresses_deliveries_waiting_to_retry_at_once(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    smtp_sink.data_reply = "452 4.3.1 Insufficient system storage"
    campaign_id = _queue(committed_url, 3)
    assert dispatch_due(limit=100, worker="w", database_url=committed_url) == 3
    assert set(_rows(committed_url, campaign_id).values()) == {
        ("failed", "SMTP end of DATA: 452 4.3.1 Insufficient system storage")
    }
    with open_session(committed_url) as db:
        campaigns.cancel_campaign(db, campaign_id=campaign_id)
    assert set(_rows(committed_url, campaign_id).values()) == {("suppressed", "campaign cancelled")}


def test_a_refusal_after_the_cancel_does_not_retry(
    committed_url: str, slow_groups: SmtpSink
) -> None:
    # The group's rows are marked sent before their terminators; the server refuses them at
    # the end of DATA, after the cancel committed: they end suppressed, not failed to retry.
    slow_groups.data_reply = "452 4.3.1 Insufficient system storage"
    slow_groups.delay = 0.5
    campaign_id = _queue(committed_url, 4)
    worker = threading.Thread(
        target=dispatch_due, kwargs={"limit": 100, "worker": "busy", "database_url": committed_url}
    )
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ("sent", "") not in set(
            _rows(committed_url, campaign_id).values()
        ):
            time.sleep(0.01)
        with open_session(committed_url) as db:
            campaigns.cancel_campaign(db, campaign_id=campaign_id)
    finally:
        worker.join(60)
    assert set(_rows(committed_url, campaign_id).values()) == {("suppressed", "campaign cancelled")}
    assert slow_groups.messages == []
    # and no history says sent: those of the group in flight were handed over, then refused
    # and suppressed (a later group's were suppressed by the cancel before any was started)
    with open_session(committed_url) as db:
        history = db.execute(
            select(DeliveryStatus.delivery_id, DeliveryStatus.status)
            .where(DeliveryStatus.delivery_id.in_(_rows(committed_url, campaign_id).keys()))
            .order_by(DeliveryStatus.id)
        ).all()
    steps: dict[int, list[str]] = {}
    for delivery_id, status in history:
        steps.setdefault(delivery_id, []).append(status)
    handed = [s for s in steps.values() if "handed_over" in s]
    assert handed, steps
    assert all(s[-2:] == ["handed_over", "suppressed"] for s in handed), steps
    assert "sent" not in {status for _, status in history}


def test_a_refusal_at_the_end_of_data_counts_one_try(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    smtp_sink.data_reply = "452 4.3.1 Insufficient system storage"
    clock.set_clock(frozen := FrozenClock(clock.now()))
    campaign_id = _queue(committed_url, 1)
    waits = []
    with open_session(committed_url) as db:
        for attempt in range(1, 6):
            assert dispatch_batch(db, worker="w") == 1
            row = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).one()
            assert row.attempts == attempt
            if attempt < 5:
                assert row.status == "failed"
                wait = clock.as_utc(row.next_attempt_at) - clock.now()
                waits.append(wait)
                assert dispatch_batch(db, worker="w") == 0  # not due before its time
                frozen.advance(wait)
            db.expire_all()
        assert row.status == "dead"
        assert row.reason.endswith("(after 5 tries)")
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]


def test_a_sent_delivery_has_no_next_attempt(committed_url: str, smtp_sink: SmtpSink) -> None:
    campaign_id = _queue(committed_url, 1)
    assert dispatch_due(limit=10, worker="w", database_url=committed_url) == 1
    with open_session(committed_url) as db:
        row = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).one()
        assert row.status == "sent"
        assert row.sent_at is not None
        # No lease left behind: nothing is due for it any more.
        assert clock.as_utc(row.next_attempt_at) == clock.as_utc(row.sent_at)
        assert delivery_out(row)["next_attempt_at"] is None


def test_a_webhook_answered_2xx_after_the_pause_is_sent_and_not_posted_again(
    committed_url: str, webhook_receiver: WebhookReceiver
) -> None:
    # given a webhook campaign whose receiver takes a while to answer
    webhook_receiver.delay = 0.5
    campaign_id = _webhook_campaign(committed_url, webhook_receiver, 1)
    worker = _dispatching(committed_url)
    # when the campaign is paused while the POST waits for its answer, which is 2xx
    try:
        deadline = time.monotonic() + 30
        while not webhook_receiver.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        assert webhook_receiver.requests, "the dispatcher posted nothing"
        with open_session(committed_url) as db:
            campaigns.pause_campaign(db, campaign_id=campaign_id)
    finally:
        worker.join(60)
    # then the delivery is sent, its history saying the answer came after the pause
    ((delivery_id, outcome),) = _rows(committed_url, campaign_id).items()
    assert outcome == ("sent", "")
    with open_session(committed_url) as db:
        history = db.execute(
            select(DeliveryStatus.status, DeliveryStatus.reason)
            .where(DeliveryStatus.delivery_id == delivery_id)
            .order_by(DeliveryStatus.id)
        ).all()
        row = db.get(Delivery, delivery_id)
        assert row is not None
        assert row.attempts == 1
    assert [tuple(h) for h in history][-2:] == [
        ("deferred", "campaign paused"),
        ("sent", sending.ANSWERED_AFTER_PAUSE),
    ]
    # and after the resume nothing is posted again
    with open_session(committed_url) as db:
        campaigns.resume_campaign(db, campaign_id=campaign_id)
    dispatch_due(limit=100, worker="later", database_url=committed_url)
    assert len(webhook_receiver.requests) == 1
    assert _rows(committed_url, campaign_id)[delivery_id] == ("sent", "")
