"""The gates at send time, per channel: consent, erasure, frequency caps and quiet hours in
the customer's own time zone (deferred, then sent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.policy import update_sending_policy
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery, InboxMessage
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.receivers import SmtpSink
from tests.customers.factories import process, track

NOON_UTC = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _delivery(db: Session, campaign: Campaign, customer_id: str) -> Delivery:
    row = db.scalar(
        select(Delivery).where(
            Delivery.campaign_id == campaign.id, Delivery.customer_id == customer_id
        )
    )
    assert row is not None
    db.refresh(row)
    return row


def _send(db: Session, campaign: Campaign, *customer_ids: str) -> None:
    queue_deliveries(
        db, campaign=campaign, recipients=[Recipient(customer_id=c) for c in customer_ids]
    )
    db.commit()
    while dispatch_batch(db, worker="w1"):
        pass


def test_marketing_needs_the_channels_consent_and_service_messages_do_not(
    db: Session, smtp_sink: SmtpSink
) -> None:
    clock.set_clock(FrozenClock(NOON_UTC))
    email_only = make_customer(db, consents={"marketing_email": True})
    push_only = make_customer(db, consents={"marketing_push": True})
    nothing = make_customer(db, consents={})

    mail = make_campaign(db, channel="email")
    _send(db, mail, email_only, push_only, nothing)
    app = make_campaign(db, channel="inbox", body="Hi {{ first_name }}")
    _send(db, app, email_only, push_only, nothing)
    notice = make_campaign(db, channel="email", purpose="service", body="Your order is late")
    _send(db, notice, nothing)

    assert _delivery(db, mail, email_only).status == "sent"
    assert _delivery(db, mail, push_only).reason == "no marketing_email consent"
    assert _delivery(db, app, push_only).status == "sent"
    assert _delivery(db, app, email_only).reason == "no marketing_push consent"
    assert _delivery(db, notice, nothing).status == "sent"
    assert sorted(m.to for m in smtp_sink.messages) == sorted(
        [
            customers.get_customer(db, customer_id=email_only).email,  # type: ignore[union-attr]
            customers.get_customer(db, customer_id=nothing).email,  # type: ignore[union-attr]
        ]
    )
    inbox = db.scalars(select(InboxMessage.customer_id)).all()
    assert list(inbox) == [push_only]


def test_an_erased_customer_never_receives_anything(db: Session, smtp_sink: SmtpSink) -> None:
    clock.set_clock(FrozenClock(NOON_UTC))
    erased = make_customer(db, email="erased@example.org")
    marketing = make_campaign(db)
    notice = make_campaign(db, purpose="service", body="About your order")
    queue_deliveries(db, campaign=marketing, recipients=[Recipient(customer_id=erased)])
    queue_deliveries(db, campaign=notice, recipients=[Recipient(customer_id=erased)])
    db.commit()
    # Erased after queueing: the gate at send time is what keeps them out.
    customer = customers.get_customer(db, customer_id=erased)
    assert customer is not None
    customer.status = "erased"
    customer.email = None
    db.commit()

    dispatch_batch(db, worker="w1")

    for campaign in (marketing, notice):
        row = _delivery(db, campaign, erased)
        assert row.status == "suppressed"
        assert row.reason.startswith("not contactable")
    assert smtp_sink.messages == []


def test_the_frequency_cap_counts_sent_marketing_per_channel_and_spares_service(
    db: Session, smtp_sink: SmtpSink
) -> None:
    clock.set_clock(frozen := FrozenClock(NOON_UTC))
    update_sending_policy(db, channel="email", changes={"cap_messages": 2, "cap_hours": 24})
    person = make_customer(db, consents={"marketing_email": True, "marketing_push": True})
    first, second, third = (make_campaign(db) for _ in range(3))
    for campaign in (first, second, third):
        _send(db, campaign, person)
        frozen.advance(timedelta(minutes=5))
    in_app = make_campaign(db, channel="inbox", body="Hi")
    _send(db, in_app, person)
    notice = make_campaign(db, purpose="service", body="Order update")
    _send(db, notice, person)

    assert [_delivery(db, c, person).status for c in (first, second, third)] == [
        "sent",
        "sent",
        "suppressed",
    ]
    assert _delivery(db, third, person).reason == "frequency cap: 2 email messages in 24 h"
    assert _delivery(db, in_app, person).status == "sent"  # another channel, its own cap
    assert _delivery(db, notice, person).status == "sent"  # service messages are not capped
    # A day later the window has moved on.
    frozen.advance(timedelta(hours=24))
    fourth = make_campaign(db)
    _send(db, fourth, person)
    assert _delivery(db, fourth, person).status == "sent"


def test_quiet_hours_defer_to_the_customers_morning_then_send(
    db: Session, smtp_sink: SmtpSink
) -> None:
    # 22:30 UTC: 07:30 in Tokyo (quiet until 08:00), 23:30 in Paris (quiet until 08:00 next
    # day), 15:30 in Los Angeles (awake); no zone → the policy's default (UTC, quiet).
    clock.set_clock(frozen := FrozenClock(datetime(2026, 6, 10, 22, 30, tzinfo=UTC)))
    update_sending_policy(
        db, channel="email", changes={"quiet_start": 21, "quiet_end": 8, "cap_messages": 0}
    )
    tokyo = make_customer(db, time_zone="Asia/Tokyo")
    paris = make_customer(db, time_zone="Europe/Paris")
    la = make_customer(db, time_zone="America/Los_Angeles")
    unknown = make_customer(db)
    campaign = make_campaign(db)
    notice = make_campaign(db, purpose="service", body="Order update")
    _send(db, campaign, tokyo, paris, la, unknown)
    _send(db, notice, paris)

    assert _delivery(db, campaign, la).status == "sent"
    assert _delivery(db, notice, paris).status == "sent"  # service ignores quiet hours
    tokyo_row = _delivery(db, campaign, tokyo)
    assert tokyo_row.status == "deferred"
    assert tokyo_row.reason == "quiet hours in Asia/Tokyo until 08:00"
    assert clock.as_utc(tokyo_row.next_attempt_at) == datetime(2026, 6, 10, 23, 0, tzinfo=UTC)
    paris_row = _delivery(db, campaign, paris)
    assert clock.as_utc(paris_row.next_attempt_at) == datetime(2026, 6, 11, 6, 0, tzinfo=UTC)
    assert clock.as_utc(_delivery(db, campaign, unknown).next_attempt_at) == datetime(
        2026, 6, 11, 8, 0, tzinfo=UTC
    )
    assert len(smtp_sink.messages) == 2

    frozen.advance(timedelta(minutes=31))  # 08:01 in Tokyo
    while dispatch_batch(db, worker="w1"):
        pass
    assert _delivery(db, campaign, tokyo).status == "sent"
    assert _delivery(db, campaign, paris).status == "deferred"
    frozen.advance(timedelta(hours=9, minutes=30))  # past 08:00 in Paris and in UTC
    while dispatch_batch(db, worker="w1"):
        pass
    assert {_delivery(db, campaign, c).status for c in (paris, unknown)} == {"sent"}
    assert len(smtp_sink.messages) == 5


def test_quiet_hours_keep_the_night_of_the_zone_the_customers_device_sends(
    db: Session, smtp_sink: SmtpSink
) -> None:
    # given a customer whose phone's app said Asia/Tokyo (context.timezone), the only place
    # Rapport learnt it, and a policy quiet from 21:00 to 08:00
    clock.set_clock(FrozenClock(datetime(2026, 6, 10, 13, 30, tzinfo=UTC)))  # 22:30 in Tokyo
    update_sending_policy(
        db, channel="email", changes={"quiet_start": 21, "quiet_end": 8, "cap_messages": 0}
    )
    person = make_customer(db)
    track(
        db,
        "app_opened",
        user_id=person,
        at=datetime(2026, 6, 10, 13, 0, tzinfo=UTC),
        context={"timezone": "Asia/Tokyo"},
    )
    process(db)
    assert customers.get_customer(db, customer_id=person).time_zone == "Asia/Tokyo"  # type: ignore[union-attr]

    # when a marketing email goes out at 13:30 UTC, the afternoon in the policy's UTC
    campaign = make_campaign(db)
    _send(db, campaign, person)

    # then it waits for 08:00 in Tokyo (23:00 UTC)
    row = _delivery(db, campaign, person)
    assert row.status == "deferred"
    assert row.reason == "quiet hours in Asia/Tokyo until 08:00"
    assert clock.as_utc(row.next_attempt_at) == datetime(2026, 6, 10, 23, 0, tzinfo=UTC)
    assert smtp_sink.messages == []
