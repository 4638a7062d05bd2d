"""The public survey page on a phone: the NPS scale's eleven scores are all the same width, in
two even rows (six and five), where a wrapping flex row made 0-6 narrow and 7-10 wide; on a
wide screen they stand in one row, as do the five CSAT scores on a phone."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.feedback import service
from rapport.feedback.surveys import links
from rapport.platform.db import open_session
from tests.conftest import LiveServer
from tests.feedback.factories import make_customer, make_survey

pytestmark = pytest.mark.browser

SECRET = "live-server-secret-for-tests"


def _link(server: LiveServer, kind: str) -> str:
    with open_session(server.database_url) as db:
        make_survey(db, survey_id=f"{kind}-page", kind=kind, trigger="manual")
        customer, _ = make_customer(db)
        decision = service.invite(
            db,
            survey_id=f"{kind}-page",
            customer_id=customer,
            moment=service.Occasion(source_key=f"manual:{kind}", stage="manual"),
        )
        assert decision.invitation is not None
        invitation_id = decision.invitation.invitation_id
    return f"{server.base_url}{links.path(invitation_id, secret=SECRET)}"


def _boxes(page: Any) -> list[dict[str, float]]:
    return [label.bounding_box() for label in page.locator(".scale label").all()]


def test_the_scores_are_even_on_a_phone_and_in_one_row_when_wide(
    page: Any, live_server: LiveServer
) -> None:
    nps = _link(live_server, "nps")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(nps)
    boxes = _boxes(page)
    assert len(boxes) == 11
    widths = [round(b["width"]) for b in boxes]
    assert max(widths) - min(widths) <= 1, widths
    assert widths[0] >= 40  # wide enough to tap
    rows = sorted({round(b["y"]) for b in boxes})
    assert [sum(1 for b in boxes if round(b["y"]) == y) for y in rows] == [6, 5]
    page.set_viewport_size({"width": 1280, "height": 900})
    boxes = _boxes(page)
    assert len({round(b["y"]) for b in boxes}) == 1
    assert max(b["width"] for b in boxes) - min(b["width"] for b in boxes) <= 1
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(_link(live_server, "csat"))
    boxes = _boxes(page)
    assert len(boxes) == 5
    assert len({round(b["y"]) for b in boxes}) == 1
