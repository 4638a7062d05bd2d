"""Rapport's own campaigns' templates may use what their producer attaches to each message and
nothing else: an edited template naming a value the occasion does not give (a typo) is refused
when it is saved, 422 naming the part and listing what the occasion gives, where it was saved
and then every message of it went dead."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.rendering import KNOWN_NAMES
from rapport.campaigns.producers.announcements import announcement_campaigns
from rapport.campaigns.producers.messages import (
    PICKUP_READY,
    SYSTEM_CAMPAIGNS,
    occasion_fields,
    system_campaign,
)
from tests.conftest import auth


def _put(client: TestClient, secret: str, campaign_id: int, channel: str, **parts: str):
    body = {"subject": "Hello", **parts}
    return client.put(
        f"/v1/campaigns/{campaign_id}/templates/{channel}/en", json=body, headers=auth(secret)
    )


@pytest.mark.parametrize("key", sorted(SYSTEM_CAMPAIGNS))
def test_each_system_campaign_refuses_a_name_its_occasion_does_not_give(
    key: str, client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given Rapport's own campaign, created with its default templates (which pass the check)
    spec = SYSTEM_CAMPAIGNS[key]
    campaign = system_campaign(db, key)
    db.commit()
    secret = api_key("write")
    given = sorted(spec.occasion)
    # when the retailer saves a body naming a value the producer does not attach
    refused = _put(client, secret, campaign.id, spec.channel, body="Hi {{ colect_by_date }}")
    # then it is a 422 naming the body, saying what the occasion gives
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["field"] == "body"
    assert "colect_by_date" in problem["detail"]
    assert ", ".join(given) in problem["detail"]
    # and so is occasion.<typo> in the subject, and occasion['typo']
    typo = _put(client, secret, campaign.id, spec.channel, subject="{{ occasion.typo }}", body="x")
    assert (typo.status_code, typo.json()["field"]) == (422, "subject"), typo.text
    item = _put(client, secret, campaign.id, spec.channel, body="{{ occasion['typo'] }}")
    assert (item.status_code, item.json()["field"]) == (422, "body"), item.text
    # while every value the occasion gives, by itself, as occasion.<name> or .get(), is taken
    uses = " ".join(
        f"{{{{ {name} }}}} {{{{ occasion.{name} }}}} {{{{ occasion.get('{name}') }}}}"
        for name in given
    )
    taken = _put(client, secret, campaign.id, spec.channel, body=f"Hi {{{{ first_name }}}} {uses}")
    assert taken.status_code == 200, taken.text


def test_the_testers_pickup_ready_body_is_refused_naming_the_typo(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    campaign = system_campaign(db, PICKUP_READY)
    db.commit()
    refused = _put(
        client,
        api_key("write"),
        campaign.id,
        "email",
        subject="Ready",
        body="Collect {{ pickup_code }} by {{ colect_by_date }}",
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "body"
    assert refused.json()["detail"].startswith("The body uses colect_by_date, which")
    assert "collect_by_date" in refused.json()["detail"]


def test_an_announcement_takes_what_every_template_gets_and_no_occasion(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    email, _inbox = announcement_campaigns(db, announcement_id=7, title="News", body="Hello")
    db.commit()
    assert email.key is not None
    assert occasion_fields(email.key) == ()
    secret = api_key("write")
    refused = _put(client, secret, email.id, "email", body="Hi {{ order_id }}")
    assert (refused.status_code, refused.json()["field"]) == (422, "body"), refused.text
    everyone = " ".join(f"{{{{ {name} is defined }}}}" for name in sorted(KNOWN_NAMES))
    assert _put(client, secret, email.id, "email", body=everyone).status_code == 200
