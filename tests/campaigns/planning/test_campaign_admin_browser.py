"""The campaign pages in headless Chromium: create a campaign, pick its segment, write its
message, preview it for a customer, launch it, and read its results with the uplift chart."""

from __future__ import annotations

from rapport.campaigns.delivery import sending
from rapport.campaigns.models import Delivery
from rapport.campaigns.segments import membership as segments
from rapport.platform import jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import send_at_any_hour
from tests.campaigns.planning.factories import make_customer
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"


def test_create_preview_launch_and_read_results(page, live_server, smtp_sink) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        customer_id = make_customer(db, first_name="Grace")
        segments.create_segment(db, name="Everyone", definition={"match": "all", "conditions": []})
        # The default quiet hours (21:00-08:00) would hold the email when the suite runs at night.
        send_at_any_hour(db)
        db.commit()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.locator("details[data-section=Campaigns] > summary").click()
    page.get_by_role("link", name="Campaigns", exact=True).click()

    page.get_by_label("Name").fill("Winter sale")
    page.get_by_role("button", name="Create").click()
    assert "Campaign created" in page.get_by_test_id("message").inner_text()

    page.get_by_test_id("segment-picker").select_option(label="Everyone (1)")
    page.get_by_label("Control group (%)").fill("0")
    page.get_by_test_id("save-settings").click()
    assert page.get_by_test_id("message").inner_text() == "Campaign saved"

    new_message = page.get_by_test_id("new-template")
    new_message.get_by_label("Subject").fill("Winter sale, {{ first_name }}")
    new_message.get_by_label("Body").fill("<p>Everything warm is 20% off, {{ first_name }}.</p>")
    new_message.get_by_role("button", name="Save message").click()
    assert "saved" in page.get_by_test_id("message").inner_text()

    page.get_by_label("Customer", exact=True).fill(customer_id)
    page.get_by_role("button", name="Preview").click()
    assert page.get_by_test_id("preview-subject").inner_text() == "Winter sale, Grace"
    assert "20% off, Grace." in page.get_by_test_id("preview-body").inner_text()

    page.get_by_test_id("launch").click()
    assert "launched" in page.get_by_test_id("message").inner_text()
    assert page.get_by_test_id("campaign-status").inner_text() == "sending"
    # The worker queues the audience.
    jobs.run_due(worker_id="browser-test", database_url=live_server.database_url)
    with open_session(live_server.database_url) as db:
        assert db.query(Delivery).filter(Delivery.customer_id == customer_id).count() == 1

    # Queued is not sent: the campaign reads sending until the dispatcher has sent it.
    page.reload()
    assert page.get_by_test_id("campaign-status").inner_text() == "sending"
    sending.drain(database_url=live_server.database_url)
    page.reload()
    assert page.get_by_test_id("campaign-status").inner_text() == "sent"
    page.get_by_role("link", name="Results").click()
    page.wait_for_function("() => Chart.getChart('conversion-chart') !== undefined")
    page.wait_for_function("() => Chart.getChart('revenue-chart') !== undefined")
    assert page.get_by_test_id("treated-customers").inner_text().startswith("1")
    assert "no control group" in page.get_by_test_id("reading").inner_text()
    assert "start at 0 at the lowest" in page.get_by_test_id("intervals-note").inner_text()
