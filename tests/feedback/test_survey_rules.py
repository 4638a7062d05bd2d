"""What a survey definition may say: invitations are emailed, so a survey asks email consent
(push or analytics consent is refused, naming consent_purpose, and the form offers email
only)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.feedback.models import Survey
from rapport.platform import service as platform
from tests.conftest import command
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

MANUAL = {"survey_id": "t-cp", "name": "Manual NPS", "kind": "nps", "trigger": "manual"}


@pytest.mark.parametrize("purpose", ["analytics", "marketing_push"])
def test_a_survey_gated_on_a_consent_other_than_email_is_refused(
    client: TestClient, api_key, db: Session, purpose: str
) -> None:
    writer = api_key("write")
    answer = client.post(
        "/v1/feedback/surveys",
        json=MANUAL | {"consent_purpose": purpose},
        headers=command(writer),
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert error["field"] == "consent_purpose"
    assert "sent by email" in error["message"]
    assert db.scalar(select(func.count()).select_from(Survey)) == 0
    # the email consent is taken, and is the default
    assert (
        client.post("/v1/feedback/surveys", json=MANUAL, headers=command(writer)).json()[
            "consent_purpose"
        ]
        == "marketing_email"
    )


def test_the_survey_form_offers_email_consent_only(client: TestClient, db: Session) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    page = client.get("/admin/feedback/surveys/new").text
    select_html = page.split('name="consent_purpose"', 1)[1].split("</select>", 1)[0]
    assert 'value="marketing_email"' in select_html
    assert "analytics" not in select_html
    assert "marketing_push" not in select_html
