"""The customer 360's Campaigns panel: the messages sent to one customer, with the campaign,
channel, when, status and, for the in-app inbox, when it was read; other customers' messages
stay out of it."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.campaigns.delivery.inbox import inbox_messages, mark_read
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_campaign, make_customer, send_at_any_hour
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_campaigns_panel_lists_the_customers_messages(page: Any, live_server: LiveServer) -> None:
    # given a customer sent an inbox message (read) and held from an email, and someone else
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        send_at_any_hour(db)
        customer = make_customer(db, consents={"marketing_email": False, "marketing_push": True})
        other = make_customer(db)
        inbox = make_campaign(db, name="App spring news", channel="inbox", body="Spring is here")
        mail = make_campaign(db, name="Spring sale email")
        queue_deliveries(db, campaign=inbox, recipients=[Recipient(customer_id=customer)])
        queue_deliveries(
            db,
            campaign=mail,
            recipients=[Recipient(customer_id=customer), Recipient(customer_id=other)],
        )
        db.commit()
        dispatch_batch(db, worker="w1")
        (message,) = inbox_messages(db, customer_id=customer).messages
        mark_read(db, customer_id=customer, message_id=message.id)
        db.commit()
    sign_in_as(page, live_server.base_url, "agent@example.com", PASSWORD)
    # when the panel is loaded for the customer
    page.goto(f"{live_server.base_url}/admin/campaigns/customers/{customer}/panel")
    rows = page.get_by_test_id("panel-deliveries").locator("tbody tr")
    # then it lists both of their messages, newest first, and nothing of the other customer's
    assert rows.count() == 2
    text = page.get_by_test_id("panel-deliveries").inner_text()
    assert "App spring news" in text
    assert "Spring sale email" in text
    inbox_row = rows.filter(has_text="App spring news")
    assert "inbox" in inbox_row.inner_text()
    assert "sent" in inbox_row.inner_text()
    read = inbox_row.locator("td").nth(4).inner_text()
    assert read[:1].isdigit(), read  # a date: the message was read
    mail_row = rows.filter(has_text="Spring sale email")
    assert mail_row.locator("td").nth(3).inner_text().startswith("suppressed")
    assert "2 messages to this customer" in page.get_by_test_id("campaigns-panel").inner_text()


def test_campaigns_panel_needs_a_signed_in_admin(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.base_url}/admin/campaigns/customers/cus_x/panel")
    assert "/admin/login" in page.url
