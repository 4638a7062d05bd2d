"""Tickets: priority from issue, tier and value; an SLA due time for everyone, sooner for
better tiers; the queue's order; breach reporting; apology points through the ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.earning import processor as earning_processor
from rapport.platform.errors import Conflict
from tests.conftest import auth, command
from tests.feedback.factories import T0, delivered_order, frozen_clock, make_customer


def _gold_customer(db) -> tuple[str, str]:
    """A customer whose spend (1,600.00) puts them in the default ladder's Gold tier, and
    their order."""
    customer, external = make_customer(db)
    order_id = delivered_order(db, external_id=external, total_minor=160_000)
    events = list(db.scalars(select(Event).where(Event.customer_id == customer)))
    earning_processor.process_loyalty_events(db, events)
    db.commit()
    assert loyalty.member_benefits(db, customer_id=customer).tier_id == "gold"
    return customer, order_id


def _ticket(db, kind: str = "complaint", customer_id: str | None = None, **extra):
    return service.open_ticket(
        db,
        ticket=TicketIn(
            customer_id=customer_id, kind=kind, channel="email", subject="Help", **extra
        ),
    )


@pytest.mark.parametrize(
    ("_case", "kind", "level", "value", "priority", "hours"),
    [
        ("question, standard", "question", "standard", 0, 10, 72),
        ("complaint, standard", "complaint", "standard", 0, 30, 24),
        ("return problem, priority", "return_problem", "priority", 0, 40, 24),
        ("delivery problem, dedicated", "delivery_problem", "dedicated", 0, 70, 6),
        ("complaint, valuable customer", "complaint", "standard", 160_000, 45, 24),
        ("value counts up to 20", "question", "standard", 10_000_000, 30, 72),
    ],
)
def test_priority_and_sla(
    _case: str, kind: str, level: str, value: int, priority: int, hours: int
) -> None:
    assert service.prioritise(kind, level, value, "EUR")[0] == priority
    assert service.sla_due(kind, level, T0) == T0 + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("currency", "value", "reasons"),
    [
        ("EUR", 49_999, ["question +10"]),
        ("EUR", 50_000, ["question +10", "customer value €500.00 +5"]),
        ("JPY", 499, ["question +10"]),
        ("JPY", 60_000, ["question +10", "customer value JP¥60,000 +20"]),
        ("JPY", 500, ["question +10", "customer value JP¥500 +5"]),
        ("KWD", 499_999, ["question +10"]),
        ("KWD", 500_000, ["question +10", "customer value KWD500.000 +5"]),
    ],
)
def test_value_counts_from_500_in_the_currencys_own_units(
    currency: str, value: int, reasons: list[str]
) -> None:
    assert service.prioritise("question", "standard", value, currency)[1] == reasons


def test_a_customers_value_is_counted_and_shown_in_the_shops_currency_only(db) -> None:
    # given a shop in euros and a customer with one order of ¥60,000 and one of €120.00
    frozen_clock()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, total_minor=60_000, currency="JPY")
    delivered_order(db, external_id=external, total_minor=12_000)
    # when they open a ticket
    ticket = _ticket(db, kind="question", customer_id=customer)
    # then only the euros count: €120.00, short of 500.00, adds nothing (¥60,000 is no €600)
    assert ticket.customer_value_minor == 12_000
    assert ticket.priority == 10
    assert ticket.priority_reasons == ["question +10"]


def test_the_ticket_page_shows_the_value_in_the_shops_currency(admin, db) -> None:
    # given a shop in euros and a customer whose only order is ¥60,000
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, total_minor=60_000, currency="JPY")
    ticket = _ticket(db, kind="question", customer_id=customer)
    # when the ticket's page is opened, then it shows no €600.00 they never spent
    page = admin.get(f"/admin/feedback/tickets/{ticket.ticket_id}").text
    assert "<dt>Customer value</dt><dd>€0.00</dd>" in page


def test_a_shop_in_yen_counts_its_customers_value_in_yen(db) -> None:
    # given a shop in yen and a customer with one order of ¥60,000 and one of €1,000.00
    frozen_clock()
    loyalty.configure_program(db, currency="JPY")
    db.commit()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, total_minor=60_000, currency="JPY")
    delivered_order(db, external_id=external, total_minor=100_000)
    # when they open a ticket
    ticket = _ticket(db, kind="question", customer_id=customer)
    # then their value is ¥60,000, over ¥500 four times over and more: +20, said in yen
    assert ticket.customer_value_minor == 60_000
    assert ticket.priority_reasons == ["question +10", "customer value JP¥60,000 +20"]


def test_a_ticket_keeps_its_value_with_the_currency_it_was_counted_in(admin, db) -> None:
    # given a shop in yen and a customer whose only order is ¥60,000, with a ticket
    loyalty.configure_program(db, currency="JPY")
    db.commit()
    customer, external = make_customer(db)
    delivered_order(db, external_id=external, total_minor=60_000, currency="JPY")
    ticket = _ticket(db, kind="question", customer_id=customer)
    assert (ticket.customer_value_minor, ticket.customer_value_currency) == (60_000, "JPY")
    # when the shop moves to euros, then the ticket still says yen, not €600.00
    loyalty.configure_program(db, currency="EUR")
    db.commit()
    page = admin.get(f"/admin/feedback/tickets/{ticket.ticket_id}").text
    assert "<dt>Customer value</dt><dd>JP¥60,000</dd>" in page


def test_gold_members_come_first_and_are_due_sooner(db) -> None:
    # given a gold member and an anonymous customer with the same complaint
    frozen_clock()
    gold, order_id = _gold_customer(db)
    anonymous = _ticket(db)
    question = _ticket(db, kind="question")
    gold_ticket = _ticket(db, customer_id=gold, order_id=order_id)
    # then the gold member's ticket is first, due in 6 hours instead of 24
    assert gold_ticket.tier == "gold"
    assert gold_ticket.support_level == "dedicated"
    assert gold_ticket.priority == 30 + 40 + 15
    assert gold_ticket.priority_reasons == [
        "complaint +30",
        "dedicated support +40",
        "customer value €1,600.00 +15",
    ]
    assert gold_ticket.sla_due_at == T0 + timedelta(hours=6)
    assert anonymous.sla_due_at == T0 + timedelta(hours=24)
    assert service.ticket_queue(db) == [gold_ticket, anonymous, question]


def test_equal_priorities_queue_by_sla_due_time(db) -> None:
    clock = frozen_clock()
    later = _ticket(db, kind="return_problem")  # due in 48 h
    clock.advance(timedelta(hours=1))
    sooner = _ticket(db, kind="return_problem")  # due in 48 h from an hour later
    question = _ticket(db, kind="question")
    assert service.ticket_queue(db) == [later, sooner, question]


def test_resolution_grants_apology_points_recorded_on_the_ticket(db) -> None:
    clock = frozen_clock()
    customer, _ = make_customer(db)
    ticket = _ticket(db, customer_id=customer)
    clock.advance(timedelta(hours=30))
    # when resolved with 200 apology points
    resolved = service.resolve_ticket(
        db, ticket_id=ticket.ticket_id, resolution="Refunded", resolved_by="ana", apology_points=200
    )
    # then the points are in the ledger and the transaction is on the ticket
    assert loyalty.balance(db, customer_id=customer) == 200
    assert resolved.apology_points == 200
    movement = loyalty.statement(db, customer_id=customer)[0]
    assert movement.transaction_id == resolved.apology_transaction_id
    assert movement.reason == f"Apology for ticket {ticket.ticket_id}"
    # and the resolution event says it was late (30 h > 24 h)
    event = db.scalar(select(Event).where(Event.type == "ticket_resolved"))
    assert event.properties["within_sla"] is False
    assert event.properties["resolution_hours"] == 30.0
    with pytest.raises(Conflict):
        service.resolve_ticket(db, ticket_id=ticket.ticket_id, resolution="x", resolved_by="ana")


def test_tickets_an_erasure_closed_are_left_out_of_the_sla_report(client, api_key, db) -> None:
    # given a customer's ticket resolved late, and another customer's open ticket erased
    clock = frozen_clock()
    kept, _ = make_customer(db)
    erased, _ = make_customer(db)
    late = _ticket(db, customer_id=kept)
    _ticket(db, customer_id=erased)
    clock.advance(timedelta(hours=2))
    privacy.erase_customer(db, customer_id=erased, requested_by="dpo")
    clock.advance(timedelta(hours=30))
    service.resolve_ticket(db, ticket_id=late.ticket_id, resolution="ok", resolved_by="a")

    # when the SLA report is read, by the service and over the API
    (line,) = service.sla_report(db)
    answer = client.get("/v1/feedback/tickets/sla", headers=auth(api_key("read")))

    # then only the late one counts: the erased ticket is neither resolved nor in time
    assert (line.tickets, line.resolved, line.resolved_in_time, line.breached) == (1, 1, 0, 1)
    assert answer.status_code == 200, answer.text
    assert [(r["tickets"], r["resolved"], r["resolved_in_time"]) for r in answer.json()] == [
        (1, 1, 0)
    ]


def test_sla_report_counts_breaches_and_overdue_tickets(db) -> None:
    clock = frozen_clock()
    in_time = _ticket(db)
    late = _ticket(db)
    _ticket(db)  # stays open
    _ticket(db, kind="question")  # open, not yet due
    clock.advance(timedelta(hours=2))
    service.resolve_ticket(db, ticket_id=in_time.ticket_id, resolution="ok", resolved_by="a")
    clock.advance(timedelta(hours=30))
    service.resolve_ticket(db, ticket_id=late.ticket_id, resolution="ok", resolved_by="a")
    report = {line.key: line for line in service.sla_report(db)}
    complaint = report["complaint / standard"]
    assert (
        complaint.tickets,
        complaint.resolved,
        complaint.resolved_in_time,
        complaint.breached,
        complaint.open_overdue,
    ) == (3, 2, 1, 2, 1)
    question = report["question / standard"]
    assert (question.tickets, question.breached, question.open_overdue) == (1, 0, 0)


@pytest.mark.parametrize("case", ["no such order", "another customer's", "theirs, no customer"])
def test_a_ticket_names_only_the_customers_own_order(client, api_key, db, case: str) -> None:
    # given a customer with an order, and another customer with theirs
    frozen_clock()
    customer, external = make_customer(db)
    mine = delivered_order(db, external_id=external)
    _, other_external = make_customer(db)
    others = delivered_order(db, external_id=other_external)
    body = {"kind": "delivery_problem", "channel": "web", "subject": "Where is it?"}
    body |= {
        "no such order": {"customer_id": customer, "order_id": "NOPE-1"},
        "another customer's": {"customer_id": customer, "order_id": others},
        "theirs, no customer": {"order_id": mine},
    }[case]
    # when a ticket names that order
    answer = client.post("/v1/feedback/tickets", json=body, headers=command(api_key("write")))
    # then it is 422 naming order_id, and no ticket is opened
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "order_id"
    assert body["order_id"] in answer.json()["detail"]
    db.expire_all()
    assert service.find_tickets(db, status=None)[0] == 0
    # and naming their own order opens it
    fine = {**body, "customer_id": customer, "order_id": mine}
    opened = client.post("/v1/feedback/tickets", json=fine, headers=command(api_key("write")))
    assert opened.status_code == 201, opened.text
    assert opened.json()["order_id"] == mine
