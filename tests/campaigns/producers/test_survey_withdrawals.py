"""Fatigue counts the surveys a customer was asked: an invitation sent, answered or still
waiting to go out. One withdrawn before its email went out (its order cancelled, its consent
withdrawn) asked nothing, so the customer's next moment is asked, within the fatigue days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command as alembic
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation
from rapport.feedback.schemas import SurveyIn
from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.campaigns.producers.flow import frozen
from tests.campaigns.producers.test_survey_cancellations import (
    NOON,
    SURVEY,
    _cancel,
    _deliveries,
    _process,
)
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth, command, make_database_url
from tests.feedback.factories import make_customer
from tests.orders.factories import order_body, seed_catalog


@pytest.fixture
def shop(client: Any, db: Session, api_key: Any) -> dict[str, str]:
    """A shop asking its after-purchase survey at most once a month: its API headers."""
    frozen(NOON)
    seed_catalog(db)
    feedback.save_survey(db, survey=SurveyIn(**SURVEY | {"fatigue_days": 30}))
    return auth(api_key("write", "read"))


@pytest.fixture
def customer(db: Session) -> str:
    """A customer of the shop who consents to survey emails."""
    return make_customer(db)[0]


def _place(client: Any, shop: dict[str, str], customer: str, order_id: str) -> None:
    body = order_body(order_id=order_id, customer_id=customer)
    placed = client.post("/v1/orders", json=body, headers=command(shop))
    assert placed.status_code == 201, placed.text


def _asked(db: Session) -> dict[str, Invitation]:
    db.expire_all()
    return {i.order_id or "": i for i in db.scalars(select(Invitation))}


def _consent(client: Any, shop: dict[str, str], customer: str, granted: bool) -> None:
    answer = client.put(
        f"/v1/customers/{customer}/consents/marketing_email",
        json={"granted": granted},
        headers=shop,
    )
    assert answer.status_code == 200, answer.text


def test_an_invitation_withdrawn_with_its_cancelled_order_does_not_count_for_fatigue(
    client: Any, db: Session, shop: dict[str, str], customer: str, smtp_sink: SmtpSink
) -> None:
    # given a customer's survey invitation queued, and their order cancelled before it went out
    _place(client, shop, customer, "O-CALLED-OFF")
    _process(db)
    _cancel(client, shop, "O-CALLED-OFF")
    dispatch_batch(db, worker="test")
    assert smtp_sink.messages == []
    withdrawn = _asked(db)["O-CALLED-OFF"]
    assert withdrawn.withdrawn_at is not None
    # when they buy again the next day, within the survey's 30 fatigue days
    frozen(NOON + timedelta(days=1))
    _place(client, shop, customer, "O-KEPT")
    _process(db)
    dispatch_batch(db, worker="test")
    # then they are asked about it: the withdrawn invitation asked them nothing
    assert sorted(_asked(db)) == ["O-CALLED-OFF", "O-KEPT"]
    assert len(smtp_sink.messages) == 1
    assert "O-KEPT" in smtp_sink.messages[0].text
    assert _asked(db)["O-KEPT"].withdrawn_at is None


def test_consent_withdrawn_before_the_email_withdraws_the_invitation(
    client: Any, db: Session, shop: dict[str, str], customer: str, smtp_sink: SmtpSink
) -> None:
    # given a customer's survey invitation queued
    _place(client, shop, customer, "O-1")
    _process(db)
    invitation = _asked(db)["O-1"]
    # when they withdraw their email consent before it is sent
    _consent(client, shop, customer, False)
    dispatch_batch(db, worker="test")
    # then no survey is emailed: the delivery says why, and the invitation is withdrawn
    assert smtp_sink.messages == []
    assert _deliveries(db)[f"invitation:{invitation.invitation_id}"] == (
        "suppressed",
        "survey withdrawn: no marketing_email consent",
    )
    assert _asked(db)["O-1"].withdrawn_at is not None
    # and once they consent again, their next purchase is asked, within the fatigue days
    frozen(NOON + timedelta(days=2))
    _consent(client, shop, customer, True)
    _place(client, shop, customer, "O-2")
    _process(db)
    dispatch_batch(db, worker="test")
    assert len(smtp_sink.messages) == 1
    assert "O-2" in smtp_sink.messages[0].text


def test_an_invitation_sent_or_waiting_still_counts(
    client: Any, db: Session, shop: dict[str, str], customer: str, smtp_sink: SmtpSink
) -> None:
    # given two purchases processed together: the second finds the first's invitation waiting
    _place(client, shop, customer, "O-1")
    _place(client, shop, customer, "O-2")
    _process(db)
    # then one invitation only, which is sent
    assert sorted(_asked(db)) == ["O-1"]
    dispatch_batch(db, worker="test")
    assert len(smtp_sink.messages) == 1
    # and a purchase within the fatigue days after it was sent is not asked (even when the
    # first order is cancelled afterwards: the customer was asked)
    _cancel(client, shop, "O-1")
    frozen(NOON + timedelta(days=29))
    _place(client, shop, customer, "O-3")
    _process(db)
    dispatch_batch(db, worker="test")
    assert sorted(_asked(db)) == ["O-1"]
    assert _asked(db)["O-1"].withdrawn_at is None
    assert len(smtp_sink.messages) == 1


def test_invitations_withdrawn_before_the_upgrade_are_marked_from_their_emails(
    backend: str, tmp_path: Path
) -> None:
    # given a database of before withdrawals were recorded: invitations whose email was sent,
    # suppressed, or never queued (link past its expiry, or still valid), and one answered
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    suppressed_at = at + timedelta(minutes=5)
    far = datetime(2099, 1, 1, tzinfo=UTC)
    try:
        alembic.upgrade(alembic_config(url), "c24000000003")
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
                        "stage": "after_purchase",
                        "created_at": at,
                        "expires_at": expires_at,
                        "answered_at": answered_at,
                    }
                    for invitation_id, expires_at, answered_at in (
                        ("inv_sent", far, None),
                        ("inv_suppressed", far, None),
                        ("inv_expired", at + timedelta(days=14), None),
                        ("inv_waiting", far, None),
                        ("inv_answered", far, at + timedelta(hours=1)),
                    )
                ],
            )
            connection.execute(
                insert(Campaign.__table__),
                {
                    "id": 1,
                    "key": "feedback.survey_invitation",
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
                        "updated_at": suppressed_at if status == "suppressed" else at,
                    }
                    for invitation_id, status in (
                        ("inv_sent", "sent"),
                        ("inv_suppressed", "suppressed"),
                        ("inv_answered", "suppressed"),
                    )
                ],
            )
        # when the database is upgraded
        upgrade(url)
        # then the invitations never sent that can no longer go out are withdrawn
        with engine.connect() as connection:
            marked = dict(
                connection.execute(select(Invitation.invitation_id, Invitation.withdrawn_at)).all()
            )
        assert marked == {
            "inv_sent": None,
            "inv_suppressed": suppressed_at,
            "inv_expired": at + timedelta(days=14),
            "inv_waiting": None,
            "inv_answered": None,
        }
    finally:
        engine.dispose()
        remove()
