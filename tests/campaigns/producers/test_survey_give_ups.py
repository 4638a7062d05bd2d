"""Fatigue counts only the surveys a customer was asked: an invitation whose email the
campaigns domain gave up on for its own reasons (held out in the control group, no email
address, an address suppressed after a hard bounce) asked nothing, so the customer's next
moment is asked within the fatigue days. One handed out by the API still counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery, Suppression
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.producers.messages import SURVEY_INVITATION, system_campaign
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import SurveyIn
from rapport.platform import clock
from tests.campaigns.producers.flow import frozen
from tests.campaigns.producers.test_survey_cancellations import NOON, SURVEY, _process
from tests.campaigns.producers.test_survey_withdrawals import _asked, _place
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth, command
from tests.feedback.factories import make_customer
from tests.orders.factories import seed_catalog


@pytest.fixture
def shop(client: Any, db: Session, api_key: Any) -> dict[str, str]:
    """A shop asking its after-purchase survey at most once a month: its API headers."""
    frozen(NOON)
    seed_catalog(db)
    feedback.save_survey(db, survey=SurveyIn(**SURVEY | {"fatigue_days": 30}))
    return auth(api_key("write", "read"))


def _statuses(db: Session) -> dict[str, tuple[str, str]]:
    db.expire_all()
    return {d.occasion: (d.status, d.reason) for d in db.scalars(select(Delivery))}


def _without_address(db: Session) -> str:
    """A customer who consents to survey emails but left no email address."""
    record = customers.create_customer(
        db,
        customer=CustomerIn(
            external_id="NO-MAIL-1",
            first_name="Nomail",
            consents={"marketing_email": True},
        ),
    )
    return record.customer_id


def _hard_bounced(db: Session) -> str:
    """A consenting customer whose address is suppressed after a hard bounce."""
    customer = make_customer(db)[0]
    db.add(Suppression(customer_id=customer, channel="email", reason="hard bounce", at=NOON))
    db.commit()
    return customer


def _held_out(db: Session) -> str:
    """A consenting customer whom the survey email's control group (90%) holds out."""
    campaign = system_campaign(db, SURVEY_INVITATION)
    campaign.control_percent = 90
    db.commit()
    while not in_control_group(campaign.id, customer := make_customer(db)[0], 90):
        pass
    return customer


GIVE_UPS: dict[str, tuple[Callable[[Session], str], str]] = {
    "control group": (_held_out, "held_out"),
    "no email address": (_without_address, "suppressed"),
    "hard bounce": (_hard_bounced, "suppressed"),
}


@pytest.mark.parametrize("why", sorted(GIVE_UPS))
def test_an_invitation_never_sent_does_not_count_for_fatigue(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink, why: str
) -> None:
    # given a customer's survey invitation whose email the campaigns domain gives up on
    make_customer_for, status = GIVE_UPS[why]
    customer = make_customer_for(db)
    _place(client, shop, customer, "O-NEVER-SENT")
    _process(db)
    dispatch_batch(db, worker="test")
    first = _asked(db)["O-NEVER-SENT"]
    assert _statuses(db)[f"invitation:{first.invitation_id}"][0] == status
    assert smtp_sink.messages == []
    # then it is recorded withdrawn: it asked the customer nothing
    assert first.withdrawn_at is not None
    # and when they buy again the next day, within the survey's 30 fatigue days, they are asked
    clock.set_clock(clock.FrozenClock(NOON + timedelta(days=1)))
    _place(client, shop, customer, "O-NEXT")
    _process(db)
    assert sorted(_asked(db)) == ["O-NEVER-SENT", "O-NEXT"]


def test_an_invitation_handed_out_by_the_api_counts_whatever_its_email(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink
) -> None:
    # given an invitation made through the API, whose answer hands its link out, for a
    # customer whose email address is suppressed after a hard bounce
    customer = _hard_bounced(db)
    invited = client.post(
        f"/v1/feedback/surveys/{SURVEY['survey_id']}/invitations",
        json={"customer_id": customer},
        headers=command(shop),
    ).json()
    assert invited["invited"] is True
    _process(db)
    dispatch_batch(db, worker="test")
    assert _statuses(db)[f"invitation:{invited['invitation_id']}"][0] == "suppressed"
    # then it still counts (its link may reach the customer another way) and still answers
    stored = db.get(Invitation, invited["invitation_id"])
    assert stored is not None
    db.refresh(stored)
    assert stored.withdrawn_at is None
    clock.set_clock(clock.FrozenClock(NOON + timedelta(days=1)))
    _place(client, shop, customer, "O-NEXT")
    _process(db)
    assert "O-NEXT" not in _asked(db)
