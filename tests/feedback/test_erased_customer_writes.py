"""Nothing is written under an erased customer in feedback: a review naming their former
customer number is refused (not kept as a stranger's), and their ticket is not resolved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.models import Review, Ticket
from rapport.feedback.schemas import TicketIn
from rapport.feedback.tickets import flag_breached_tickets
from rapport.flows import privacy
from rapport.loyalty.models import LedgerTransaction
from rapport.platform import clock
from tests.conftest import auth, command
from tests.feedback.factories import in_catalogue, make_customer


def _count(db: Session, model: type, *where: object) -> int:
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_review_under_an_erased_customer_number_is_refused(client, api_key, db: Session) -> None:
    # given a customer known by the shop's number, erased
    in_catalogue(db, "WIN-00003")
    customer_id, number = make_customer(db)
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    key = api_key("write")
    # when a review names that number, as the shop knew them, or their Rapport id
    for ref, status, problem, code in (
        (number, 422, "validation-error", "suppressed"),
        (customer_id, 404, "not-found", None),
    ):
        answer = client.post(
            "/v1/feedback/reviews",
            json={"customer_id": ref, "sku": "WIN-00003", "rating": 5, "text": "Back again"},
            headers=command(key),
        )
        # then it is refused, naming customer_id, and nothing is stored: the former number is
        # 422 suppressed (a review would be kept as a stranger's), the Rapport id 404 (as every
        # endpoint naming an erased customer answers; docs/feedback.md, docs/api.md)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["type"] == f"https://rapport.dev/problems/{problem}", body
        assert (body["field"], body.get("code")) == ("customer_id", code), body
        assert "was erased" in body["detail"]
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


def test_erasure_closes_open_tickets_and_none_is_resolved_or_breached_later(
    client, api_key, db: Session
) -> None:
    # given a customer's two open tickets, the customer erased
    customer_id, _ = make_customer(db)
    tickets = [
        service.open_ticket(
            db,
            ticket=TicketIn(
                customer_id=customer_id, kind="complaint", channel="email", subject=s, body="x"
            ),
        ).ticket_id
        for s in ("Late", "Broken")
    ]
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo")
    # then the erasure closed them, writing no resolution and no event, out of the queue
    db.expire_all()
    for ticket_id in tickets:
        closed = db.get(Ticket, ticket_id)
        assert closed is not None
        assert (closed.status, closed.resolved_by, closed.resolution) == (
            "resolved",
            "erasure",
            None,
        )
    key = api_key("write", "read")
    queue = client.get("/v1/feedback/tickets", headers=auth(key)).json()
    assert not {t["ticket_id"] for t in queue} & set(tickets)
    # and one an earlier version left open (as it was before this erasure closed them)
    db.execute(update(Ticket).where(Ticket.ticket_id == tickets[1]).values(status="open"))
    db.execute(
        update(Ticket)
        .where(Ticket.ticket_id == tickets[1])
        .values(resolved_at=None, resolved_by=None)
    )
    db.commit()
    # when staff resolve either, with or without apology points
    for ticket_id in tickets:
        for body in (
            {"resolution": "closed after erasure"},
            {"resolution": "closed after erasure", "apology_points": 50},
        ):
            answer = client.post(
                f"/v1/feedback/tickets/{ticket_id}/resolve", json=body, headers=command(key)
            )
            # then it is 404 "was erased" naming the ticket, and nothing is written
            assert answer.status_code == 404, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert "was erased" in answer.json()["detail"]
            assert answer.json()["field"] == "ticket_id", answer.json()
    db.expire_all()
    left_open = db.get(Ticket, tickets[1])
    assert left_open is not None
    assert (left_open.status, left_open.resolution, left_open.resolved_at) == ("open", None, None)
    assert _count(db, Event, Event.type == "ticket_resolved") == 0
    assert _count(db, LedgerTransaction, LedgerTransaction.rule_id == "goodwill") == 0
    # and past their due time no breach is logged under the erased id (the one left open is
    # marked, so the check does not find it again)
    flag_breached_tickets(db, now=clock.now() + timedelta(days=30))
    assert _count(db, Event, Event.type == "ticket_breached") == 0
    db.expire_all()
    assert db.get(Ticket, tickets[1]).breached_at is not None  # type: ignore[union-attr]
