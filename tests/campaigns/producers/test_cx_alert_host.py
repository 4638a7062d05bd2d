"""A CX alert links staff to the feedback pages under RAPPORT_PUBLIC_BASE_URL as it is when the
alert goes out: the delivery keeps the path, not an address built when it was queued (one
queued before this version keeps the address it stored)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.feedback import service as feedback
from rapport.feedback.schemas import ResponseIn, SurveyIn, TargetIn
from rapport.platform.settings import get_settings
from tests.campaigns.delivery.factories import make_endpoint
from tests.campaigns.producers.flow import frozen
from tests.campaigns.producers.test_service_messages import SURVEY
from tests.campaigns.producers.test_survey_cancellations import NOON, _process
from tests.campaigns.receivers import SmtpSink, WebhookReceiver

NEW_HOST = "https://cx.shop.example"


@pytest.fixture
def queued_alert(
    db: Session, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> list[Delivery]:
    """A missed NPS target's alert queued (one email, one webhook) while the shop was reached
    at http://testserver: its deliveries."""
    monkeypatch.setenv("RAPPORT_CX_ALERT_EMAILS", "cx@example.org")
    monkeypatch.setenv("RAPPORT_CX_ALERT_WEBHOOK", "Ops chat")
    get_settings.cache_clear()
    frozen(NOON)
    endpoint = make_endpoint(db, url=webhook_receiver.url)
    endpoint.name = "Ops chat"
    feedback.save_survey(db, survey=SurveyIn(**SURVEY))
    feedback.set_target(db, target=TargetIn(kind="nps", scope="all", target=40, min_responses=1))
    feedback.record_response(db, response=ResponseIn(survey_id="nps-visit", score=0))
    assert len(feedback.check_targets(db)) == 1
    _process(db)
    deliveries = list(db.scalars(select(Delivery).order_by(Delivery.id)))
    assert [d.status for d in deliveries] == ["queued", "queued"]
    return deliveries


def _move(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_PUBLIC_BASE_URL", f"{NEW_HOST}/")
    get_settings.cache_clear()


def test_the_cx_alert_links_to_the_host_configured_when_it_is_sent(
    db: Session,
    queued_alert: list[Delivery],
    smtp_sink: SmtpSink,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an alert queued while the shop was reached at http://testserver
    # when the shop moves to a new address before the alert goes out
    _move(monkeypatch)
    dispatch_batch(db, worker="test")
    # then the email and the webhook link to the feedback pages at the new address only
    [message] = smtp_sink.messages
    assert f"{NEW_HOST}/admin/feedback" in message.html
    assert "testserver" not in message.html
    [request] = webhook_receiver.requests
    payload = request.json()
    assert f"{NEW_HOST}/admin/feedback" in payload["body"]
    assert payload["context"]["admin_url"] == f"{NEW_HOST}/admin/feedback"
    assert "testserver" not in json.dumps(payload)
    # and the deliveries kept the path, not an address
    for delivery in queued_alert:
        db.refresh(delivery)
        assert delivery.status == "sent"
        assert delivery.context["admin_path"] == "/admin/feedback"
        assert "admin_url" not in delivery.context


def test_an_alert_queued_by_an_earlier_version_keeps_the_address_it_stored(
    db: Session,
    queued_alert: list[Delivery],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an alert email queued by an earlier version, which stored the address
    email = queued_alert[0]
    context = {k: v for k, v in email.context.items() if k != "admin_path"}
    email.context = {**context, "admin_url": "http://old.example/admin/feedback"}
    db.flush()
    # when it is sent after the shop moved
    _move(monkeypatch)
    dispatch_batch(db, worker="test")
    # then it still links where it said
    [message] = smtp_sink.messages
    assert "http://old.example/admin/feedback" in message.html
