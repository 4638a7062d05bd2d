"""A campaign whose segment picks by purchase or browsing history (a behavioural condition)
reaches only customers who grant ``personalization`` when it goes out: a withdrawal before a
scheduled launch keeps the customer out of it, and one after the launch drops the message
still waiting (planning's send-time verdict, ``gates.profiling_withdrawn``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning import gates
from rapport.campaigns.planning import jobs as planning_jobs
from rapport.platform import clock
from tests.campaigns.planning.factories import make_customer, make_segment
from tests.campaigns.receivers import SmtpSink
from tests.campaigns.segments.factories import set_traits
from tests.conftest import auth, command

PROFILED = {"marketing_email": True, "personalization": True}
BIG_SPENDERS = {
    "conditions": [{"kind": "trait", "field": "spend_minor", "op": "gte", "value": 10_000}]
}
IN_LYON = {"conditions": [{"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"}]}


def _big_spender(db: Session, *, consents: dict[str, bool] = PROFILED) -> str:
    customer_id = make_customer(db, consents=consents, home_city="Lyon")
    set_traits(db, customer_id, spend_minor=20_000, order_count=3)
    return customer_id


def _campaign(client: TestClient, headers: dict[str, str], segment_id: int) -> str:
    created = client.post(
        "/v1/campaigns",
        json={"name": f"Offer {segment_id}", "segment_id": segment_id, "control_percent": 0},
        headers=command(headers),
    )
    assert created.status_code == 201, created.text
    path = f"/v1/campaigns/{created.json()['id']}"
    saved = client.put(f"{path}/templates/email/en", json={"body": "<p>Hi</p>"}, headers=headers)
    assert saved.status_code == 200, saved.text
    return path


def _choose(
    client: TestClient, headers: dict[str, str], customer_id: str, *, granted: bool
) -> None:
    answer = client.put(
        f"/v1/customers/{customer_id}/consents/personalization",
        json={"granted": granted, "source": "app"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text


def _queued(db: Session, campaign_id: int) -> dict[str, int]:
    return {
        str(customer_id): int(delivery_id)
        for delivery_id, customer_id in db.execute(
            select(Delivery.id, Delivery.customer_id).where(Delivery.campaign_id == campaign_id)
        )
    }


def _verdicts(db: Session, campaign_id: int) -> dict[int, str]:
    """What planning answers the dispatcher for the campaign's deliveries now."""
    campaign = db.get(Campaign, campaign_id)
    assert campaign is not None
    rows = [
        (int(delivery_id), campaign, str(occasion))
        for delivery_id, occasion in db.execute(
            select(Delivery.id, Delivery.occasion).where(Delivery.campaign_id == campaign_id)
        )
    ]
    return gates.profiling_withdrawn(db, rows)


def test_a_withdrawal_after_the_launch_drops_the_waiting_message(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    write = auth(api_key("write"))
    # given two big spenders who grant personalization, and one who never did
    staying, leaving = _big_spender(db), _big_spender(db)
    never = _big_spender(db, consents={"marketing_email": True})
    path = _campaign(client, write, make_segment(db, definition=BIG_SPENDERS))
    # when the campaign is launched
    launched = client.post(f"{path}/launch", headers=command(write))
    assert launched.status_code == 200, launched.text
    campaign_id = launched.json()["id"]
    planning_jobs.launch_campaign(db, {"campaign_id": campaign_id})
    queued = _queued(db, campaign_id)
    # then the one who never granted it is not in its audience, and nothing is refused yet
    assert set(queued) == {staying, leaving}
    assert never not in queued
    assert _verdicts(db, campaign_id) == {}
    # when one withdraws personalization before their message went out
    _choose(client, write, leaving, granted=False)
    # then planning refuses that message at send time, and only that one
    assert _verdicts(db, campaign_id) == {queued[leaving]: gates.PROFILING_WITHDRAWN}
    # and a grant again lets it go
    _choose(client, write, leaving, granted=True)
    assert _verdicts(db, campaign_id) == {}


def test_a_segment_on_what_customers_told_needs_no_personalization_to_send(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    write = auth(api_key("write"))
    told = _big_spender(db, consents={"marketing_email": True})
    path = _campaign(client, write, make_segment(db, definition=IN_LYON))
    launched = client.post(f"{path}/launch", headers=command(write))
    assert launched.status_code == 200, launched.text
    planning_jobs.launch_campaign(db, {"campaign_id": launched.json()["id"]})
    assert told in _queued(db, launched.json()["id"])
    assert _verdicts(db, launched.json()["id"]) == {}


def test_a_withdrawal_before_a_scheduled_launch_keeps_the_customer_out(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    write = auth(api_key("write"))
    staying, leaving = _big_spender(db), _big_spender(db)
    path = _campaign(client, write, make_segment(db, definition=BIG_SPENDERS))
    when = (clock.now() + timedelta(hours=1)).isoformat()
    scheduled = client.post(f"{path}/schedule", json={"scheduled_at": when}, headers=command(write))
    assert scheduled.status_code == 200, scheduled.text
    # given a withdrawal after it was scheduled
    _choose(client, write, leaving, granted=False)
    # when its time comes
    clock.set_clock(clock.FrozenClock(clock.now() + timedelta(hours=2)))
    try:
        planning_jobs.launch_scheduled(db, {})
        planning_jobs.launch_campaign(db, {"campaign_id": scheduled.json()["id"]})
    finally:
        clock.reset_clock()
    # then only the customer still granting personalization was queued
    assert set(_queued(db, scheduled.json()["id"])) == {staying}


def test_the_dispatcher_suppresses_a_message_whose_customer_withdrew_personalization(
    client: TestClient, db: Session, api_key: Callable[..., str], smtp_sink: SmtpSink
) -> None:
    write = auth(api_key("write"))
    staying, leaving = _big_spender(db), _big_spender(db)
    path = _campaign(client, write, make_segment(db, definition=BIG_SPENDERS))
    launched = client.post(f"{path}/launch", headers=command(write))
    assert launched.status_code == 200, launched.text
    campaign_id = launched.json()["id"]
    planning_jobs.launch_campaign(db, {"campaign_id": campaign_id})
    queued = _queued(db, campaign_id)
    assert set(queued) == {staying, leaving}
    # given a withdrawal after the launch, before the dispatcher came round
    _choose(client, write, leaving, granted=False)
    # when the dispatcher sends what is due
    while dispatch_batch(db, worker="w1"):
        pass
    db.expire_all()
    # then the customer still granting it got the email, and the other's was suppressed
    outcome = {
        str(customer_id): (status, reason)
        for customer_id, status, reason in db.execute(
            select(Delivery.customer_id, Delivery.status, Delivery.reason).where(
                Delivery.campaign_id == campaign_id
            )
        )
    }
    assert outcome[staying][0] == "sent"
    assert outcome[leaving] == ("suppressed", gates.PROFILING_WITHDRAWN)
    assert len(smtp_sink.messages) == 1
