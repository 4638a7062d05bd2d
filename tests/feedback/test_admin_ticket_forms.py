"""The ticket forms of the Experience admin over HTTP: resolving a ticket from its page, and
the ticket list's filters; what they refuse, where they say so, and that nothing changes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from rapport.loyalty import service as loyalty
from rapport.platform.errors import InvalidInput
from tests.feedback.factories import make_customer
from tests.platform.admin_forms import (
    page_form,
    post_form,
    said_after,
    typed,
)


def _open(db: Session, customer_id: str | None) -> str:
    ticket = service.open_ticket(
        db,
        ticket=TicketIn(
            customer_id=customer_id, kind="complaint", channel="email", subject="Late parcel"
        ),
    )
    return ticket.ticket_id


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'data-field-error="{name}">([^<]*)<', html)
    assert found is not None, f"no message at {name}"
    return found.group(1)


@pytest.mark.parametrize("points", ["99999999", "10001", "-5", "abc", "1" * 40])
def test_a_refused_resolution_keeps_the_reply_and_credits_nothing(
    admin: TestClient, db: Session, points: str
) -> None:
    # given an open ticket of a customer
    customer_id, _ = make_customer(db)
    ticket_id = _open(db, customer_id)
    action = f"/admin/feedback/tickets/{ticket_id}/resolve"
    fields = page_form(admin.get(f"/admin/feedback/tickets/{ticket_id}").text, action=action)
    # when the agent replies and asks more apology points than the API grants, or none
    fields = typed(
        typed(fields, "resolution", "We are sorry & resent it"), "apology_points", points
    )
    answer = post_form(admin, action, fields)
    # then the page comes back with the message at the field and what was typed
    assert answer.status_code == 422
    assert _field_error(answer.text, "apology_points") == (
        "Apology points: a whole number from 0 to 10,000"
    )
    again = page_form(answer.text, action=action)
    assert ("resolution", "We are sorry & resent it") in again
    assert ("apology_points", points) in again
    # and nothing happened: the ticket is open, no point credited
    db.expire_all()
    ticket = service.get_ticket(db, ticket_id=ticket_id)
    assert ticket is not None
    assert ticket.status == "open"
    assert loyalty.balance(db, customer_id=customer_id) == 0


def test_the_most_apology_points_the_api_grants_are_credited(
    admin: TestClient, db: Session
) -> None:
    customer_id, _ = make_customer(db)
    ticket_id = _open(db, customer_id)
    action = f"/admin/feedback/tickets/{ticket_id}/resolve"
    fields = page_form(admin.get(f"/admin/feedback/tickets/{ticket_id}").text, action=action)
    fields = typed(typed(fields, "resolution", "Resent"), "apology_points", "10,000")
    answer = post_form(admin, action, fields)
    assert answer.status_code == 303
    assert said_after(admin, answer) == f"Ticket {ticket_id} resolved with 10,000 apology points"
    db.expire_all()
    assert loyalty.balance(db, customer_id=customer_id) == 10_000


def test_an_empty_reply_is_pointed_out(admin: TestClient, db: Session) -> None:
    customer_id, _ = make_customer(db)
    ticket_id = _open(db, customer_id)
    action = f"/admin/feedback/tickets/{ticket_id}/resolve"
    fields = page_form(admin.get(f"/admin/feedback/tickets/{ticket_id}").text, action=action)
    answer = post_form(
        admin, action, typed(typed(fields, "resolution", "  "), "apology_points", "20")
    )
    assert answer.status_code == 422
    assert _field_error(answer.text, "resolution").startswith("Reply: write what was done")
    assert ("apology_points", "20") in page_form(answer.text, action=action)
    db.expire_all()
    assert service.get_ticket(db, ticket_id=ticket_id).status == "open"  # type: ignore[union-attr]


@pytest.mark.parametrize("points", [-1, 10_001])
def test_the_verb_grants_no_more_than_the_api(db: Session, points: int) -> None:
    customer_id, _ = make_customer(db)
    ticket_id = _open(db, customer_id)
    with pytest.raises(InvalidInput) as refused:
        service.resolve_ticket(
            db, ticket_id=ticket_id, resolution="Sorry", resolved_by="a", apology_points=points
        )
    assert refused.value.field == "apology_points"


@pytest.mark.parametrize("priority", ["99999999999999999999", "91", "-1", "abc", "1e3"])
def test_a_priority_filter_no_ticket_can_reach_is_pointed_out(
    admin: TestClient, db: Session, priority: str
) -> None:
    # given an open ticket
    _open(db, None)
    # when the list is filtered from a priority no ticket has, or from no number at all
    answer = admin.get("/admin/feedback/tickets", params={"priority": priority})
    # then the filter says what it takes, keeps what was typed and lists nothing
    assert answer.status_code == 422
    assert _field_error(answer.text, "priority") == (
        "A whole number from 0 to 90 (the highest priority a ticket has)"
    )
    assert f'name="priority" type="number" min="0" max="90" value="{priority}"' in answer.text
    assert "data-ticket=" not in answer.text


def test_a_priority_filter_lists_the_tickets_from_it(admin: TestClient, db: Session) -> None:
    ticket_id = _open(db, None)  # a complaint: priority 30
    assert f'data-ticket="{ticket_id}"' in admin.get("/admin/feedback/tickets?priority=30").text
    assert f'data-ticket="{ticket_id}"' not in admin.get("/admin/feedback/tickets?priority=31").text
    assert f'data-ticket="{ticket_id}"' in admin.get("/admin/feedback/tickets?priority=").text


def _panel_form(admin: TestClient, customer_id: str) -> tuple[str, list[tuple[str, str]]]:
    action = f"/admin/feedback/customers/{customer_id}/tickets"
    html = admin.get(f"/admin/feedback/customers/{customer_id}/panel").text
    return action, page_form(html, action=action)


def _htmx_post(admin: TestClient, action: str, fields: list[tuple[str, str]]) -> Any:
    body: dict[str, list[str]] = {}
    for name, value in fields:
        body.setdefault(name, []).append(value)
    return admin.post(action, data=body, headers={"HX-Request": "true"}, follow_redirects=False)


@pytest.mark.parametrize("htmx", [True, False])
def test_a_ticket_form_sent_twice_opens_one_ticket(
    admin: TestClient, db: Session, htmx: bool
) -> None:
    # given the Experience panel's form, filled in
    customer_id, _ = make_customer(db)
    action, fields = _panel_form(admin, customer_id)
    fields = typed(typed(fields, "subject", "Wrong size"), "body", "Wants a 42 instead")
    send = _htmx_post if htmx else post_form
    # when it is sent twice (a double click: the same form, the same token)
    first, second = send(admin, action, fields), send(admin, action, fields)
    # then one ticket is opened, and the second answer says the form was sent twice
    db.expire_all()
    tickets = service.customer_tickets(db, customer_id=customer_id)
    assert [(t.subject, t.body) for t in tickets] == [("Wrong size", "Wants a 42 instead")]
    said = second.text if htmx else said_after(admin, second)
    assert "opened already" in str(said)
    assert first.status_code == (200 if htmx else 303)
    # and the panel it answers offers a fresh form that opens another
    if htmx:
        again = page_form(first.text, action=action)
        assert again != fields
        assert _htmx_post(admin, action, typed(again, "subject", "Other")).status_code == 200
        db.expire_all()
        assert len(service.customer_tickets(db, customer_id=customer_id)) == 2


def test_a_refused_ticket_form_keeps_what_was_typed(admin: TestClient, db: Session) -> None:
    # given the Experience panel's form with a message, an issue and no subject
    customer_id, _ = make_customer(db)
    action, fields = _panel_form(admin, customer_id)
    fields = typed(typed(fields, "body", "Parcel never came"), "kind", "delivery_problem")
    # when it is sent from the 360 page (htmx)
    answer = _htmx_post(admin, action, fields)
    # then the panel comes back with the message at the subject and everything typed
    assert answer.status_code == 422
    assert _field_error(answer.text, "subject") == "Subject: write what the ticket is about"
    again = page_form(answer.text, action=action)
    assert ("body", "Parcel never came") in again
    assert ("kind", "delivery_problem") in again
    db.expire_all()
    assert service.customer_tickets(db, customer_id=customer_id) == []
    # and an issue that is none is pointed out at its field
    odd = _htmx_post(admin, action, typed(typed(again, "subject", "Late"), "kind", "bogus"))
    assert odd.status_code == 422
    assert _field_error(odd.text, "kind") == "Issue: choose one"


def test_a_refused_ticket_form_without_javascript_comes_back_as_typed(
    admin: TestClient, db: Session
) -> None:
    # given the Experience panel's form with a message, an issue, a channel and no subject
    customer_id, _ = make_customer(db)
    action, fields = _panel_form(admin, customer_id)
    fields = typed(typed(fields, "body", "Parcel never came"), "kind", "delivery_problem")
    fields = typed(fields, "channel", "email")
    # when a browser without JavaScript sends it (a plain form post, no htmx)
    answer = post_form(admin, action, fields)
    # then the form comes back in a page of its own, 422, with the message at the subject,
    # everything typed kept, and a way back to the customer
    assert answer.status_code == 422
    assert 'data-testid="signed-in-as"' in answer.text
    assert "Experience of Feedback Number" in answer.text
    assert f'href="/admin/customers/{customer_id}"' in answer.text
    assert _field_error(answer.text, "subject") == "Subject: write what the ticket is about"
    again = page_form(answer.text, action=action)
    assert ("body", "Parcel never came") in again
    assert ("kind", "delivery_problem") in again
    assert ("channel", "email") in again
    db.expire_all()
    assert service.customer_tickets(db, customer_id=customer_id) == []
    # and the same form, now with a subject, opens the ticket and goes back to the customer
    opened = post_form(admin, action, typed(again, "subject", "Where is it?"))
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/admin/customers/{customer_id}"
    assert str(said_after(admin, opened)).startswith("Ticket opened: Where is it? (due ")
    db.expire_all()
    tickets = service.customer_tickets(db, customer_id=customer_id)
    assert [(t.subject, t.body, t.kind, t.channel) for t in tickets] == [
        ("Where is it?", "Parcel never came", "delivery_problem", "email")
    ]
