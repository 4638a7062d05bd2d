"""Review moderation on a phone (390 px): each held review is one block, with Publish and
Reject on the screen and the review's words the width of the screen, not squeezed into a
column of a table wider than the phone."""

from __future__ import annotations

import os

from rapport.feedback import service
from rapport.feedback.schemas import ReviewIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.feedback.factories import in_catalogue

PASSWORD = "correct horse battery"
WORDS = "Terrible, broken, awful. " + "The hinge snapped on the second day of use. " * 4


def test_publish_and_reject_are_on_a_phones_screen(page, live_server) -> None:
    # given a review held by screening
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="mod@example.com", password=PASSWORD)
        in_catalogue(db, "SKU-1")
        held = service.submit_review(
            db, review=ReviewIn(customer_id=None, sku="SKU-1", rating=5, text=WORDS)
        )
        assert held.status == "flagged"
    sign_in_as(page, live_server.base_url, "mod@example.com", PASSWORD)

    # when the moderation queue opens on a 390 px phone
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.base_url}/admin/feedback/reviews")
    shots = os.environ.get("RAPPORT_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/moderation-390.png", full_page=True)

    # then Publish and Reject lie inside the screen, and the review's words are not squeezed
    for name in ("Publish", "Reject"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= 390, (name, box)
    text = page.get_by_test_id("review-text").bounding_box()
    assert text is not None
    assert text["width"] >= 300, text
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
