"""An admin page's status line says only what Rapport's own forms said: a form's outcome waits
in the signed session cookie for the page it redirects to (``platform.admin.redirect_saying``)
and shows there once. A ``?message=`` (or the customer list's old ``?erased=``) in a link
shows nothing, so nobody can send a staff member a real admin page saying what they like."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.feedback import service as feedback
from rapport.feedback.schemas import SurveyIn, TicketIn
from rapport.platform import admin as admin_shell
from rapport.platform import service as platform
from tests.campaigns.delivery.factories import make_campaign
from tests.campaigns.planning.factories import make_segment
from tests.platform.admin_forms import csrf_token, status_line

FORGED = "Your session expired. Call 0800 123 456 to sign in again."
QUERIES = ("message", "notice", "status", "error", "erased")


@pytest.fixture
def shop(admin: TestClient, db: Session) -> dict[str, Any]:
    """A customer with a ticket, a survey, a segment and a campaign: pages with an id."""
    customer_id = customers.identify_customer(
        db, identities={"email": "ann@example.org"}, profile={"first_name": "Ann"}
    ).customer_id
    ticket = feedback.open_ticket(
        db,
        ticket=TicketIn(
            customer_id=customer_id, kind="question", channel="email", subject="Where?", body="x"
        ),
    )
    feedback.save_survey(
        db,
        survey=SurveyIn(survey_id="nps-x", name="NPS", kind="nps", trigger="after_delivery"),
    )
    segment_id = make_segment(db)
    campaign = make_campaign(db, name="Winter sale", segment_id=segment_id)
    return {
        "customer": customer_id,
        "ticket": ticket.ticket_id,
        "segment": segment_id,
        "campaign": campaign.id,
    }


def _pages(shop: dict[str, Any]) -> list[str]:
    """Every page of the navigation, and the pages of one thing that said a form's outcome
    when it came in their address."""
    return sorted(
        {item.path for item in admin_shell.NAV}
        | {
            f"/admin/customers/{shop['customer']}",
            f"/admin/orders/customer/{shop['customer']}",
            f"/admin/feedback/tickets/{shop['ticket']}",
            "/admin/feedback/surveys/nps-x",
            f"/admin/segments/{shop['segment']}",
            f"/admin/campaigns/{shop['campaign']}",
            "/admin/catalog/products/W-1",
            "/admin/loyalty/plans",
            "/admin/loyalty/rewards",
            "/admin/loyalty/coupons",
            "/admin/loyalty/announcements",
            "/admin/loyalty/program",
            "/admin/loyalty/program/advanced",
            "/admin/recommendations/rules",
            "/admin/deliveries/policy",
            "/admin/webhooks/subscriptions/1",
            "/admin/deliveries/1",
        }
    )


def test_no_admin_page_shows_text_from_its_address(
    admin: TestClient, db: Session, shop: dict[str, Any]
) -> None:
    # given a link to each real admin page carrying text of someone's choosing
    for path in _pages(shop):
        for name in QUERIES:
            answer = admin.get(f"{path}?{urlencode({name: FORGED})}")
            # then the page is served, and says none of it
            assert answer.status_code < 500, (path, name, answer.text)
            assert "0800 123 456" not in answer.text, (path, name)


def test_a_forms_outcome_shows_once_on_the_page_it_returns_to(
    admin: TestClient, db: Session
) -> None:
    # given an API key revoked from its settings page
    key = platform.create_api_key(db, name="Till <b>2</b>", scopes=[platform.Scope.READ])
    token = csrf_token(admin.get("/admin/settings/keys").text)
    answer = admin.post(
        f"/admin/settings/keys/{key.key.id}/revoke",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    # then it goes back to the page with a plain address, which says so, as text
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/settings/keys"
    page = admin.get(answer.headers["location"]).text
    assert status_line(page) == f"Key Till <b>2</b> ({key.key.id}) revoked"
    assert "Till &lt;b&gt;2&lt;/b&gt;" in page
    # and only once: the page opened again says nothing
    assert status_line(admin.get("/admin/settings/keys").text) is None


def test_a_form_field_refused_by_a_validator_shows_no_pydantic_prefix() -> None:
    from pydantic import BaseModel, field_validator

    from rapport.platform.admin import field_messages

    class Reward(BaseModel):
        categories: str

        @field_validator("categories")
        @classmethod
        def _json(cls, value: str) -> str:
            raise ValueError('a list starting with "[" is read as JSON')

    said = field_messages(
        Reward, {"categories": '["Beer, Wine'}, labels={"categories": "Categories"}
    )
    assert said == {"categories": 'Categories: a list starting with "[" is read as JSON'}
