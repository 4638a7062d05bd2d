"""The Tracking admin page (rejected messages) with a long value in a refused message, at a
laptop's 1280 px and a phone's 390 px: nothing is pushed out of view, the key reads as its
name, and the page never scrolls sideways."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as
from tests.events.factories import basic_auth

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

LAYOUT = """() => {
  const table = document.querySelector('[data-testid="rejected-messages"]');
  const row = table.querySelector("tbody tr");
  const cells = [...row.querySelectorAll("td")].map((cell) => {
    const box = cell.getBoundingClientRect();
    return {text: cell.innerText, left: box.left, right: box.right, width: box.width,
            height: box.height};
  });
  return {page: document.documentElement.scrollWidth, view: window.innerWidth, cells};
}"""


def _seed(server: LiveServer, messages: list[dict[str, Any]] | None = None) -> None:
    """An operator, and a batch whose messages are all refused (by default one with a
    5,000-character messageId)."""
    with open_session(server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        secret = platform.create_api_key(
            db, name="Shop website", scopes=[platform.Scope.INGEST]
        ).secret
    if messages is None:
        messages = [{"type": "track", "event": "A B", "userId": "u-1", "messageId": "m" * 5000}]
    answer = httpx.post(
        f"{server.base_url}/v1/batch",
        json={"batch": messages},
        headers=basic_auth(secret),
    )
    assert answer.json()["rejected"] == len(messages), answer.text


def _opened(browser: Any, server: LiveServer, viewport: dict[str, int], shot: str) -> Any:
    """The page of rejected messages, signed in, at ``viewport`` (its context to close);
    saved as ``$RAPPORT_SCREENSHOT-<shot>.png`` when that is set."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    sign_in_as(page, server.base_url, "ops@example.com", PASSWORD)
    page.goto(f"{server.base_url}/admin/events/rejected")
    page.wait_for_load_state("networkidle")
    if prefix := os.environ.get("RAPPORT_SCREENSHOT"):
        page.screenshot(path=f"{prefix}-{shot}.png", full_page=True)
    return page


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_long_message_id_keeps_the_page_readable(
    browser: Any, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    _seed(live_server)
    page = _opened(browser, live_server, viewport, str(viewport["width"]))
    context = page.context
    layout = page.evaluate(LAYOUT)
    # the message as it came, opened, wraps within its cell too
    page.locator('[data-testid="rejected-messages"] summary').click()
    opened = page.evaluate(LAYOUT)
    context.close()
    assert opened["page"] <= viewport["width"]
    assert all(cell["right"] <= viewport["width"] for cell in opened["cells"]), opened

    # the page does not scroll sideways, and every cell of the message, the reason and why
    # included, lies within the window (the 5,000-character messageId pushed the message
    # column out of view and squeezed the key column to three characters a line)
    assert layout["page"] <= viewport["width"]
    for cell in layout["cells"]:
        assert cell["right"] <= viewport["width"], cell
        assert cell["width"] > 0, cell
    texts = [cell["text"] for cell in layout["cells"]]
    # the key reads as its name, in a column wide enough for it (it was 3 characters a line)
    key = next(cell for cell in layout["cells"] if "Shop website" in cell["text"])
    assert key["width"] > 80, key
    assert "key_" not in key["text"]
    # the message id is cut short, the reason and why are there
    assert not any("m" * 200 in text for text in texts)
    assert any("string_too_long" in text for text in texts)


# Refusals whose sentences are long, or hold long unbroken words (paths, field names): as the
# tester's were, on the laptop's page the table was 1273 px in its 1,160 px frame.
WORDY = [
    {"type": "track", "event": "Order Placed", "userId": "u-2", "messageId": "w-1"},
    {
        "type": "track",
        "event": "Consent Changed",
        "userId": "u-3",
        "messageId": "w-2",
        "properties": {"purpose": "marketing_email", "granted": True},
    },
    {
        "type": "track",
        "event": "A B",
        "userId": "u-4",
        "messageId": "w-3",
        "context": {"channel": "store"},
    },
    {
        "type": "identify",
        "userId": "u-5",
        "messageId": "w-4",
        "traits": {"timezone": "Europe/Nowhere_Atlantis_Very_Long_Name"},
    },
]

FITS = """() => {
  const table = document.querySelector('[data-testid="rejected-messages"]');
  const frame = table.parentElement;
  return {table: table.scrollWidth, frame: frame.clientWidth,
          page: document.documentElement.scrollWidth};
}"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_long_refusals_wrap_within_the_frame(
    browser: Any, live_server: LiveServer, viewport: dict[str, int]
) -> None:
    # given refusals with long sentences and long words, kept from one batch
    _seed(live_server, WORDY)

    # when an operator opens the page
    page = _opened(browser, live_server, viewport, f"wordy-{viewport['width']}")
    fits = page.evaluate(FITS)
    page.context.close()

    # then the table fits its frame (nothing cut, nothing to scroll), and the page its window
    assert fits["table"] <= fits["frame"], fits
    assert fits["page"] <= viewport["width"], fits
