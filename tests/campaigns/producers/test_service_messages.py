"""Survey invitations, apologies and CX alerts now deliver: the invitation is an email with
the signed link to the survey page (only while the survey's consent stands), a ticket resolved
with apology points is an email saying how many, and a score below its target is an email to
the staff addresses (every admin user when none are configured) and the webhook named for
alerts, once a day; a control group the retailer gives a system campaign holds customers out."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.producers.messages import system_campaign
from rapport.customers import service as customers
from rapport.feedback import service as feedback
from rapport.feedback.schemas import ResponseIn, SurveyIn, TargetIn, TicketIn
from rapport.feedback.surveys import links
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.settings import get_settings
from tests.campaigns.conftest import TEST_SECRET
from tests.campaigns.delivery.factories import make_customer, make_endpoint
from tests.campaigns.producers.flow import frozen, run_worker
from tests.campaigns.receivers import SmtpSink, WebhookReceiver
from tests.feedback.factories import delivered_order, in_stores
from tests.feedback.factories import make_customer as make_feedback_customer

SURVEY = {"survey_id": "nps-visit", "name": "NPS", "kind": "nps", "trigger": "manual"}


def _invite(db, customer_id: str, source_key: str, order_id: str | None = None) -> str:  # type: ignore[no-untyped-def]
    decision = feedback.invite(
        db,
        survey_id="nps-visit",
        customer_id=customer_id,
        moment=feedback.Occasion(source_key=source_key, stage="manual", order_id=order_id),
    )
    assert decision.invitation is not None, decision.reason
    return decision.invitation.invitation_id


def test_a_survey_invitation_is_an_email_with_its_link(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a survey, a customer invited to it, and one who withdrew the survey's consent
    # (marketing email) between the invitation and the worker
    frozen()
    with open_session(committed_url) as db:
        feedback.save_survey(db, survey=SurveyIn(**SURVEY))
        asked, asked_external = make_feedback_customer(db, email="asked@example.org")
        order_id = delivered_order(db, external_id=asked_external)
        withdrew = make_customer(db, email="withdrew@example.org")
        db.commit()
        invitation_id = _invite(db, asked, "manual:1", order_id)
        _invite(db, withdrew, "manual:2")
        customers.set_consent(
            db, customer_id=withdrew, purpose="marketing_email", granted=False, source="test"
        )
    # when the worker runs
    run_worker(committed_url)
    # then the invited customer has an email whose link opens their invitation's survey page
    assert [m.to for m in smtp_sink.messages] == ["asked@example.org"]
    (mail,) = smtp_sink.messages
    assert mail.subject == "How did we do? Tell us in one minute"
    assert f"How was your order {order_id}?" in mail.text
    link = links.url(invitation_id, secret=TEST_SECRET, base_url="http://testserver")
    assert f'href="{link}"' in mail.html
    token = link.rsplit("/s/", 1)[1]
    assert links.verify(token, secret=get_settings().session_secret()) == invitation_id
    assert "The link works until 2026-03-19." in mail.text


def test_a_ticket_resolved_with_apology_points_says_so(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given two resolved tickets: one with 200 apology points, one without
    frozen()
    with open_session(committed_url) as db:
        customer = make_customer(db, email="sorry@example.org", consents={})
        customers.get_customer(db, customer_id=customer).external_id = "SORRY-1"  # type: ignore[union-attr]
        order_id = delivered_order(db, external_id="SORRY-1")  # a ticket names their order
        db.commit()
        for points in (200, 0):
            ticket = feedback.open_ticket(
                db,
                ticket=TicketIn(
                    customer_id=customer,
                    order_id=order_id,
                    kind="complaint",
                    channel="web",
                    subject="Broken glass",
                ),
            )
            feedback.resolve_ticket(
                db,
                ticket_id=ticket.ticket_id,
                resolution="Refunded",
                resolved_by="agent",
                apology_points=points,
            )
    # when the worker runs
    run_worker(committed_url)
    # then one apology email (a service message: no marketing consent needed) names the points
    (mail,) = smtp_sink.to("sorry@example.org")
    assert mail.subject == "Sorry: we've added 200 points to your account"
    assert f"about your order {order_id}" in mail.text


@pytest.mark.parametrize("configured", [True, False])
def test_a_score_below_target_alerts_staff_once_a_day(
    committed_url: str,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    configured: bool,
) -> None:
    # given staff addresses configured (or none, and two admin users), an NPS target of 40
    # for a store and answers that give 0
    if configured:
        monkeypatch.setenv("RAPPORT_CX_ALERT_EMAILS", "cx@example.org, ops@example.org")
        get_settings.cache_clear()
    frozen()
    with open_session(committed_url) as db:
        platform.create_admin_user(db, email="admin1@example.org", password="a-long-password-1")
        platform.create_admin_user(db, email="admin2@example.org", password="a-long-password-2")
        feedback.save_survey(db, survey=SurveyIn(**SURVEY))
        in_stores(db, "st-1")
        feedback.set_target(
            db,
            target=TargetIn(
                kind="nps", scope="store", scope_value="st-1", target=40, min_responses=4
            ),
        )
        for score in (10, 9, 3, 2):
            feedback.record_response(
                db, response=ResponseIn(survey_id="nps-visit", score=score, store_id="st-1")
            )
        # when the targets are checked twice the same day and the worker runs
        assert len(feedback.check_targets(db)) == 1
        assert feedback.check_targets(db) == []
    run_worker(committed_url)
    run_worker(committed_url)
    # then each staff address got one alert naming the score, the target and the store
    expected = (
        ["cx@example.org", "ops@example.org"]
        if configured
        else ["admin1@example.org", "admin2@example.org"]
    )
    assert sorted(m.to for m in smtp_sink.messages) == expected
    mail = smtp_sink.messages[0]
    assert mail.subject == "CX alert: NPS 0.0 is below its target 40.0 (store st-1)"
    assert "http://testserver/admin/feedback" in mail.html
    with open_session(committed_url) as db:
        purposes = db.scalars(
            select(Campaign.purpose)
            .join(Delivery, Delivery.campaign_id == Campaign.id)
            .where(Campaign.key == "feedback.cx_alert")
        ).all()
        assert purposes == ["staff", "staff"]


def test_a_cx_alert_also_goes_to_the_webhook_the_setting_names(
    committed_url: str,
    smtp_sink: SmtpSink,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a webhook endpoint named for alerts and one staff address
    monkeypatch.setenv("RAPPORT_CX_ALERT_EMAILS", "cx@example.org")
    monkeypatch.setenv("RAPPORT_CX_ALERT_WEBHOOK", "Ops chat")
    get_settings.cache_clear()
    frozen()
    with open_session(committed_url) as db:
        endpoint = make_endpoint(db, url=webhook_receiver.url)
        endpoint.name = "Ops chat"
        feedback.save_survey(db, survey=SurveyIn(**SURVEY))
        feedback.set_target(
            db, target=TargetIn(kind="nps", scope="all", target=40, min_responses=1)
        )
        feedback.record_response(db, response=ResponseIn(survey_id="nps-visit", score=0))
        # when a target is missed and the worker runs
        assert len(feedback.check_targets(db)) == 1
    run_worker(committed_url)
    # then the staff address got the email and the endpoint one signed request
    assert [m.to for m in smtp_sink.messages] == ["cx@example.org"]
    (request,) = webhook_receiver.requests
    payload = request.json()
    assert payload["purpose"] == "staff"
    assert payload["campaign"]["key"] == "feedback.cx_alert.webhook"
    assert "NPS -100.0 is below its target 40.0 (the whole business)" in json.dumps(payload)


def test_a_control_group_on_a_system_campaign_holds_customers_out(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given the apology campaign with a 90% control group and ten customers given points
    frozen()
    with open_session(committed_url) as db:
        people = [make_customer(db, email=f"p{n}@example.org") for n in range(10)]
        db.commit()
        campaign = system_campaign(db, "service.apology")
        campaign.control_percent = 90
        db.commit()
        campaign_id = campaign.id
        for customer in people:
            ticket = feedback.open_ticket(
                db,
                ticket=TicketIn(
                    customer_id=customer, kind="complaint", channel="web", subject="Late"
                ),
            )
            feedback.resolve_ticket(
                db,
                ticket_id=ticket.ticket_id,
                resolution="Sorry",
                resolved_by="agent",
                apology_points=50,
            )
    # when the worker runs
    run_worker(committed_url)
    # then exactly the customers outside the stable control group were emailed
    treated = sorted(
        f"p{n}@example.org"
        for n, customer in enumerate(people)
        if not in_control_group(campaign_id, customer, 90)
    )
    assert sorted(m.to for m in smtp_sink.messages) == treated
    with open_session(committed_url) as db:
        held = db.scalars(select(Delivery.status).where(Delivery.grp == "control")).all()
        assert len(held) == 10 - len(treated)
        assert set(held) <= {"held_out"}
