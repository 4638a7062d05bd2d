"""The experience dashboard says the window of each block: the moments of truth cover the
trends' year, where the score tiles and breakdowns cover 90 days."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rapport.feedback.admin import TREND_DAYS, trend_chart


def test_moments_of_truth_name_their_window(admin: TestClient) -> None:
    # when the dashboard opens
    page = admin.get("/admin/feedback")
    # then the moments of truth say they cover the last 365 days
    assert page.status_code == 200, page.text
    assert TREND_DAYS == 365
    assert "Moments of truth (NPS), last 365 days" in page.text
    assert "last 90 days" in page.text


@pytest.mark.parametrize(
    ("kind", "axis"), [("ces", (1.0, 7.0)), ("nps", (-100.0, 100.0)), ("csat", (0.0, 100.0))]
)
def test_a_trend_charts_axis_spans_its_kinds_scale(kind: str, axis: tuple[float, float]) -> None:
    # when a kind's trend is drawn
    scales = trend_chart(kind, []).config()["options"]["scales"]["y"]
    # then its axis runs from the lowest score to the highest (CES 1 to 7, not from 0)
    assert (scales["min"], scales["max"]) == axis
    assert "beginAtZero" not in scales
