"""A survey invitation's email carries its link under RAPPORT_PUBLIC_BASE_URL as it is when the
email goes out: the delivery keeps the signed path, not an address built when it was queued."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import SurveyIn
from rapport.platform.settings import get_settings
from tests.campaigns.conftest import TEST_SECRET
from tests.campaigns.producers.flow import frozen
from tests.campaigns.producers.test_survey_cancellations import NOON, SURVEY, _place, _process
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth
from tests.orders.factories import seed_catalog


@pytest.fixture
def shop(client: Any, db: Session, api_key: Any) -> dict[str, str]:
    """A shop asking a survey after each purchase: its API headers."""
    frozen(NOON)
    seed_catalog(db)
    feedback.save_survey(db, survey=SurveyIn(**SURVEY))
    return auth(api_key("write", "read"))


def test_the_survey_email_links_to_the_host_configured_when_it_is_sent(
    client: Any,
    db: Session,
    shop: dict[str, str],
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a survey invitation queued while the shop was reached at http://testserver
    _place(client, db, shop, "O-MOVED")
    _process(db)
    invitation = db.scalars(select(Invitation)).one()
    delivery = db.scalars(select(Delivery)).one()
    assert delivery.status == "queued"
    # when the shop moves to a new address before the email goes out
    monkeypatch.setenv("RAPPORT_PUBLIC_BASE_URL", "https://surveys.shop.example/")
    get_settings.cache_clear()
    dispatch_batch(db, worker="test")
    # then the email links to the survey page at the new address, never the old one
    [message] = smtp_sink.messages
    path = feedback.survey_link_path(invitation.invitation_id, secret=TEST_SECRET)
    assert f"https://surveys.shop.example{path}" in message.text
    assert "testserver" not in message.text
    # and the delivery kept the signed path, not an address
    db.refresh(delivery)
    assert delivery.context["survey_path"] == path
    assert "survey_url" not in delivery.context
