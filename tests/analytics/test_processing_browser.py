"""The Event processing page on a phone (390 px wide): the held events' count, when each was
held and what it waits behind can be read without scrolling the page sideways."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rapport.events.models import HeldEvent
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as
from tests.events.factories import tracked

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
HELD_AT = datetime(2026, 12, 7, 10, 1, tzinfo=UTC)

LAYOUT = """() => {
  const page = document.documentElement.scrollWidth;
  const row = document.querySelector('[data-testid="held-events"] tbody tr');
  const cells = [...row.querySelectorAll("td")].map((cell) => {
    const box = cell.getBoundingClientRect();
    return {text: cell.innerText, left: box.left, right: box.right, width: box.width};
  });
  return {page, cells};
}"""


def _seed(url: str) -> None:
    with open_session(url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        grant = tracked(db, type="consent_changed", channel="web", properties={"granted": True})
        later = tracked(db, type="consent_changed", channel="web", properties={"granted": False})
        db.flush()
        for event, behind in ((grant, None), (later, grant.position)):
            db.add(
                HeldEvent(
                    processor="customers.profile",
                    position=event.position,
                    attempts=0 if behind else 4,
                    error=(
                        "OperationalError: (sqlite3.OperationalError) no such column:"
                        " customer_traits.favourite_store_identifier_from_the_kiosk_feed"
                    ),
                    first_failed_at=HELD_AT - timedelta(minutes=1),
                    last_failed_at=HELD_AT,
                    held_at=HELD_AT,
                    behind=behind,
                )
            )
        db.commit()


def test_held_events_read_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    _seed(live_server.database_url)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    page.goto(f"{live_server.base_url}/admin/settings/processing")
    page.wait_for_load_state("networkidle")
    if shot := os.environ.get("RAPPORT_SCREENSHOT"):
        page.screenshot(path=shot, full_page=True)
    layout = page.evaluate(LAYOUT)
    context.close()

    # the page does not scroll sideways, and neither does the held events' table: every cell
    # of a held event, its time and tries included, lies within the phone's width (the table
    # scrolled inside itself, showing the processor and half the event id)
    assert layout["page"] <= PHONE["width"]
    for cell in layout["cells"]:
        assert cell["right"] <= PHONE["width"], cell
    assert [cell["text"] for cell in layout["cells"][3:5]] == ["0", "7 Dec 2026, 10:01 UTC"]
