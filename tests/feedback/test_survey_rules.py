"""What a survey definition may say: invitations are emailed, so a survey asks email consent
(push or analytics consent is refused, naming consent_purpose, and the form offers email
only); its kind cannot change while invitations are open or answers exist (409 naming kind);
an after-purchase survey's channel is one purchases are made in. And the reads refuse what
names nothing: a product the catalogue lacks, a window that ends before it starts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.feedback.models import Survey
from rapport.platform import service as platform
from tests.conftest import auth, command
from tests.feedback.factories import frozen_clock, in_catalogue, make_customer
from tests.platform.admin_forms import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    page_form,
    post_form,
    sign_in,
    typed,
)

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
    assert answer.json()["field"] == "consent_purpose"
    assert "sent by email" in answer.json()["detail"]
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


def test_the_kind_of_a_survey_with_open_invitations_or_answers_cannot_change(
    client: TestClient, api_key, db: Session
) -> None:
    frozen_clock()
    writer = api_key("write")
    survey = MANUAL | {"survey_id": "t-kind"}
    assert (
        client.post("/v1/feedback/surveys", json=survey, headers=command(writer)).status_code == 200
    )
    # with no invitation nor answer yet, the kind may still change (and back)
    for kind in ("ces", "nps"):
        changed = client.post(
            "/v1/feedback/surveys", json=survey | {"kind": kind}, headers=command(writer)
        )
        assert changed.json()["kind"] == kind
    customer, _ = make_customer(db)
    invited = client.post(
        "/v1/feedback/surveys/t-kind/invitations",
        json={"customer_id": customer},
        headers=command(writer),
    ).json()
    assert invited["invited"] is True
    refused = client.post(
        "/v1/feedback/surveys", json=survey | {"kind": "ces"}, headers=command(writer)
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "kind"
    assert "1 open invitation" in refused.json()["detail"]
    db.expire_all()
    assert db.get(Survey, "t-kind").kind == "nps"  # type: ignore[union-attr]
    # the invitation is answered on the scale it was sent with
    answered = client.post(
        f"/v1/feedback/invitations/{invited['invitation_id']}/answer",
        json={"score": 9},
        headers=command(writer),
    )
    assert answered.status_code == 201, answered.text
    # once answered, the answer holds the kind: the admin form says so beside the field
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    fields = page_form(
        client.get("/admin/feedback/surveys/t-kind").text,
        action="/admin/feedback/surveys",
        testid="survey-form",
    )
    answer = post_form(
        client, "/admin/feedback/surveys", typed(typed(fields, "kind", "ces"), "name", "Renamed")
    )
    assert answer.status_code == 422
    assert 'data-field-error="kind">Survey &#39;t-kind&#39; is NPS and has 1 answer' in answer.text
    kept = dict(page_form(answer.text, action="/admin/feedback/surveys", testid="survey-form"))
    assert (kept["kind"], kept["name"]) == ("ces", "Renamed")
    db.expire_all()
    assert db.get(Survey, "t-kind").name == "Manual NPS"  # type: ignore[union-attr]


def test_a_survey_channel_no_purchase_is_made_in_is_refused(
    client: TestClient, api_key, db: Session
) -> None:
    survey = MANUAL | {"trigger": "after_purchase", "channel": "pigeon"}
    answer = client.post("/v1/feedback/surveys", json=survey, headers=command(api_key("write")))
    assert answer.status_code == 422
    assert answer.json()["field"] == "channel"
    assert "use one of web, app, store, call_center" in answer.json()["detail"]
    assert db.scalar(select(func.count()).select_from(Survey)) == 0
    kept = client.post(
        "/v1/feedback/surveys", json=survey | {"channel": "app"}, headers=command(api_key("write"))
    )
    assert kept.json()["channel"] == "app"


def test_the_rating_of_a_product_the_catalogue_lacks_is_404_naming_sku(
    client: TestClient, api_key, db: Session
) -> None:
    reader = auth(api_key("read"))
    answer = client.get("/v1/feedback/products/NO-SUCH-SKU/rating", headers=reader)
    assert answer.status_code == 404
    assert answer.json()["field"] == "sku"
    assert "NO-SUCH-SKU" in answer.json()["detail"]
    # a product of the catalogue nobody reviewed yet has its zeros
    in_catalogue(db, "SKU-Z")
    unreviewed = client.get("/v1/feedback/products/SKU-Z/rating", headers=reader)
    assert (unreviewed.status_code, unreviewed.json()["reviews"]) == (200, 0)


@pytest.mark.parametrize("path", ["scores", "scores/trend", "moments", "themes"])
def test_a_window_ending_before_it_starts_is_422_naming_until(
    client: TestClient, api_key, path: str
) -> None:
    answer = client.get(
        f"/v1/feedback/{path}?since=2027-01-01&until=2026-01-01", headers=auth(api_key("read"))
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "until"
    assert answer.json()["detail"] == "until must be after since"
