"""Member announcements are sent, with consent: the reported defects (announcements queued for
Gold members without marketing consent and for an erased person, and never sent) are gone. An
announcement reaches each member of its audience once, by email where they granted marketing
email, else in the app inbox where they granted app push, and nobody else; the counts on the
loyalty page follow what was queued and sent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from rapport.campaigns.models import Campaign, Delivery, InboxMessage
from rapport.campaigns.producers import announcements as producer_announcements
from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.loyalty.membership import announcements
from rapport.loyalty.models import TierStanding
from rapport.platform import clock, jobs
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_customer
from tests.campaigns.producers.flow import advance_processors, frozen, run_worker
from tests.campaigns.receivers import SmtpSink


def _gold(db, customer_id: str) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    db.add(
        TierStanding(
            customer_id=customer_id,
            tier_id="gold",
            since=now,
            review_at=now + timedelta(days=365),
            qualifying_value=0,
            updated_at=now,
        )
    )
    db.commit()


def test_gold_announcement_reaches_consenting_members_on_their_channel(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    frozen()
    # given Gold members: e-mail consent, push only, no consent, refused, erased after
    # consenting, and one merged into a consenting customer who is not Gold (the merge moves
    # no tier: loyalty reviews the survivor's own); and a consenting customer who is not Gold
    with open_session(committed_url) as db:
        by_email = make_customer(
            db,
            consents={"marketing_email": True, "marketing_push": True},
            email="gold@example.org",
            first_name="Gala",
        )
        by_push = make_customer(db, consents={"marketing_push": True}, email="push@example.org")
        silent = make_customer(db, consents={}, email="silent@example.org")
        refused = make_customer(db, consents={"marketing_email": False}, email="no@example.org")
        erased = make_customer(db, consents={"marketing_email": True}, email="gone@example.org")
        merged = make_customer(db, consents={}, email="merged@example.org")
        survivor = make_customer(db, consents={"marketing_email": True}, email="kept@example.org")
        make_customer(db, consents={"marketing_email": True}, email="outsider@example.org")
        db.commit()
        for member in (by_email, by_push, silent, refused, erased, merged):
            _gold(db, member)
        privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
        customers.merge_customers(
            db, source_customer_id=merged, target_customer_id=survivor, reason="same", actor="t"
        )
        # when an announcement of early access goes to Gold members and the worker runs
        announcement = announcements.create_announcement(
            db,
            kind="early_access",
            title="Gold preview",
            body="Shop the sale a day early.\n\nFrom Friday 9:00 {{ doors open }}.",
            audience="tier:gold",
            created_by="ops",
        )
        announcement_id = announcement.id
    run_worker(committed_url)
    # then only consenting live members have it, each on a channel they granted, once
    assert [m.to for m in smtp_sink.messages] == ["gold@example.org"]
    (mail,) = smtp_sink.to("gold@example.org")
    assert mail.subject == "Gold preview"
    assert "Hello Gala" in mail.text
    assert "Shop the sale a day early." in mail.text
    assert "From Friday 9:00 {{ doors open }}." in mail.text  # the operator's text, not run
    assert "/u/" in mail.html  # the unsubscribe link withdraws marketing email
    with open_session(committed_url) as db:
        inbox = db.scalars(select(InboxMessage.customer_id)).all()
        assert inbox == [by_push]
        reached = set(
            db.scalars(
                select(Delivery.customer_id)
                .join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(Campaign.key.like(f"loyalty.announcement.{announcement_id}.%"))
            )
        )
        assert reached == {by_email, by_push}
        assert not reached & {silent, refused, erased, merged, survivor}
        # the counts job (every minute) reports what was sent
        producer_announcements.refresh_announcement_counts(db)
        stored = announcements.get_announcement(db, announcement_id=announcement_id)
        assert stored is not None
        assert (stored.queued_count, stored.sent_count) == (2, 2)
    # and publishing it again sends nobody anything twice
    with open_session(committed_url) as db:
        announcements.requeue_announcement(db, announcement_id=announcement_id)
    run_worker(committed_url)
    assert len(smtp_sink.messages) == 1


def test_consent_withdrawn_after_queuing_stops_the_email(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given an announcement queued for a member who then withdraws marketing email
    frozen()
    with open_session(committed_url) as db:
        member = make_customer(db, consents={"marketing_email": True}, email="late@example.org")
        db.commit()
        _gold(db, member)
        announcement = announcements.create_announcement(
            db,
            kind="new_benefit",
            title="Free gift wrap",
            body="For every {{ member }}.",
            audience="tier:gold",
            created_by="ops",
        )
        announcement_id = announcement.id
    advance_processors(committed_url)
    jobs.run_due(worker_id="producers-test", database_url=committed_url)
    with open_session(committed_url) as db:
        customers.set_consent(
            db, customer_id=member, purpose="marketing_email", granted=False, source="test"
        )
    # when the dispatcher runs
    run_worker(committed_url)
    # then nothing was sent: the gate checks consent again when the message goes out
    assert smtp_sink.messages == []
    with open_session(committed_url) as db:
        producer_announcements.refresh_announcement_counts(db)
        stored = announcements.get_announcement(db, announcement_id=announcement_id)
        assert stored is not None
        assert (stored.queued_count, stored.sent_count) == (1, 0)
        (status,) = db.scalars(select(Delivery.status)).all()
        assert status == "suppressed"
