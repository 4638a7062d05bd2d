"""The experience dashboard says the window of each block: the moments of truth cover the
trends' year, where the score tiles and breakdowns cover 90 days."""

from __future__ import annotations

from fastapi.testclient import TestClient

from rapport.feedback.admin import TREND_DAYS


def test_moments_of_truth_name_their_window(admin: TestClient) -> None:
    # when the dashboard opens
    page = admin.get("/admin/feedback")
    # then the moments of truth say they cover the last 365 days
    assert page.status_code == 200, page.text
    assert TREND_DAYS == 365
    assert "Moments of truth (NPS), last 365 days" in page.text
    assert "last 90 days" in page.text
