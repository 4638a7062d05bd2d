"""The orders overview page over HTTP (the charts themselves: test_admin_browser.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.platform import service as platform
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


def test_on_time_panels_say_why_they_are_empty_rather_than_draw_empty_axes(
    client: TestClient, db: Session
) -> None:
    # given a shop with no shipped order whose promised date has come (a new one, or one
    # imported from files without promises)
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303

    # when the orders page is opened
    page = client.get("/admin/orders")

    # then each on-time panel says there is nothing due yet, and draws no chart
    assert page.status_code == 200
    assert 'data-testid="on-time-channel-empty"' in page.text
    assert 'data-testid="on-time-carrier-empty"' in page.text
    assert 'data-testid="chart-promise-channel"' not in page.text
    assert 'data-testid="chart-promise-carrier"' not in page.text
