"""A CX manager sets a score target and adds an action plan for it on the targets page; a
wrong value is refused on the form. The dashboard's NPS chart plots what the scores API
serves."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from rapport.feedback import service
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import DemoSite, LiveServer, sign_in, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _sign_in(page: Any, server: LiveServer) -> None:
    with open_session(server.database_url) as db:
        platform.create_admin_user(db, email="cx@example.com", password=PASSWORD)
    sign_in_as(page, server.base_url, "cx@example.com", PASSWORD)


def test_cx_manager_sets_a_target_and_adds_an_action_plan(
    page: Any, live_server: LiveServer
) -> None:
    _sign_in(page, live_server)
    page.goto(f"{live_server.base_url}/admin/feedback/targets")
    # when a channel target is set without naming the channel, the form says so
    form = page.get_by_test_id("target-form")
    form.locator("select[name=kind]").select_option("csat")
    form.locator("select[name=scope]").select_option("channel")
    form.get_by_label("Target score").fill("80")
    form.get_by_role("button", name="Set target").click()
    assert page.locator("[data-field-error=channel]").inner_text() == "Name the channel"
    # when the channel is picked too
    form = page.get_by_test_id("target-form")
    assert form.get_by_label("Target score").input_value() == "80"
    form.locator("select[name=channel]").select_option("web")
    form.get_by_label("Over the last (days)").fill("60")
    form.get_by_role("button", name="Set target").click()
    # then the target is listed and stored
    assert page.get_by_role("status").inner_text() == "CSAT target for channel web set to 80"
    assert "channel web" in page.get_by_test_id("targets").inner_text()
    with open_session(live_server.database_url) as db:
        (status,) = service.target_status(db)
        target = status.target
        assert (target.kind, target.scope, target.scope_value, target.target) == (
            "csat",
            "channel",
            "web",
            80,
        )
        assert target.window_days == 60
    # when an action plan is added for it
    plan = page.get_by_test_id("plan-form")
    plan.get_by_label("Action").fill("Call back every web detractor within a day")
    plan.get_by_label("Owner").fill("Maya, service lead")
    plan.get_by_label("Due").fill("2027-01-31")
    plan.locator("select[name=target_id]").select_option(str(target.id))
    plan.get_by_label("About the theme").fill("delivery")
    plan.get_by_role("button", name="Add action plan").click()
    # then it is listed with its target and theme
    assert page.get_by_role("status").inner_text() == "Action plan for Maya, service lead saved"
    row = page.get_by_test_id("action-plans").locator("tbody tr").first
    assert "Call back every web detractor within a day" in row.inner_text()
    assert "CSAT · channel web" in row.inner_text()
    # and its status changes from the list
    row.get_by_label("Status of plan", exact=False).select_option("in_progress")
    row.get_by_role("button", name="Change").click()
    with open_session(live_server.database_url) as db:
        (saved,) = service.list_action_plans(db)
        assert (saved.owner, saved.due_on, saved.status, saved.target_id, saved.theme) == (
            "Maya, service lead",
            date(2027, 1, 31),
            "in_progress",
            target.id,
            "delivery",
        )


def test_nps_chart_plots_what_the_scores_api_serves(page: Any, demo_site: DemoSite) -> None:
    # given a read key for the API
    with open_session(demo_site.database_url) as db:
        secret = platform.create_api_key(
            db, name="nps chart test", scopes=[platform.Scope.READ]
        ).secret
    # (the dashboard's trends start at midnight UTC a year ago, as the API's since)
    since_day = (clock.now().date() - timedelta(days=365)).isoformat()
    served = httpx.get(
        f"{demo_site.base_url}/v1/feedback/scores/trend",
        params={"kind": "nps", "period": "month", "since": since_day},
        headers={"Authorization": f"Bearer {secret}"},
    ).json()
    assert len(served) >= 6
    # when the dashboard is drawn
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/feedback")
    page.wait_for_function("() => Chart.getChart('trend-nps') !== undefined")
    chart = page.evaluate(
        "() => { const c = Chart.getChart('trend-nps');"
        " return {labels: c.data.labels, sets: c.data.datasets.map((d) => d.data)}; }"
    )
    # then it plots the API's months, scores and intervals
    assert chart["labels"] == [row["key"] for row in served]
    assert chart["sets"][0] == [row["value"] for row in served]
    assert chart["sets"][1] == [row["low"] for row in served]
    assert chart["sets"][2] == [row["high"] for row in served]
    # and the tile shows the last 90 days' NPS as a number with one decimal
    assert page.get_by_test_id("value-nps").inner_text().replace(".", "").lstrip("-").isdigit()
