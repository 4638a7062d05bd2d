"""Feedback writes sent at the same moment: a ticket resolved once (one apology credit, one
``ticket_resolved``), an invitation answered once (the others 409 already answered), a held
review published once (one ``review_published``, the other moderators 409 naming who).
Threads let go at once, several rounds; on PostgreSQL the writes truly overlap, on SQLite they
take turns."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from rapport.events.models import Event
from rapport.feedback import service
from rapport.feedback.schemas import ReviewIn, TicketIn
from rapport.loyalty import service as loyalty
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.feedback.factories import delivered_order, make_customer, make_survey
from tests.orders.factories import run_at_once

ROUNDS = 5
AT_ONCE = 4


def _events(url: str, kind: str, **where: str) -> int:
    with open_session(url) as db:
        rows = db.scalars(select(Event).where(Event.type == kind))
        return sum(1 for e in rows if all(e.properties.get(k) == v for k, v in where.items()))


def _refusing(url: str, write: Callable[..., object]) -> Callable[[], str]:
    def call() -> str:
        with open_session(url) as db:
            try:
                write(db)
            except Conflict:
                return "409"
            return "200"

    return call


def test_a_ticket_resolved_at_once_credits_its_apology_once(committed_url) -> None:
    with open_session(committed_url) as db:
        customer, _ = make_customer(db)
    for round_ in range(ROUNDS):
        # given an open ticket of the customer
        with open_session(committed_url) as db:
            ticket_id = service.open_ticket(
                db,
                ticket=TicketIn(
                    customer_id=customer, kind="complaint", channel="email", subject="Late"
                ),
            ).ticket_id

        # when it is resolved several times at once, with 1,000 apology points each
        def resolve(db, ticket_id: str = ticket_id) -> object:
            return service.resolve_ticket(
                db,
                ticket_id=ticket_id,
                resolution="Sorry",
                resolved_by="ana",
                apology_points=1000,
            )

        answers = run_at_once(*[_refusing(committed_url, resolve)] * AT_ONCE)

        # then one resolution is made, the others refused, one credit and one event
        assert sorted(answers) == ["200"] + ["409"] * (AT_ONCE - 1), (round_, answers)
        with open_session(committed_url) as db:
            assert loyalty.balance(db, customer_id=customer) == 1000 * (round_ + 1)
        assert _events(committed_url, "ticket_resolved", ticket_id=ticket_id) == 1


def test_an_invitation_answered_at_once_is_answered_once(committed_url) -> None:
    with open_session(committed_url) as db:
        make_survey(db)
    for round_ in range(ROUNDS):
        # given an invitation
        with open_session(committed_url) as db:
            customer, _ = make_customer(db)
            invitation = service.invite(
                db,
                survey_id="nps-delivery",
                customer_id=customer,
                moment=service.Occasion(source_key=f"k{round_}", stage="manual"),
            ).invitation
            assert invitation is not None
            invitation_id = invitation.invitation_id

        # when it is answered several times at once
        def answer(db, invitation_id: str = invitation_id) -> object:
            return service.answer_invitation(db, invitation_id=invitation_id, score_value=9)

        answers = run_at_once(*[_refusing(committed_url, answer)] * AT_ONCE)

        # then one answer is recorded and the others are 409 already answered
        assert sorted(answers) == ["200"] + ["409"] * (AT_ONCE - 1), (round_, answers)
        assert _events(committed_url, "survey_answered") == round_ + 1


def test_a_held_review_published_at_once_is_announced_once(committed_url) -> None:
    with open_session(committed_url) as db:
        customer, external = make_customer(db)
    for round_ in range(ROUNDS):
        # given a review held by screening
        with open_session(committed_url) as db:
            sku = f"SKU-R{round_}"
            delivered_order(db, external_id=external, sku=sku)
            held = service.submit_review(
                db,
                review=ReviewIn(
                    customer_id=customer, sku=sku, rating=5, text="Terrible, broken, awful"
                ),
            )
            assert held.status == "flagged"
            review_id = held.review_id

        # when several moderators publish it at once, each under their own name
        def publisher(name: str, review_id: str = review_id) -> Callable[[], str]:
            def call() -> str:
                with open_session(committed_url) as db:
                    try:
                        service.moderate_review(
                            db, review_id=review_id, decision="publish", moderator=name
                        )
                    except Conflict as refused:
                        return refused.detail
                    return "200"

            return call

        answers = run_at_once(*[publisher(f"mod{i}") for i in range(AT_ONCE)])

        # then one publishes it and logs review_published once; the others get 409 saying who
        # published it, and the review keeps that moderator's name
        assert answers.count("200") == 1
        with open_session(committed_url) as db:
            review = service.get_review(db, review_id=review_id)
            assert review is not None
            winner = review.moderated_by
            assert review.status == "published"
        assert winner == f"mod{answers.index('200')}"
        for answer in answers:
            if answer != "200":
                assert answer.startswith(f"Review {review_id} is already published by {winner}")
        assert _events(committed_url, "review_published", review_id=review_id) == 1
