"""An erased customer's loyalty statement page says they were erased, as their customer page
does (404), never "0 points available"."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.platform import clock


def test_an_erased_members_statement_page_says_they_were_erased(
    admin: TestClient, db: Session
) -> None:
    # given a member with goodwill points, erased on 3 December 2026
    clock.set_clock(clock.FrozenClock(datetime(2026, 12, 3, 10, 30, tzinfo=UTC)))
    customer_id = customers.identify_customer(
        db, identities={"email": "wren.aldous@example.org"}, profile={"first_name": "Wren"}
    ).customer_id
    loyalty.adjust(db, customer_id=customer_id, points=50, reason="Goodwill: Other (test)")
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo@example.com")
    clock.reset_clock()

    # when their statement page is opened
    answer = admin.get(f"/admin/loyalty/members/{customer_id}")

    # then it says they were erased, when, and that nothing personal is kept
    assert answer.status_code == 404
    assert (
        f"Customer {customer_id} was erased on 3 Dec 2026; nothing personal is kept." in answer.text
    )
    assert "points available" not in answer.text
    assert "Wren" not in answer.text
