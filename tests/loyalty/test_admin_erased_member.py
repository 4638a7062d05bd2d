"""An erased customer's loyalty statement page says they were erased, as their customer page
does (404), never "0 points available"."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from tests.customers.factories import erased_customer, says_erased


def test_an_erased_members_statement_page_says_they_were_erased(
    admin: TestClient, db: Session
) -> None:
    # given a member with goodwill points, erased on 3 December 2026
    customer_id = erased_customer(
        db,
        before=lambda member: loyalty.adjust(
            db, customer_id=member, points=50, reason="Goodwill: Other (test)"
        ),
    )

    # when their statement page is opened
    answer = admin.get(f"/admin/loyalty/members/{customer_id}")

    # then it says they were erased, when, and that nothing personal is kept
    assert answer.status_code == 404
    assert says_erased(answer.text, customer_id)
    assert "points available" not in answer.text
