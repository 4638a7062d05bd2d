"""The goodwill form on the customer page names every field it refuses in one answer, so an
agent mends them all at once instead of finding the next one on each resubmit; nothing is
given."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from tests.loyalty.factories import make_customer
from tests.platform.admin_forms import csrf_token


def test_goodwill_refuses_every_wrong_field_at_once(admin: TestClient, db: Session) -> None:
    # given a member with 50 points
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=50, reason="Order O-1", order_id="O-1")
    token = csrf_token(admin.get("/admin/loyalty/plans").text)
    # when an agent asks for more than the cap, with reason Other and no note (the panel's
    # htmx post)
    answer = admin.post(
        f"/admin/loyalty/customers/{customer_id}/goodwill",
        data={
            "csrf_token": token,
            "points": str(loyalty.MANUAL_POINTS_MAX + 1),
            "reason": "Other",
            "note": "",
            "token": "g-all",
        },
        headers={"HX-Request": "true"},
    )
    # then both fields carry their message in the one answer, and what was typed stays
    assert answer.status_code == 422
    assert 'data-field-error="points"' in answer.text
    assert 'data-field-error="note"' in answer.text
    assert f'value="{loyalty.MANUAL_POINTS_MAX + 1}"' in answer.text
    # and nothing was given
    db.expire_all()
    assert loyalty.balance(db, customer_id=customer_id) == 50
