"""The deliveries log, the sending policy and the webhook endpoints pages in headless Chromium:
filters and a delivery's history, caps saved without touching other settings, an endpoint
created with its secret shown once, a dead webhook delivery replayed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rapport.campaigns.delivery.policy import sending_policy
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery, WebhookEndpoint
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import (
    make_campaign,
    make_customer,
    make_endpoint,
    send_at_any_hour,
)
from tests.campaigns.receivers import SmtpSink, WebhookReceiver
from tests.conftest import LiveServer, sign_in_as

PASSWORD = "correct horse battery"


def _seed(url: str, receiver: WebhookReceiver) -> dict[str, int]:
    with open_session(url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        send_at_any_hour(db)
        willing = make_customer(db, consents={"marketing_email": True, "marketing_push": True})
        unwilling = make_customer(db, consents={})
        mail = make_campaign(db, name="Spring sale")
        queue_deliveries(
            db,
            campaign=mail,
            recipients=[Recipient(customer_id=willing), Recipient(customer_id=unwilling)],
        )
        endpoint = make_endpoint(db, url=receiver.url, max_attempts=1)
        push = make_campaign(db, channel="webhook", webhook_endpoint_id=endpoint.id, body="Hi")
        queue_deliveries(db, campaign=push, recipients=[Recipient(customer_id=willing)])
        db.commit()
        receiver.responses = [503]
        dispatch_batch(db, worker="w1")
        suppressed = db.scalar(select(Delivery.id).where(Delivery.customer_id == unwilling))
        dead = db.scalar(select(Delivery.id).where(Delivery.campaign_id == push.id))
        assert suppressed is not None
        assert dead is not None
        return {"suppressed": suppressed, "dead": dead, "endpoint": endpoint.id}


def test_deliveries_policy_and_webhooks_pages(
    page: Any, live_server: LiveServer, smtp_sink: SmtpSink, webhook_receiver: WebhookReceiver
) -> None:
    ids = _seed(live_server.database_url, webhook_receiver)
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)

    # The log, filtered to what was suppressed, and one delivery's history.
    page.locator("details[data-section=Campaigns] > summary").click()
    page.get_by_role("link", name="Deliveries", exact=True).click()
    assert page.get_by_test_id("deliveries").locator("tbody tr").count() == 3
    page.get_by_label("Status").select_option("suppressed")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_test_id("deliveries").locator("tbody tr")
    assert rows.count() == 1
    assert "no marketing_email consent" in rows.first.inner_text()
    rows.first.get_by_role("link", name=str(ids["suppressed"])).click()
    history = page.get_by_test_id("delivery-history").locator("tbody tr").all_inner_texts()
    assert [line.split("\t")[1] for line in history] == ["queued", "sending", "suppressed"]

    # Caps and quiet hours: a saved cap leaves every other setting as it was.
    page.get_by_role("link", name="Caps and quiet hours").click()
    form = page.get_by_test_id("policy-email")
    form.get_by_label("At most").fill("5")
    form.get_by_role("button", name="Save email").click()
    assert page.get_by_test_id("policy-message").inner_text() == "The email policy is saved"
    with open_session(live_server.database_url) as db:
        email = sending_policy(db)["email"]
        # (the quiet hours as _seed left them: none)
        assert (email.cap_messages, email.cap_hours, email.quiet_start, email.quiet_end) == (
            5,
            168,
            0,
            0,
        )

    # A new endpoint shows its secret once; the list never shows secrets.
    page.get_by_role("navigation", name="Deliveries").get_by_role(
        "link", name="Webhook endpoints"
    ).click()
    page.get_by_label("Name").fill("SMS gateway")
    page.get_by_label("URL").fill("https://sms.example/hooks")
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_test_id("webhook-secret").inner_text()
    with open_session(live_server.database_url) as db:
        stored = db.scalar(select(WebhookEndpoint).where(WebhookEndpoint.name == "SMS gateway"))
        assert stored is not None
        assert stored.secret == secret
    page.reload()
    assert page.get_by_test_id("webhook-secret").count() == 0
    assert "503" in page.get_by_test_id("webhook-attempts").inner_text()

    # The dead delivery on its endpoint's page, replayed, then delivered.
    page.goto(f"{live_server.base_url}/admin/webhooks/{ids['endpoint']}")
    dead = page.get_by_test_id("dead-deliveries")
    assert "HTTP 503" in dead.inner_text()
    dead.get_by_role("button", name="Replay").click()
    assert page.get_by_test_id("delivery-status").inner_text().startswith("queued")
    with open_session(live_server.database_url) as db:
        dispatch_batch(db, worker="w1")
    page.reload()
    assert page.get_by_test_id("delivery-status").inner_text() == "sent"
    assert len(webhook_receiver.requests) == 2
