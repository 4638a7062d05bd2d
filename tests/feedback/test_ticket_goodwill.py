"""A ticket's apology points are goodwill: counted in the customer's goodwill window with the
customer page's grants, and refused beyond it (409 naming apology_points, the ticket left
open), over the service, the API and with two tickets resolved at once."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Ticket
from rapport.feedback.schemas import TicketIn
from rapport.loyalty import service as loyalty
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.conftest import command
from tests.feedback.factories import frozen_clock, make_customer
from tests.feedback.test_admin_ticket_forms import _field_error
from tests.orders.factories import run_at_once
from tests.platform.admin_forms import page_form, post_form, typed


def _ticket(db: Session, customer_id: str) -> str:
    return service.open_ticket(
        db,
        ticket=TicketIn(customer_id=customer_id, kind="complaint", channel="email", subject="Late"),
    ).ticket_id


def _resolve(db: Session, ticket_id: str, points: int) -> Ticket:
    return service.resolve_ticket(
        db, ticket_id=ticket_id, resolution="Sorry", resolved_by="ana", apology_points=points
    )


def test_apology_points_count_in_the_goodwill_window(db: Session) -> None:
    # given a window of 1,000 points, 600 of them given from the customer page
    frozen_clock()
    loyalty.configure_program(db, goodwill_window_points=1_000)
    customer_id, _ = make_customer(db)
    loyalty.give_goodwill(db, customer_id=customer_id, points=600, reason="Late", actor="ops")
    ticket_id = _ticket(db, customer_id)
    # when the ticket is resolved with 500 apology points
    with pytest.raises(Conflict) as refused:
        _resolve(db, ticket_id, 500)
    # then it is refused naming apology_points, saying what is left, and the ticket stays open
    assert refused.value.field == "apology_points"
    assert "600 given in the last 30 days, so 400 more can be given now" in refused.value.detail
    assert refused.value.extra["goodwill_left"] == 400
    db.expire_all()
    ticket = db.get(Ticket, ticket_id)
    assert ticket is not None
    assert (ticket.status, ticket.apology_points, ticket.resolved_at) == ("open", 0, None)
    assert db.scalar(select(Event).where(Event.type == "ticket_resolved")) is None
    assert loyalty.balance(db, customer_id=customer_id) == 600
    # and resolved with what is left, the points are goodwill by the agent, in the window
    resolved = _resolve(db, ticket_id, 400)
    assert (resolved.status, resolved.apology_points) == ("resolved", 400)
    room = loyalty.goodwill_room(db, customer_id=customer_id)
    assert (room.given, room.left) == (1_000, 0)
    movement = loyalty.statement(db, customer_id=customer_id)[0]
    assert movement.transaction_id == resolved.apology_transaction_id
    assert movement.reason == f"Apology for ticket {ticket_id}"
    # and the customer page's goodwill now finds the window used up by the apology too
    with pytest.raises(Conflict):
        loyalty.give_goodwill(db, customer_id=customer_id, points=1, reason="x", actor="ops")


def test_apology_points_beyond_the_window_are_409_over_the_api(
    client: TestClient, db: Session, api_key
) -> None:
    frozen_clock()
    loyalty.configure_program(db, goodwill_window_points=500)
    customer_id, _ = make_customer(db)
    ticket_id = _ticket(db, customer_id)
    answer = client.post(
        f"/v1/feedback/tickets/{ticket_id}/resolve",
        json={"resolution": "Sorry", "apology_points": 501},
        headers=command(api_key("write")),
    )
    assert answer.status_code == 409, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "apology_points"
    assert "so 500 more can be given now; the window never holds 501" in answer.json()["detail"]
    db.expire_all()
    assert db.get(Ticket, ticket_id).status == "open"  # type: ignore[union-attr]


def test_the_ticket_page_says_what_the_window_leaves_and_keeps_the_reply(
    admin: TestClient, db: Session
) -> None:
    frozen_clock()
    loyalty.configure_program(db, goodwill_window_points=300)
    customer_id, _ = make_customer(db)
    ticket_id = _ticket(db, customer_id)
    action = f"/admin/feedback/tickets/{ticket_id}/resolve"
    fields = page_form(admin.get(f"/admin/feedback/tickets/{ticket_id}").text, action=action)
    answer = post_form(
        admin, action, typed(typed(fields, "resolution", "Resent"), "apology_points", "500")
    )
    assert answer.status_code == 422
    assert "so 300 more can be given now" in _field_error(answer.text, "apology_points")
    assert ("resolution", "Resent") in page_form(answer.text, action=action)
    db.expire_all()
    assert db.get(Ticket, ticket_id).status == "open"  # type: ignore[union-attr]


def test_two_tickets_resolved_at_once_do_not_pass_the_window_together(
    committed_url: str,
) -> None:
    for round_ in range(3):
        # given a customer with two open tickets and a window room for one apology
        with open_session(committed_url) as db:
            loyalty.configure_program(db, goodwill_window_points=1_500)
            customer_id, _ = make_customer(db)
            loyalty.earn(db, customer_id=customer_id, points=10, reason="Order")
            tickets = [_ticket(db, customer_id), _ticket(db, customer_id)]

        def resolve(ticket_id: str) -> str:
            with open_session(committed_url) as db:
                try:
                    _resolve(db, ticket_id, 1_000)
                except Conflict as refused:
                    return f"409 {refused.field}"
                return "200"

        # when both are resolved at the same moment with 1,000 apology points each
        answers = run_at_once(*[lambda t=t: resolve(t) for t in tickets])
        # then one is resolved with its points, the other refused and still open
        assert sorted(answers) == ["200", "409 apology_points"], (round_, answers)
        with open_session(committed_url) as db:
            assert loyalty.balance(db, customer_id=customer_id) == 1_010
            assert loyalty.goodwill_room(db, customer_id=customer_id).given == 1_000
            statuses = sorted(db.get(Ticket, t).status for t in tickets)  # type: ignore[union-attr]
            assert statuses == ["open", "resolved"]
            assert loyalty.invariant_violations(db) == []
