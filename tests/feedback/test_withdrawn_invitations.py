"""A withdrawn invitation takes no answer: its link, handed out by the API, is refused on the
public page and through the API (410, as an expired one), and nothing is recorded."""

from __future__ import annotations

from sqlalchemy import func, select

from rapport.feedback import service
from rapport.feedback.models import Invitation, SurveyResponse, Ticket
from tests.conftest import auth, command
from tests.feedback.factories import frozen_clock, make_customer

SURVEY = {
    "survey_id": "csat-visit",
    "name": "CSAT after a visit",
    "kind": "csat",
    "trigger": "after_store_visit",
}


def test_a_withdrawn_invitation_handed_out_by_the_api_takes_no_answer(client, api_key, db) -> None:
    # given an invitation made through the API, which hands its link out
    frozen_clock()
    key = api_key("write", "read")
    assert client.post("/v1/feedback/surveys", json=SURVEY, headers=command(key)).is_success
    customer, _ = make_customer(db)
    invited = client.post(
        "/v1/feedback/surveys/csat-visit/invitations",
        json={"customer_id": customer, "store_id": "st-1"},
        headers=command(key),
    ).json()
    assert invited["invited"] is True
    invitation_id, link = invited["invitation_id"], invited["link"]
    # and withdrawn before its email went out: the customer withdrew their email consent
    consent = client.put(
        f"/v1/customers/{customer}/consents/marketing_email",
        json={"granted": False},
        headers=auth(key),
    )
    assert consent.status_code == 200, consent.text
    assert service.withdraw_invitations(db, invitation_ids=[invitation_id])
    db.commit()
    # when the customer answers through the API (a detractor's score) or on the page
    answer = client.post(
        f"/v1/feedback/invitations/{invitation_id}/answer",
        json={"score": 1, "comment": "Too late"},
        headers=command(key),
    )
    page = client.get(link)
    posted = client.post(link, data={"score": "1"})
    # then each is refused as gone, saying why
    assert answer.status_code == 410, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["type"].endswith("/invitation-withdrawn")
    assert problem["field"] == "invitation_id"
    assert (page.status_code, posted.status_code) == (410, 410)
    assert "This survey is no longer open." in page.text
    assert "This survey is no longer open." in posted.text
    assert 'name="score"' not in page.text
    # and nothing is recorded: no answer, no ticket, the invitation still unanswered
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0
    stored = db.get(Invitation, invitation_id)
    assert stored is not None
    assert stored.answered_at is None
    assert stored.withdrawn_at is not None
