"""A cancelled order gets no after-purchase survey: none is asked when the cancellation is
in before the invitation, one waiting to be sent is suppressed when the email would go out,
and one already sent stays as it is (its link still answers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.campaigns.producers.processor import PROCESSOR
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.events import service as events
from rapport.events.processors import GAP_PATIENCE, run_batch
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import SurveyIn
from rapport.platform import clock
from tests.campaigns.producers.flow import frozen
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth, command
from tests.feedback.factories import make_customer
from tests.orders import test_tracked_orders as tracked
from tests.orders.factories import order_body, seed_catalog

NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SURVEY = {
    "survey_id": "ces-purchase",
    "name": "CES after a purchase",
    "kind": "ces",
    "trigger": "after_purchase",
    "fatigue_days": 0,
}


@pytest.fixture
def shop(client: Any, db: Session, api_key: Any) -> dict[str, str]:
    frozen(NOON)
    seed_catalog(db)
    feedback.save_survey(db, survey=SurveyIn(**SURVEY))
    return auth(api_key("write", "read"))


def _place(client: Any, db: Session, headers: dict[str, str], order_id: str) -> str:
    """An order placed through the API by a new customer who consents to survey emails."""
    customer_id, _ = make_customer(db)
    body = order_body(order_id=order_id, customer_id=customer_id)
    placed = client.post("/v1/orders", json=body, headers=command(headers))
    assert placed.status_code == 201, placed.text
    return customer_id


def _cancel(client: Any, headers: dict[str, str], order_id: str) -> None:
    answer = client.post(
        f"/v1/orders/{order_id}/cancel", json={"reason": "changed mind"}, headers=command(headers)
    )
    assert answer.status_code == 200, answer.text


def _process(db: Session) -> None:
    """The invitations processor and the campaigns producers to the head of the log, as the
    worker runs them (the clock past GAP_PATIENCE, as time would pass for a worker)."""
    clock.set_clock(clock.FrozenClock(clock.now() + GAP_PATIENCE + timedelta(seconds=1)))
    wanted = ("feedback.invitations", PROCESSOR)
    for proc in [p for name in wanted for p in events.registered_processors() if p.name == name]:
        while run_batch(db, proc):
            pass


def _invitations(db: Session) -> dict[str, Invitation]:
    db.expire_all()
    return {i.order_id or "": i for i in db.scalars(select(Invitation))}


def _deliveries(db: Session) -> dict[str, tuple[str, str]]:
    db.expire_all()
    return {d.occasion: (d.status, d.reason) for d in db.scalars(select(Delivery))}


def test_an_order_cancelled_before_its_survey_is_asked_gets_none(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink
) -> None:
    # given two orders placed on the web, and one of them cancelled before the worker ran
    _place(client, db, shop, "O-KEPT")
    _place(client, db, shop, "O-CALLED-OFF")
    _cancel(client, shop, "O-CALLED-OFF")
    # when the worker invites to the after-purchase survey and sends what it queued
    _process(db)
    dispatch_batch(db, worker="test")
    # then only the order kept is asked about: the cancelled one has no invitation, no email
    assert sorted(_invitations(db)) == ["O-KEPT"]
    assert len(smtp_sink.messages) == 1
    assert "O-CALLED-OFF" not in smtp_sink.messages[0].text


def test_an_invitation_waiting_to_be_sent_is_withdrawn_when_its_order_is_cancelled(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink
) -> None:
    # given two orders whose survey invitations are made and queued, not sent yet
    _place(client, db, shop, "O-KEPT")
    _place(client, db, shop, "O-CALLED-OFF")
    _process(db)
    invitations = _invitations(db)
    assert sorted(invitations) == ["O-CALLED-OFF", "O-KEPT"]
    # when one order is cancelled, and only then the dispatcher sends
    _cancel(client, shop, "O-CALLED-OFF")
    dispatch_batch(db, worker="test")
    # then the cancelled order's invitation is suppressed, saying why; the other goes out
    assert len(smtp_sink.messages) == 1
    assert "O-KEPT" in smtp_sink.messages[0].text
    deliveries = _deliveries(db)
    withdrawn = deliveries[f"invitation:{invitations['O-CALLED-OFF'].invitation_id}"]
    assert withdrawn == ("suppressed", "survey withdrawn: order O-CALLED-OFF cancelled")
    assert deliveries[f"invitation:{invitations['O-KEPT'].invitation_id}"][0] == "sent"
    # and the worker running on sends nothing more
    _process(db)
    dispatch_batch(db, worker="test")
    assert len(smtp_sink.messages) == 1


def test_an_invitation_already_sent_stays_when_its_order_is_cancelled(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink
) -> None:
    # given an order whose survey invitation was emailed
    _place(client, db, shop, "O-SENT")
    _process(db)
    dispatch_batch(db, worker="test")
    assert len(smtp_sink.messages) == 1
    # when the order is cancelled afterwards
    _cancel(client, shop, "O-SENT")
    _process(db)
    dispatch_batch(db, worker="test")
    # then nothing more is sent, and the link the customer has still takes their answer
    assert len(smtp_sink.messages) == 1
    invitation = _invitations(db)["O-SENT"]
    answered = client.post(
        f"/v1/feedback/invitations/{invitation.invitation_id}/answer",
        json={"score": 6},
        headers=command(shop),
    )
    assert answered.status_code == 201, answered.text


def test_a_survey_is_not_asked_by_hand_about_a_cancelled_order(
    client: Any, db: Session, shop: dict[str, str]
) -> None:
    # given an order that was cancelled
    customer_id = _place(client, db, shop, "O-CALLED-OFF")
    _cancel(client, shop, "O-CALLED-OFF")
    # when someone asks the customer the survey about it through the API
    asked = client.post(
        "/v1/feedback/surveys/ces-purchase/invitations",
        json={"customer_id": customer_id, "order_id": "O-CALLED-OFF"},
        headers=command(shop),
    )
    # then the answer says the order was cancelled, and nobody is invited
    assert asked.status_code == 200, asked.text
    assert (asked.json()["invited"], asked.json()["reason"]) == (False, "order_cancelled")
    assert _invitations(db) == {}


def test_a_segment_order_cancelled_withdraws_the_invitation_waiting(
    client: Any, db: Session, smtp_sink: SmtpSink
) -> None:
    # given a shop tracking its orders with Segment, and a customer who consents to surveys
    frozen(tracked.NOW)
    seed_catalog(db, stock=50)
    feedback.save_survey(db, survey=SurveyIn(**SURVEY))
    customers.create_customer(
        db,
        customer=CustomerIn(
            external_id="C-100", email="c100@example.com", consents={"marketing_email": True}
        ),
    )
    secret = tracked.tracking_key(db)
    # whose Order Completed became an order, and its survey invitation is queued
    tracked.track(client, secret, "Order Completed", tracked.completed("W-S1"))
    tracked.process(db)
    _process(db)
    assert sorted(_invitations(db)) == ["W-S1"]
    # when the shop's Order Cancelled arrives before the email is sent
    tracked.track(client, secret, "Order Cancelled", {"order_id": "W-S1"})
    tracked.process(db)
    dispatch_batch(db, worker="test")
    # then no survey is emailed, and the delivery says why
    assert smtp_sink.messages == []
    (status,) = _deliveries(db).values()
    assert status == ("suppressed", "survey withdrawn: order W-S1 cancelled")
