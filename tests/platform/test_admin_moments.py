"""Dates and times in the messages admin routes write are formatted for people, as the pages'
``moment`` filter shows them ("8 Dec 2026, 04:05 UTC", the zone said once): a ticket opened from
the customer panel, a campaign scheduled from its editor; the filter itself says the zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.feedback.models import Ticket
from rapport.platform import clock, formatting, jobs
from rapport.platform import service as platform
from tests.campaigns.delivery.factories import make_campaign
from tests.campaigns.planning.factories import make_segment
from tests.platform.admin_forms import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    csrf_token,
    page_form,
    post_form,
    said_after,
    sign_in,
    typed,
)

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


@pytest.fixture
def admin(client: TestClient, db: Session) -> TestClient:
    clock.set_clock(clock.FrozenClock(NOW))
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    return client


def test_a_ticket_opened_from_the_customer_panel_says_its_due_time_for_people(
    admin: TestClient, db: Session
) -> None:
    customer_id = customers.identify_customer(
        db, identities={"email": "ann@example.org"}, profile={"first_name": "Ann"}
    ).customer_id
    # the Experience panel's form, as the 360 page loads it (with its one-time token)
    action = f"/admin/feedback/customers/{customer_id}/tickets"
    panel = admin.get(f"/admin/feedback/customers/{customer_id}/panel").text
    fields = typed(page_form(panel, action=action), "subject", "Where is my parcel")
    fields = typed(typed(fields, "body", "Ordered a week ago."), "kind", "question")

    answer = post_form(admin, action, typed(fields, "channel", "call_center"))

    assert answer.status_code == 303
    due = db.scalars(select(Ticket.sla_due_at)).one()
    shown = formatting.moment(clock.as_utc(due))
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} 2026, \d\d:\d\d UTC", shown)
    assert said_after(admin, answer) == f"Ticket opened: Where is my parcel (due {shown})"


def test_a_campaign_scheduled_from_its_editor_says_when_for_people(
    admin: TestClient, db: Session
) -> None:
    campaign = make_campaign(db, name="Winter sale", segment_id=make_segment(db))
    campaign.status = "draft"
    db.commit()
    token = csrf_token(admin.get(f"/admin/campaigns/{campaign.id}").text)

    answer = admin.post(
        f"/admin/campaigns/{campaign.id}/schedule",
        data={"csrf_token": token, "scheduled_at": "2026-12-08T04:05"},
        follow_redirects=False,
    )

    assert answer.status_code == 303
    assert said_after(admin, answer) == "Scheduled for 8 Dec 2026, 04:05 UTC"


def test_the_moment_filter_says_the_zone_and_shows_every_time_in_utc() -> None:
    # an aware time in another zone is moved to UTC; a naive one is read as UTC
    assert formatting.moment(datetime(2026, 12, 8, 4, 5, tzinfo=UTC)) == "8 Dec 2026, 04:05 UTC"
    paris = timezone(timedelta(hours=1))
    assert formatting.moment(datetime(2026, 12, 8, 5, 5, tzinfo=paris)) == "8 Dec 2026, 04:05 UTC"
    naive = datetime(2026, 12, 8, 4, 5)  # noqa: DTZ001
    assert formatting.moment(naive) == "8 Dec 2026, 04:05 UTC"
    assert formatting.moment(None) == formatting.NOTHING


def test_a_page_showing_times_names_the_zone_once(admin: TestClient, db: Session) -> None:
    # a job and a customer, whose pages show their times through the moment filter
    jobs.enqueue(db, kind="platform.prune_finished_jobs", payload={})
    db.commit()
    customer_id = customers.identify_customer(
        db, identities={"email": "bo@example.org"}
    ).customer_id
    queue = admin.get("/admin/settings/jobs").text
    profile = admin.get(f"/admin/customers/{customer_id}").text
    assert "7 Dec 2026, 04:00 UTC" in queue
    assert "7 Dec 2026, 04:00 UTC" in profile
    assert "UTC UTC" not in queue + profile
