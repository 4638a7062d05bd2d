"""A List-Unsubscribe stops the kind of message it comes with: a survey invitation (sent only
under the survey's consent, marketing email) carries one, and its one-click post stops the
customer's survey invitations; an apology-points email, which goes whatever the customer's
marketing consent, carries none (docs/campaigns-delivery.md, Unsubscribe)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from rapport.customers import service as customers
from rapport.feedback import service as feedback
from rapport.feedback.schemas import SurveyIn, TicketIn
from rapport.platform.db import open_session
from tests.campaigns.conftest import TEST_SECRET
from tests.campaigns.delivery.factories import make_customer
from tests.campaigns.producers.flow import frozen, run_worker
from tests.campaigns.receivers import SmtpSink
from tests.conftest import app_committing_to

SURVEY = {"survey_id": "nps-visit", "name": "NPS", "kind": "nps", "trigger": "manual"}
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _invite(db, customer_id: str, source_key: str) -> feedback.InviteDecision:  # type: ignore[no-untyped-def]
    return feedback.invite(
        db,
        survey_id="nps-visit",
        customer_id=customer_id,
        moment=feedback.Occasion(source_key=source_key, stage="manual"),
    )


def test_a_survey_invitations_one_click_unsubscribe_stops_survey_invitations(
    committed_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # given a customer invited to a survey, and the worker emailing the invitation
    frozen()
    with open_session(committed_url) as db:
        feedback.save_survey(db, survey=SurveyIn(**SURVEY))
        person = make_customer(db, email="asked@example.org")
        db.commit()
        assert _invite(db, person, "manual:1").invitation is not None
    run_worker(committed_url)
    (mail,) = smtp_sink.messages

    # when their mail client posts the one-click unsubscribe the invitation carries
    header = mail.message["List-Unsubscribe"]
    assert header is not None
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with TestClient(app_committing_to(committed_url, tmp_path, secret_key=TEST_SECRET)) as app:
        done = app.post(
            urlsplit(str(header).strip("<>")).path,
            content="List-Unsubscribe=One-Click",
            headers=ONE_CLICK,
        )
    assert done.status_code == 200
    assert "nor survey invitations" in done.text

    # then they are asked no further survey
    with open_session(committed_url) as db:
        assert not customers.has_consent(db, customer_id=person, purpose="marketing_email")
        assert _invite(db, person, "manual:2").reason == "no_consent"


def test_an_apology_points_email_carries_no_list_unsubscribe(
    committed_url: str, smtp_sink: SmtpSink
) -> None:
    # given a ticket resolved with apology points for a customer who takes marketing email
    frozen()
    with open_session(committed_url) as db:
        person = make_customer(db, email="sorry@example.org")
        db.commit()
        ticket = feedback.open_ticket(
            db,
            ticket=TicketIn(customer_id=person, kind="complaint", channel="web", subject="Late"),
        )
        feedback.resolve_ticket(
            db,
            ticket_id=ticket.ticket_id,
            resolution="Refunded",
            resolved_by="agent",
            apology_points=200,
        )
    # when the worker emails it
    run_worker(committed_url)
    # then it offers no unsubscribe: withdrawing marketing email would not stop it
    (mail,) = smtp_sink.to("sorry@example.org")
    assert mail.subject == "Sorry: we've added 200 points to your account"
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["List-Unsubscribe-Post"] is None
