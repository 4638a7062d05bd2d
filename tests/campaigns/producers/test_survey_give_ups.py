"""Fatigue counts only the surveys a customer was asked: an invitation whose email the
campaigns domain gave up on for its own reasons (held out in the control group, no email
address, an address suppressed after a hard bounce, a bounce when it is sent) asked nothing,
so the customer's next moment is asked within the fatigue days. One handed out by the API
still counts. Those given up before the upgrade are marked from their emails (migration
c25000000006). No survey email is stopped where feedback is not told: cancelling campaigns or
switching subscriptions off never reaches it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command as alembic
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from rapport.campaigns import service as campaigns
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery, Suppression
from rapport.campaigns.planning.control import in_control_group
from rapport.campaigns.producers.messages import SURVEY_INVITATION, system_campaign
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import SurveyIn
from rapport.platform import clock
from rapport.platform.db import create_db_engine
from rapport.platform.errors import Conflict
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.campaigns.producers.flow import frozen
from tests.campaigns.producers.test_survey_cancellations import NOON, SURVEY, _process
from tests.campaigns.producers.test_survey_withdrawals import _asked, _place
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth, command, make_database_url
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


# The mail server refuses this address for good when the email is sent (a 550 at RCPT): the
# bounce Rapport learns of, which the dispatcher marks.
BOUNCING = "gone@example.org"


def _bounced_when_sent(db: Session) -> str:
    """A consenting customer whose mail server refuses the survey email when it is sent."""
    return make_customer(db, email=BOUNCING)[0]


GIVE_UPS: dict[str, tuple[Callable[[Session], str], str]] = {
    "control group": (_held_out, "held_out"),
    "no email address": (_without_address, "suppressed"),
    "hard bounce": (_hard_bounced, "suppressed"),
    "bounce when sent": (_bounced_when_sent, "bounced"),
}


@pytest.mark.parametrize("why", sorted(GIVE_UPS))
def test_an_invitation_never_sent_does_not_count_for_fatigue(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink, why: str
) -> None:
    # given a customer's survey invitation whose email the campaigns domain gives up on
    make_customer_for, status = GIVE_UPS[why]
    smtp_sink.reject.add(BOUNCING)
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


def test_invitations_given_up_before_the_upgrade_are_marked_from_their_emails(
    backend: str, tmp_path: Path
) -> None:
    # given a database of before given-up emails withdrew their invitations: emails held out,
    # suppressed, dead, bounced and sent, one given up for an answered invitation and one for
    # an invitation the API made
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    ended = at + timedelta(minutes=5)
    far = datetime(2099, 1, 1, tzinfo=UTC)
    emails = {
        "inv_held_out": "held_out",
        "inv_suppressed": "suppressed",
        "inv_dead": "dead",
        "inv_bounced": "bounced",
        "inv_sent": "sent",
        "inv_answered": "dead",
        "inv_manual": "suppressed",
    }
    try:
        alembic.upgrade(alembic_config(url), "c25000000005")
        with engine.begin() as connection:
            connection.execute(
                insert(Invitation.__table__),
                [
                    {
                        "invitation_id": invitation_id,
                        "survey_id": "s",
                        "source_key": f"order:{invitation_id}",
                        "customer_id": "cus_1",
                        "locale": "en",
                        "stage": "manual" if invitation_id == "inv_manual" else "after_purchase",
                        "created_at": at,
                        "expires_at": far,
                        "answered_at": at if invitation_id == "inv_answered" else None,
                    }
                    for invitation_id in emails
                ],
            )
            connection.execute(
                insert(Campaign.__table__),
                {
                    "id": 1,
                    "key": SURVEY_INVITATION,
                    "name": "Survey invitation",
                    "purpose": "service",
                    "kind": "transactional",
                    "channel": "email",
                    "status": "active",
                    "created_at": at,
                    "updated_at": at,
                },
            )
            connection.execute(
                insert(Delivery.__table__),
                [
                    {
                        "campaign_id": 1,
                        "recipient_key": "cus_1",
                        "occasion": f"invitation:{invitation_id}",
                        "channel": "email",
                        "status": status,
                        "next_attempt_at": at,
                        "queued_at": at,
                        "sent_at": at if status == "sent" else None,
                        "updated_at": ended,
                    }
                    for invitation_id, status in emails.items()
                ],
            )
        # when the database is upgraded
        upgrade(url)
        # then the invitations whose email was given up are withdrawn, when it ended
        with engine.connect() as connection:
            marked = dict(
                connection.execute(select(Invitation.invitation_id, Invitation.withdrawn_at)).all()
            )
        assert marked == {
            "inv_held_out": ended,
            "inv_suppressed": ended,
            "inv_dead": ended,
            "inv_bounced": ended,
            "inv_sent": None,
            "inv_answered": None,
            "inv_manual": None,
        }
    finally:
        engine.dispose()
        remove()


def test_cancelling_campaigns_or_subscriptions_never_stops_a_survey_email(
    client: Any, db: Session, shop: dict[str, str], smtp_sink: SmtpSink
) -> None:
    # given a survey email waiting to go out, and a webhook subscription
    customer = make_customer(db, email="asked@example.org")[0]
    _place(client, shop, customer, "O-WAITING")
    _process(db)
    [(status, _)] = _statuses(db).values()
    assert status == "queued"
    subscription = campaigns.create_subscription(
        db, name="Ops", url="https://hooks.example.org/rapport", event_types=["points_earned"]
    ).subscription
    # when the survey's campaign is cancelled (refused: a system campaign), and the
    # subscription switched off, the two bulk suppressions that do not tell feedback
    with pytest.raises(Conflict):
        campaigns.cancel_campaign(db, campaign_id=system_campaign(db, SURVEY_INVITATION).id)
    db.rollback()
    campaigns.update_subscription(db, subscription_id=subscription.id, changes={"active": False})
    # then the survey email still waits, and goes out: no survey email is given up there
    # unseen by fatigue (feedback.invitations_not_sent)
    [(status, _)] = _statuses(db).values()
    assert status == "queued"
    dispatch_batch(db, worker="test")
    assert [m.to for m in smtp_sink.messages] == ["asked@example.org"]
    assert _asked(db)["O-WAITING"].withdrawn_at is None
