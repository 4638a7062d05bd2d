"""The ticket queue's reads behind the admin page: filters by status, breach (an open ticket
past due counts before the job flags it), issue and priority, and a search that finds a ticket
by its customer's name or email, its words, or its order; a page of rows with the total."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from tests.feedback.factories import T0, delivered_order, frozen_clock, make_customer


def _ticket(db: Session, customer: str | None, kind: str, subject: str, **extra: str):  # type: ignore[no-untyped-def]
    return service.open_ticket(
        db,
        ticket=TicketIn(customer_id=customer, kind=kind, channel="email", subject=subject, **extra),  # type: ignore[arg-type]
    )


def test_filters_search_and_pages(db: Session) -> None:
    # given three tickets: one past due, one resolved, one fresh question
    clock = frozen_clock()
    customer, external = make_customer(db, email="ines.silva@example.com")
    order_id = delivered_order(db, external_id=external)
    late = _ticket(
        db, customer, "delivery_problem", "Parcel lost", body="Tracking stuck", order_id=order_id
    )
    done = _ticket(db, None, "complaint", "Rude driver")
    service.resolve_ticket(db, ticket_id=done.ticket_id, resolution="Apologised", resolved_by="a")
    clock.advance(timedelta(hours=30))
    fresh = _ticket(db, customer, "question", "Opening hours?")
    at = T0 + timedelta(hours=30)

    def ids(**filters: object) -> list[str]:
        total, rows = service.find_tickets(db, now=at, **filters)  # type: ignore[arg-type]
        assert total == len(rows)
        return [t.ticket_id for t in rows]

    # then open tickets come most urgent first, resolved ones only when asked
    assert ids() == [late.ticket_id, fresh.ticket_id]
    assert ids(status="resolved") == [done.ticket_id]
    assert sorted(ids(status=None)) == sorted([late.ticket_id, done.ticket_id, fresh.ticket_id])
    # breached: the open ticket past its due time, though no job has flagged it yet
    assert ids(breached=True) == [late.ticket_id]
    assert ids(breached=False) == [fresh.ticket_id]
    assert ids(kind="question") == [fresh.ticket_id]
    assert ids(min_priority=late.priority) == [late.ticket_id]
    # search: the customer's email or name, the message's words, the order
    assert ids(text="ines.silva@example.com") == [late.ticket_id, fresh.ticket_id]
    assert ids(text="Feedback") == [late.ticket_id, fresh.ticket_id]
    assert ids(text="tracking") == [late.ticket_id]
    assert ids(text=order_id) == [late.ticket_id]
    assert ids(text="nobody") == []
    # a page: the total counts every match
    total, rows = service.find_tickets(db, status=None, now=at, offset=1, limit=1)
    assert total == 3
    assert len(rows) == 1
    assert [t.ticket_id for t in service.customer_tickets(db, customer_id=customer)] == [
        fresh.ticket_id,
        late.ticket_id,
    ]
