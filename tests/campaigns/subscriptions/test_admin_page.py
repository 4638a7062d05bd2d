"""The admin page for webhook subscriptions: a form adds one and shows its secret once; the
edit form changes the event types and the active flag it shows, and a save that does not
carry a setting leaves it as it was."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.models import WebhookSubscription
from rapport.platform import service as platform

PASSWORD = "correct horse battery"
PAGE = "/admin/webhooks/subscriptions"


@pytest.fixture
def signed_in(client: TestClient, db: Session) -> TestClient:
    platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
    client.post(
        "/admin/login",
        data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": _csrf(client)},
        follow_redirects=False,
    )
    return client


def _csrf(client: TestClient, path: str = "/admin/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def test_an_admin_adds_and_edits_a_subscription(signed_in: TestClient, db: Session) -> None:
    token = _csrf(signed_in, PAGE)
    # a form without event types is refused, saying why
    refused = signed_in.post(
        PAGE, data={"csrf_token": token, "name": "CRM", "url": "https://crm.example/h"}
    )
    assert refused.status_code == 422
    assert "at least one event type" in refused.text
    # the form adds a subscription and shows its secret on the answer only
    added = signed_in.post(
        PAGE,
        data={
            "csrf_token": token,
            "name": "CRM",
            "url": "https://crm.example/h",
            "type_points_earned": "true",
            "type_customer_erased": "true",
        },
    )
    assert added.status_code == 200
    secret = re.search(r'data-testid="subscription-secret">(whsec_[^<]+)<', added.text)
    assert secret is not None
    assert secret.group(1) not in signed_in.get(PAGE).text
    subscription = db.query(WebhookSubscription).one()
    assert subscription.event_types == ["points_earned", "customer_erased"]
    # the edit form unticks one type and adds another; active stays ticked
    edit = f"{PAGE}/{subscription.id}"
    assert "points_earned" in signed_in.get(edit).text
    saved = signed_in.post(
        edit,
        data={
            "csrf_token": token,
            "type_points_earned": "false",
            "type_tier_changed": ["false", "true"],
            "active": ["false", "true"],
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    db.refresh(subscription)
    assert subscription.event_types == ["tier_changed", "customer_erased"]
    assert subscription.active is True
    # a save that does not carry the active flag leaves it as it was
    signed_in.post(edit, data={"csrf_token": token, "active": "false"}, follow_redirects=False)
    signed_in.post(edit, data={"csrf_token": token, "type_points_earned": "true"})
    db.refresh(subscription)
    assert subscription.active is False
    assert subscription.event_types == ["points_earned", "tier_changed", "customer_erased"]
    # deleting it takes it off the list
    signed_in.post(f"{edit}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert "No subscriptions yet." in signed_in.get(PAGE).text
