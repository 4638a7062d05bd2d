"""Announcements on SQLite and PostgreSQL: validated, published as ``announcement_published``
in the same transaction, their audience read in batches (the campaigns domain sends them:
tests/campaigns/producers/test_announcements.py), their delivery counts reported back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import jobs as membership_jobs
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import TierStanding
from rapport.platform import clock, jobs
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.models import Job
from tests.loyalty.factories import make_customer


def _tier(db, customer_id: str, tier_id: str) -> None:  # type: ignore[no-untyped-def]
    now = clock.now()
    db.add(
        TierStanding(
            customer_id=customer_id,
            tier_id=tier_id,
            since=now,
            review_at=now + timedelta(days=365),
            qualifying_value=0,
            updated_at=now,
        )
    )
    db.commit()


@pytest.mark.parametrize(
    ("_case", "changes", "field"),
    [
        ("unknown kind", {"kind": "promo"}, "kind"),
        ("empty title", {"title": " "}, "title"),
        ("unknown audience", {"audience": "vip"}, "audience"),
        ("tier without id", {"audience": "tier:"}, "audience"),
    ],
)
def test_invalid_announcements_are_refused(db, _case, changes, field) -> None:  # type: ignore[no-untyped-def]
    values = {
        "kind": "new_benefit",
        "title": "Free gift wrap",
        "body": "For every member.",
        "audience": "all",
        "created_by": "ops@example.com",
    } | changes
    with pytest.raises(InvalidInput) as raised:
        announcements.create_announcement(db, **values)
    assert raised.value.field == field
    assert announcements.list_announcements(db) == []
    assert db.scalars(select(Event).where(Event.type == "announcement_published")).all() == []


def _published(db) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    return [
        e.properties
        for e in db.scalars(
            select(Event).where(Event.type == "announcement_published").order_by(Event.position)
        )
    ]


def test_publishing_appends_the_event_and_publishing_again_appends_it_again(db) -> None:
    # when an announcement is created for gold members, then published again
    announcement = announcements.create_announcement(
        db,
        kind="early_access",
        title="Gold preview",
        body="Shop the sale a day early.",
        audience="tier:gold",
        created_by="ops",
    )
    announcements.requeue_announcement(db, announcement_id=announcement.id)
    # then the log holds the fact twice, and nothing is counted before campaigns reports
    published = {
        "announcement_id": announcement.id,
        "kind": "early_access",
        "audience": "tier:gold",
    }
    assert _published(db) == [published, published]
    stored = announcements.get_announcement(db, announcement_id=announcement.id)
    assert stored is not None
    assert (stored.queued_count, stored.sent_count, stored.queued_at) == (0, 0, None)
    with pytest.raises(NotFound):
        announcements.requeue_announcement(db, announcement_id=announcement.id + 1)


def test_each_audience_is_read_in_batches_members_only(db) -> None:
    # given a points member, a gold-tier member, a paying member (no points) and a customer
    # who is not a member
    membership_plans.save_plan(
        db, plan_id="plus", name="Plus", fee_minor=499, currency="EUR", period="month"
    )
    with_points, gold, paying, outsider = (
        make_customer(db, consents={"marketing_email": True}) for _ in range(4)
    )
    loyalty.earn(db, customer_id=with_points, points=10, reason="Welcome")
    _tier(db, gold, "gold")
    memberships.join(db, customer_id=paying, plan_id="plus")

    def read_all(audience: str) -> list[str]:
        found: list[str] = []
        while batch := loyalty.announcement_audience(
            db, audience=audience, after=found[-1] if found else "", limit=2
        ):
            found += batch
        return found

    # then each audience is its members, in id order, the outsider in none
    assert read_all("all") == sorted([with_points, gold, paying])
    assert read_all("paying") == [paying]
    assert read_all("tier:gold") == [gold]
    assert outsider not in read_all("all")


def test_counts_reported_by_campaigns_show_on_the_announcement(db) -> None:
    announcement = announcements.create_announcement(
        db, kind="new_benefit", title="Gift wrap", body="Free.", audience="all", created_by="ops"
    )
    loyalty.record_delivery_counts(db, announcement_id=announcement.id, queued=3, sent=0)
    loyalty.record_delivery_counts(db, announcement_id=announcement.id, queued=3, sent=2)
    db.commit()
    db.expire_all()
    (stored,) = announcements.list_announcements(db)
    assert (stored.queued_count, stored.sent_count, stored.queued_at is not None) == (3, 2, True)


def test_a_job_queued_by_an_earlier_version_publishes_again(committed_url) -> None:
    # given an announcement and a delivery job left by an earlier version
    assert membership_jobs.queue_announcement is not None  # the handler is registered
    with open_session(committed_url) as db:
        announcement = announcements.create_announcement(
            db,
            kind="rule_change",
            title="New rules",
            body="Points now expire after 18 months.",
            audience="all",
            created_by="ops",
        )
        job_id = jobs.enqueue(
            db, kind=announcements.QUEUE_JOB, payload={"announcement_id": announcement.id}
        ).id
        db.commit()
    # when the worker runs what is due
    jobs.run_due(worker_id="test", database_url=committed_url)
    # then the job is done and the announcement is published again for campaigns to send
    with open_session(committed_url) as db:
        assert db.scalar(select(Job.status).where(Job.id == job_id)) == "done"
        assert [p["announcement_id"] for p in _published(db)] == [announcement.id] * 2
