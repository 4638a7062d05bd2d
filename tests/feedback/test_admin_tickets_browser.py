"""A service agent on the demo retailer: the ticket queue shows who wrote and what they
wrote, filters find a customer's ticket, and the ticket's page shows the conversation; a
ticket opened from the customer's Experience panel lands in the queue."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.feedback import service
from rapport.feedback.schemas import TicketIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import NAVIGATION_TIMEOUT_MS, DemoSite, LiveServer, sign_in, sign_in_as
from tests.feedback.factories import make_customer

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _a_demo_customer(site: DemoSite, offset: int) -> tuple[str, str, str]:
    with open_session(site.database_url) as db:
        customer = db.scalars(
            select(customers.Customer)
            .where(customers.Customer.status == "active", customers.Customer.last_name.is_not(None))
            .order_by(customers.Customer.customer_id)
            .offset(offset)
            .limit(1)
        ).one()
        return (
            customer.customer_id,
            f"{customer.first_name} {customer.last_name}",
            str(customer.email),
        )


def test_agent_sees_customer_and_message_in_queue_and_opens_the_ticket(
    page: Any, demo_site: DemoSite
) -> None:
    # given a demo customer's complaint with a message
    customer_id, name, email = _a_demo_customer(demo_site, 7)
    message = "The blue jumper I received has a hole in the left sleeve, please help."
    with open_session(demo_site.database_url) as db:
        ticket = service.open_ticket(
            db,
            ticket=TicketIn(
                customer_id=customer_id,
                kind="complaint",
                channel="email",
                subject="Damaged jumper",
                body=message,
            ),
        )
        ticket_id = ticket.ticket_id
    sign_in(page, demo_site)
    # when the agent searches the open tickets for the customer's email
    page.goto(f"{demo_site.base_url}/admin/feedback/tickets")
    page.get_by_label("Search").fill(email)
    page.get_by_role("button", name="Filter").click()
    # then the row names the customer (linked to their page) and shows the message
    row = page.locator(f"[data-testid=ticket-queue] tr[data-ticket='{ticket_id}']")
    customer = row.get_by_test_id("ticket-customer")
    assert customer.inner_text() == name
    assert customer.get_attribute("href") == f"/admin/customers/{customer_id}"
    assert row.get_by_test_id("ticket-message").inner_text() == message
    assert "email" in row.inner_text()
    assert "due in" in row.inner_text()
    # when the agent opens the ticket
    row.get_by_role("link", name="Damaged jumper").click()
    # then its page shows the whole message and the customer, with a form to resolve it
    assert page.get_by_test_id("ticket-subject").inner_text() == "Damaged jumper"
    assert page.get_by_test_id("ticket-body").inner_text() == message
    assert name in page.get_by_test_id("ticket-facts").inner_text()
    assert page.get_by_role("button", name="Resolve ticket").is_visible()


def test_breached_filter_keeps_only_tickets_past_their_sla(page: Any, demo_site: DemoSite) -> None:
    sign_in(page, demo_site)
    # when the agent asks for breached open tickets
    page.goto(f"{demo_site.base_url}/admin/feedback/tickets?status=open&breached=yes")
    rows = page.locator("[data-testid=ticket-queue] tbody tr[data-ticket]")
    # then each row shown is overdue, and their number matches the service's
    with open_session(demo_site.database_url) as db:
        total, _ = service.find_tickets(db, status="open", breached=True, limit=0)
    assert rows.count() == min(total, 50)
    for index in range(rows.count()):
        assert rows.nth(index).get_by_test_id("sla-breached").is_visible()


def test_ticket_opened_from_the_experience_panel_is_in_the_queue(
    page: Any, live_server: LiveServer
) -> None:
    # given a customer and a signed-in agent
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        customer_id, _ = make_customer(db)
    sign_in_as(page, live_server.base_url, "agent@example.com", PASSWORD)
    # when the agent opens a ticket from the customer's Experience panel
    page.goto(f"{live_server.base_url}/admin/feedback/customers/{customer_id}/panel")
    assert page.get_by_test_id("panel-tickets").inner_text().endswith("No tickets.")
    page.get_by_text("Open a ticket").click()
    page.get_by_label("Subject").fill("Wants to change the delivery address")
    page.get_by_label("Message").fill("Called: moving house on Friday.")
    page.get_by_label("Issue (sets the priority and SLA)").select_option("delivery_problem")
    page.get_by_role("button", name="Open ticket").click()
    # then the panel says the ticket was opened (htmx swaps it in, as on the customer page)
    said = page.get_by_test_id("panel-message").inner_text()
    assert said.startswith("Ticket opened: Wants to change the delivery address")
    # and the ticket is in the queue with its message, and in the panel
    page.goto(f"{live_server.base_url}/admin/feedback/tickets")
    queue = page.get_by_test_id("ticket-queue")
    assert "Wants to change the delivery address" in queue.inner_text()
    assert "Called: moving house on Friday." in queue.inner_text()
    assert "call center" in queue.inner_text()
    page.goto(f"{live_server.base_url}/admin/feedback/customers/{customer_id}/panel")
    assert (
        "Wants to change the delivery address" in page.get_by_test_id("panel-tickets").inner_text()
    )
    with open_session(live_server.database_url) as db:
        (ticket,) = service.customer_tickets(db, customer_id=customer_id)
        assert (ticket.kind, ticket.channel, ticket.status) == (
            "delivery_problem",
            "call_center",
            "open",
        )


def test_a_ticket_refused_on_the_customer_page_keeps_what_was_typed(
    page: Any, live_server: LiveServer
) -> None:
    # given a customer and a signed-in agent on their 360 page
    base = live_server.base_url
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        customer_id, _ = make_customer(db)
    sign_in_as(page, base, "agent@example.com", PASSWORD)
    page.goto(f"{base}/admin/customers/{customer_id}")
    panel = page.locator('[data-panel="Experience"]').get_by_test_id("experience-panel")
    panel.wait_for()
    # when they open a ticket with a message but no subject
    panel.get_by_text("Open a ticket").click()
    panel.get_by_label("Message").fill("Parcel never came")
    panel.get_by_label("Issue (sets the priority and SLA)").select_option("delivery_problem")
    panel.get_by_role("button", name="Open ticket").click()
    # then the panel says so beside the subject, with the message and issue as typed
    error = page.locator('[data-panel="Experience"] [data-field-error="subject"]')
    error.wait_for()
    assert error.inner_text() == "Subject: write what the ticket is about"
    panel = page.locator('[data-panel="Experience"]').get_by_test_id("experience-panel")
    assert panel.get_by_label("Message").input_value() == "Parcel never came"
    assert panel.get_by_label("Issue (sets the priority and SLA)").input_value() == (
        "delivery_problem"
    )
    # and once the subject is written the ticket is opened, once
    panel.get_by_label("Subject").fill("Lost parcel")
    panel.get_by_role("button", name="Open ticket").click()
    page.get_by_text("Ticket opened: Lost parcel").first.wait_for()
    with open_session(live_server.database_url) as db:
        (ticket,) = service.customer_tickets(db, customer_id=customer_id)
        assert (ticket.subject, ticket.body, ticket.kind) == (
            "Lost parcel",
            "Parcel never came",
            "delivery_problem",
        )


def test_a_refused_ticket_without_javascript_keeps_what_was_typed(
    browser: Any, live_server: LiveServer, tmp_path: Any
) -> None:
    # given a customer and an agent whose browser runs no JavaScript
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        customer_id, _ = make_customer(db)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)  # as the page fixture's
    try:
        sign_in_as(page, live_server.base_url, "agent@example.com", PASSWORD)
        # when the agent fills in the Experience panel's form but forgets the subject
        page.goto(f"{live_server.base_url}/admin/feedback/customers/{customer_id}/panel")
        page.get_by_text("Open a ticket").click()
        page.get_by_label("Message").fill("Parcel never came; wants a refund.")
        page.get_by_label("Issue (sets the priority and SLA)").select_option("delivery_problem")
        page.get_by_label("Channel").select_option("email")
        page.get_by_role("button", name="Open ticket").click()
        page.wait_for_load_state()
        page.screenshot(path=str(tmp_path / "refused-ticket.png"), full_page=True)
        # then the form is back, open, with the message at the subject and everything typed
        error = page.locator("[data-field-error=subject]")
        assert error.inner_text() == "Subject: write what the ticket is about"
        assert error.is_visible()
        assert page.get_by_label("Message").input_value() == "Parcel never came; wants a refund."
        assert page.get_by_label("Issue (sets the priority and SLA)").input_value() == (
            "delivery_problem"
        )
        assert page.get_by_label("Channel").input_value() == "email"
        assert page.get_by_test_id("back-to-customer").is_visible()
        assert page.get_by_test_id("signed-in-as").inner_text() == "agent@example.com"
        with open_session(live_server.database_url) as db:
            assert service.customer_tickets(db, customer_id=customer_id) == []
        # and with a subject it opens the ticket and goes back to the customer's page
        page.get_by_label("Subject").fill("Parcel never came")
        page.get_by_role("button", name="Open ticket").click()
        page.wait_for_url(f"{live_server.base_url}/admin/customers/{customer_id}")
        with open_session(live_server.database_url) as db:
            (ticket,) = service.customer_tickets(db, customer_id=customer_id)
            assert (ticket.subject, ticket.kind, ticket.channel) == (
                "Parcel never came",
                "delivery_problem",
                "email",
            )
    finally:
        context.close()
