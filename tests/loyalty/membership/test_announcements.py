"""Announcements on SQLite and PostgreSQL: validated, queued through the worker, one delivery
per member of the audience however often the job runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.loyalty import service as loyalty
from rapport.loyalty.membership import announcements
from rapport.loyalty.membership import jobs as membership_jobs
from rapport.loyalty.membership import lifecycle as memberships
from rapport.loyalty.membership import plans as membership_plans
from rapport.loyalty.models import TierStanding
from rapport.platform import clock, jobs
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput
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


def test_deliveries_per_audience_once_even_when_the_job_runs_twice(db) -> None:
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
    # when announcements go to all, paying and gold members, in batches of two, twice each
    counts = {}
    for audience in ("all", "paying", "tier:gold"):
        announcement, job_id = announcements.create_announcement(
            db,
            kind="early_access",
            title="Sale",
            body="Members shop first.",
            audience=audience,
            created_by="ops",
        )
        queued = db.get(Job, job_id)
        assert queued is not None
        assert (queued.kind, queued.payload) == (
            "loyalty.queue_announcement",
            {"announcement_id": announcement.id},
        )
        announcements.deliver_announcement(db, announcement_id=announcement.id, batch=2)
        counts[audience] = announcements.deliver_announcement(
            db, announcement_id=announcement.id, batch=2
        )
        delivered = {
            d.customer_id for d in announcements.deliveries(db, announcement_id=announcement.id)
        }
        assert outsider not in delivered
    # then every member of each audience has one delivery
    assert counts == {"all": 3, "paying": 1, "tier:gold": 1}
    assert [a.queued_count for a in announcements.list_announcements(db)] == [1, 1, 3]


def test_the_worker_runs_the_queued_job(committed_url) -> None:
    # given an announcement created (and its job queued) in one committed transaction
    assert membership_jobs.queue_announcement is not None  # the handler is registered
    with open_session(committed_url) as db:
        member = make_customer(db, consents={"marketing_push": True})
        loyalty.earn(db, customer_id=member, points=10, reason="Welcome")
        announcement, job_id = announcements.create_announcement(
            db,
            kind="rule_change",
            title="New rules",
            body="Points now expire after 18 months.",
            audience="all",
            created_by="ops",
        )
    # when the worker runs what is due
    jobs.run_due(worker_id="test", database_url=committed_url)
    # then the job is done and the member has the announcement
    with open_session(committed_url) as db:
        assert db.scalar(select(Job.status).where(Job.id == job_id)) == "done"
        stored = announcements.get_announcement(db, announcement_id=announcement.id)
        assert stored is not None
        assert (stored.queued_count, stored.queued_at is not None) == (1, True)
