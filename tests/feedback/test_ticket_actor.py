"""Who opened a ticket: the admin user's login from the customer page, the key
(``api:<key name>``) over the API, shown in the ticket object and on the ticket page; and a
ticket's apology points are capped as goodwill points are (loyalty's one cap, 10,000)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from rapport.loyalty import service as loyalty
from rapport.platform.errors import InvalidInput
from tests.conftest import auth, command
from tests.feedback.factories import make_customer
from tests.platform.admin_forms import ADMIN_EMAIL, page_form, post_form, typed


def test_a_ticket_opened_over_the_api_names_the_key(client: TestClient, api_key) -> None:
    key = api_key("write", "read")
    body = {"kind": "question", "channel": "email", "subject": "Where is my parcel?"}
    opened = client.post("/v1/feedback/tickets", json=body, headers=command(key))
    assert opened.status_code == 201, opened.text
    assert (opened.json()["opened_by"], opened.json()["resolved_by"]) == (
        "api:test write+read",
        None,
    )
    [queued] = client.get("/v1/feedback/tickets", headers=auth(key)).json()
    assert queued["opened_by"] == "api:test write+read"


def test_a_ticket_opened_from_the_customer_page_names_the_admin_user(
    admin: TestClient, db: Session
) -> None:
    # given the customer page's ticket form, filled in by ops@example.com
    customer_id, _ = make_customer(db)
    action = f"/admin/feedback/customers/{customer_id}/tickets"
    fields = page_form(
        admin.get(f"/admin/feedback/customers/{customer_id}/panel").text, action=action
    )
    # when it is sent
    assert post_form(admin, action, typed(fields, "subject", "Wrong size")).status_code == 303
    # then the ticket records who opened it, and its page says so
    db.expire_all()
    [ticket] = service.customer_tickets(db, customer_id=customer_id)
    assert ticket.opened_by == ADMIN_EMAIL
    page = admin.get(f"/admin/feedback/tickets/{ticket.ticket_id}").text
    assert f'data-testid="ticket-opened-by">by {ADMIN_EMAIL}<' in page


def test_a_survey_or_service_ticket_without_an_actor_has_none(db: Session) -> None:
    ticket = service.open_ticket(
        db, ticket=TicketIn(kind="question", channel="email", subject="Parcel")
    )
    assert ticket.opened_by is None


def test_apology_points_over_the_manual_cap_are_refused_over_the_api(
    client: TestClient, db: Session, api_key
) -> None:
    # given an open ticket of a customer
    customer_id, _ = make_customer(db)
    key = api_key("write", "read")
    body = {"customer_id": customer_id, "kind": "complaint", "channel": "email", "subject": "Late"}
    ticket_id = client.post("/v1/feedback/tickets", json=body, headers=command(key)).json()[
        "ticket_id"
    ]
    resolve = f"/v1/feedback/tickets/{ticket_id}/resolve"
    # when 10,001 apology points are asked: refused naming apology_points, nothing credited
    refused = client.post(
        resolve, json={"resolution": "Sorry", "apology_points": 10_001}, headers=command(key)
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "apology_points"
    assert loyalty.balance(db, customer_id=customer_id) == 0
    # and 10,000 are granted, recording the key that resolved it
    granted = client.post(
        resolve, json={"resolution": "Sorry", "apology_points": 10_000}, headers=command(key)
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["resolved_by"] == "api:test write+read"
    db.expire_all()
    assert loyalty.balance(db, customer_id=customer_id) == 10_000


def test_the_verb_refuses_more_than_the_manual_cap(db: Session) -> None:
    customer_id, _ = make_customer(db)
    ticket = service.open_ticket(
        db,
        ticket=TicketIn(customer_id=customer_id, kind="complaint", channel="email", subject="x"),
    )
    with pytest.raises(InvalidInput) as refused:
        service.resolve_ticket(
            db,
            ticket_id=ticket.ticket_id,
            resolution="Sorry",
            resolved_by="a",
            apology_points=loyalty.MANUAL_POINTS_MAX + 1,
        )
    assert refused.value.field == "apology_points"
