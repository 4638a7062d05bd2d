"""Webhook deliveries to a real HTTP receiver: signed bodies the receiver can verify, retries
with exponential backoff, the dead state after the last try, replay."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.delivery.webhooks import replay_delivery
from rapport.campaigns.models import Delivery, WebhookAttempt
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from tests.campaigns.delivery.factories import make_campaign, make_customer, make_endpoint
from tests.campaigns.receivers import WebhookReceiver
from tests.conftest import free_port

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute HMAC-SHA256 over f"{t}.{body}" with its secret."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_the_receiver_gets_a_signed_message_it_can_verify_and_deduplicate(
    db: Session, webhook_receiver: WebhookReceiver
) -> None:
    clock.set_clock(FrozenClock(T0))
    endpoint = make_endpoint(db, url=webhook_receiver.url, secret="whsec_abc")
    person = make_customer(db, consents={"marketing_push": True}, first_name="Lin")
    campaign = make_campaign(
        db,
        channel="webhook",
        webhook_endpoint_id=endpoint.id,
        subject="Match day",
        body="Hi {{ first_name }}, {{ occasion.venue }} is near you",
    )
    queue_deliveries(
        db,
        campaign=campaign,
        recipients=[Recipient(customer_id=person, context={"venue": "the stadium"})],
    )
    db.commit()
    dispatch_batch(db, worker="w1")

    [request] = webhook_receiver.requests
    assert _verify("whsec_abc", request.body, request.headers["rapport-signature"])
    assert not _verify("another-secret", request.body, request.headers["rapport-signature"])
    assert request.headers["rapport-signature"].startswith(f"t={int(T0.timestamp())},v1=")
    delivery = db.scalar(select(Delivery).where(Delivery.campaign_id == campaign.id))
    assert delivery is not None
    assert request.headers["rapport-delivery-id"] == str(delivery.id)
    payload = request.json()
    assert payload["body"] == "Hi Lin, the stadium is near you"
    assert payload["recipient"]["customer_id"] == person
    assert payload["unsubscribe_url"].startswith("http://testserver/u/")
    assert delivery.status == "sent"


def test_failures_retry_with_backoff_then_die_and_a_replay_delivers(
    db: Session, webhook_receiver: WebhookReceiver
) -> None:
    clock.set_clock(frozen := FrozenClock(T0))
    endpoint = make_endpoint(db, url=webhook_receiver.url, max_attempts=3)
    person = make_customer(db, consents={"marketing_push": True})
    campaign = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi")
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=person)])
    db.commit()
    webhook_receiver.responses = [503, 500, 502]

    def row() -> Delivery:
        found = db.scalar(select(Delivery).where(Delivery.campaign_id == campaign.id))
        assert found is not None
        db.refresh(found)
        return found

    dispatch_batch(db, worker="w1")
    assert (row().status, row().attempts, row().reason) == ("failed", 1, "HTTP 503")
    assert clock.as_utc(row().next_attempt_at) == T0 + timedelta(seconds=30)
    frozen.advance(timedelta(seconds=29))
    assert dispatch_batch(db, worker="w1") == 0  # not due yet
    frozen.advance(timedelta(seconds=1))
    dispatch_batch(db, worker="w1")
    assert clock.as_utc(row().next_attempt_at) == frozen.at + timedelta(seconds=60)
    frozen.advance(timedelta(seconds=60))
    dispatch_batch(db, worker="w1")
    assert row().status == "dead"
    assert row().reason == "HTTP 502 (after 3 tries)"
    codes = db.scalars(
        select(WebhookAttempt.status_code).where(WebhookAttempt.delivery_id == row().id)
    ).all()
    assert list(codes) == [503, 500, 502]

    frozen.advance(timedelta(hours=1))
    assert dispatch_batch(db, worker="w1") == 0  # the dead stay dead
    replay_delivery(db, delivery_id=row().id)
    dispatch_batch(db, worker="w1")
    assert row().status == "sent"
    assert len(webhook_receiver.requests) == 4
    # Every try of one delivery carries the same id, for the receiver to de-duplicate.
    assert {r.headers["rapport-delivery-id"] for r in webhook_receiver.requests} == {str(row().id)}


def test_an_unreachable_endpoint_is_retried_and_a_4xx_is_final(
    db: Session, webhook_receiver: WebhookReceiver
) -> None:
    clock.set_clock(FrozenClock(T0))
    closed = make_endpoint(db, url=f"http://127.0.0.1:{free_port()}/hooks")
    refusing = make_endpoint(db, url=webhook_receiver.url)
    webhook_receiver.default_status = 410
    person = make_customer(db, consents={"marketing_push": True})
    unreachable = make_campaign(db, channel="webhook", webhook_endpoint_id=closed.id, body="Hi")
    gone = make_campaign(db, channel="webhook", webhook_endpoint_id=refusing.id, body="Hi")
    for campaign in (unreachable, gone):
        queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=person)])
    db.commit()
    dispatch_batch(db, worker="w1")

    statuses = dict(db.execute(select(Delivery.campaign_id, Delivery.reason)).all())
    assert statuses[unreachable.id].startswith("connection")
    assert statuses[gone.id] == "HTTP 410"
    assert db.scalar(select(Delivery.status).where(Delivery.campaign_id == gone.id)) == "dead"
