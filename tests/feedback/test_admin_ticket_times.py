"""The ticket pages show their times with the zone they are in (UTC: Rapport has no shop time
zone setting), where they showed a bare "3 Mar 2026, 09:00"; SLAs count round-the-clock hours
(docs/feedback.md), so a complaint opened on a Monday at 09:00 is due Tuesday at 09:00."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from rapport.platform import service as platform
from tests.feedback.factories import frozen_clock
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


@pytest.fixture
def admin(client: TestClient, db: Session) -> TestClient:
    frozen_clock()  # Monday 2 March 2026, 09:00 UTC
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    return client


def test_ticket_times_are_shown_in_utc_and_labelled_so(admin: TestClient, db: Session) -> None:
    # given a complaint opened on Monday 2 March 2026 at 09:00 UTC (due 24 hours later)
    ticket = service.open_ticket(
        db,
        ticket=TicketIn(kind="complaint", channel="email", subject="Broken", body="It broke"),
    )
    # when the queue and the ticket's page are shown
    queue = admin.get("/admin/feedback/tickets").text
    page = admin.get(f"/admin/feedback/tickets/{ticket.ticket_id}").text
    # then each time says its zone, and the due time is a whole day later, night included
    assert "3 Mar 2026, 09:00 UTC" in queue
    assert "2 Mar 2026, 09:00 UTC" in page
    assert 'data-testid="ticket-sla-due">3 Mar 2026, 09:00 UTC' in page
