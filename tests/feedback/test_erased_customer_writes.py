"""Nothing is written under an erased customer in feedback: a review naming their former
customer number is refused (not kept as a stranger's), and their ticket is not resolved."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Review, Ticket
from rapport.feedback.schemas import TicketIn
from rapport.flows import privacy
from tests.conftest import command
from tests.feedback.factories import in_catalogue, make_customer


def _count(db: Session, model: type, *where: object) -> int:
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_review_under_an_erased_customer_number_is_refused(client, api_key, db: Session) -> None:
    # given a customer known by the shop's number, erased
    in_catalogue(db, "WIN-00003")
    customer_id, number = make_customer(db)
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    key = api_key("write")
    # when a review names that number, as the shop knew them
    for ref in (number, customer_id):
        answer = client.post(
            "/v1/feedback/reviews",
            json={"customer_id": ref, "sku": "WIN-00003", "rating": 5, "text": "Back again"},
            headers=command(key),
        )
        # then it is refused, naming customer_id, and nothing is stored
        assert answer.status_code in (404, 422), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "was erased" in answer.json()["detail"]
        assert answer.json()["field"] == "customer_id", answer.json()
    db.expire_all()
    assert _count(db, Review) == 0
    assert _count(db, Event, Event.type == "review_submitted") == 0
    # while someone Rapport never knew may still review
    stranger = client.post(
        "/v1/feedback/reviews",
        json={"customer_id": "NEVER-SEEN-1", "sku": "WIN-00003", "rating": 4, "text": "Fine"},
        headers=command(key),
    )
    assert stranger.status_code == 201, stranger.text


def test_an_erased_customers_ticket_is_not_resolved(client, api_key, db: Session) -> None:
    # given an erased customer's open ticket
    customer_id, _ = make_customer(db)
    ticket = service.open_ticket(
        db,
        ticket=TicketIn(
            customer_id=customer_id, kind="complaint", channel="email", subject="Late", body="x"
        ),
    )
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    key = api_key("write")
    # when staff resolve it, with or without apology points
    for body in (
        {"resolution": "closed after erasure"},
        {"resolution": "closed after erasure", "apology_points": 50},
    ):
        answer = client.post(
            f"/v1/feedback/tickets/{ticket.ticket_id}/resolve", json=body, headers=command(key)
        )
        # then it is 404 "was erased" naming the ticket, and nothing is written
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "was erased" in answer.json()["detail"]
        assert answer.json()["field"] == "ticket_id", answer.json()
    db.expire_all()
    stored = db.get(Ticket, ticket.ticket_id)
    assert stored is not None
    assert (stored.status, stored.resolution, stored.resolved_at) == ("open", None, None)
    assert _count(db, Event, Event.type == "ticket_resolved") == 0
