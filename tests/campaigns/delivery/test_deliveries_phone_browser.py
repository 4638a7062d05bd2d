"""The deliveries log and a campaign's results on a phone (390 px): each delivery and each
measure is one block, its status, reason and uplift under their column's name on the screen,
where the log's table (845 px) scrolled sideways inside a 358 px box with Status and Reason out
of sight, and the results' uplift column was cut off."""

from __future__ import annotations

import os
from typing import Any

import pytest
from sqlalchemy import select

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Delivery
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
WIDTH = 390
REASON = "no consent: the customer withdrew marketing_email before it was sent"


def _on_screen(page: Any, selector: str) -> Any:
    cell = page.locator(selector).first
    box = cell.bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= WIDTH, (selector, box)
    return cell


def _label(cell: Any) -> str:
    return str(cell.evaluate("cell => getComputedStyle(cell, '::before').content"))


def _no_sideways_scroll(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= WIDTH
    for table in page.locator("main table").all():
        assert table.evaluate("table => table.scrollWidth") <= WIDTH


def test_a_deliverys_status_and_reason_and_the_uplift_are_on_a_phones_screen(
    page: Any, live_server: LiveServer
) -> None:
    # given a campaign with a suppressed delivery (a long reason), a queued one and a control
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        people = [make_customer(db) for _ in range(3)]
        campaign = make_campaign(db, name="Spring sale for the whole of the Lyon region")
        queue_deliveries(
            db,
            campaign=campaign,
            recipients=[
                Recipient(customer_id=people[0]),
                Recipient(customer_id=people[1]),
                Recipient(customer_id=people[2], group="control"),
            ],
        )
        suppressed = db.scalars(select(Delivery).where(Delivery.customer_id == people[0])).one()
        suppressed.status, suppressed.reason = "suppressed", REASON
        db.commit()
        campaign_id, suppressed_id = campaign.id, suppressed.id
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.set_viewport_size({"width": WIDTH, "height": 844})
    shots = os.environ.get("RAPPORT_SCREENSHOTS")

    # when the deliveries log opens on a 390 px phone
    page.goto(f"{live_server.base_url}/admin/deliveries")
    if shots:
        page.screenshot(path=f"{shots}/deliveries-390.png", full_page=True)
    # then the suppressed delivery's status and reason lie inside the screen, named
    row = f'tr:has(a[href="/admin/deliveries/{suppressed_id}"])'
    status = _on_screen(page, f'{row} [data-testid="delivery-status"]')
    assert status.inner_text() == "suppressed"
    assert _label(status) == '"Status: "'
    reason = _on_screen(page, f'{row} [data-testid="delivery-reason"]')
    assert reason.inner_text() == REASON
    assert _label(reason) == '"Reason: "'
    # and a queued delivery's empty reason takes no line
    queued = page.locator('tr[data-status="queued"] [data-testid="delivery-reason"]').first
    assert not queued.is_visible()
    _no_sideways_scroll(page)

    # when the campaign's results open
    page.goto(f"{live_server.base_url}/admin/campaigns/{campaign_id}/results")
    if shots:
        page.screenshot(path=f"{shots}/results-390.png", full_page=True)
    # then each measure's uplift lies inside the screen under its column's name
    uplift = _on_screen(page, '[data-testid="conversion-uplift"]')
    assert _label(uplift) == '"Uplift (95% interval): "'
    _on_screen(page, '[data-testid="revenue-uplift"]')
    assert _label(_on_screen(page, '[data-testid="control-customers"]')) == '"Control: "'
    _no_sideways_scroll(page)
