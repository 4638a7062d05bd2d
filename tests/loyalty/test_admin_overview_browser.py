"""The loyalty manager's overview in headless Chromium: the points-by-month chart plots what
the members' statements (the API) hold, and the member list is paginated and filterable."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx

from rapport.loyalty import service as loyalty
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.service import Scope
from tests.conftest import sign_in_as
from tests.loyalty.factories import make_customer

PASSWORD = "correct horse battery"


def _sign_in(page: Any, base: str) -> None:
    sign_in_as(page, base, "manager@example.com", PASSWORD)


def _flows_from_the_api(base: str, key: str, customer_ids: list[str]) -> Counter[tuple[str, str]]:
    """(month, issued|redeemed) → points, summed from each member's statement."""
    flows: Counter[tuple[str, str]] = Counter()
    for customer_id in customer_ids:
        answer = httpx.get(
            f"{base}/v1/loyalty/members/{customer_id}/statement",
            headers={"Authorization": f"Bearer {key}"},
            params={"limit": 200},
        )
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:
            month = item["created_at"][:7]
            if item["kind"] in ("earn", "adjust") and item["points"] > 0:
                flows[(month, "Issued")] += item["points"]
            elif item["kind"] == "redeem":
                flows[(month, "Redeemed")] += -item["points"]
    return flows


def test_points_by_month_plots_what_the_statements_hold(page, live_server) -> None:
    base = live_server.base_url
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
        key = platform.create_api_key(db, name="reports", scopes=[Scope.READ]).secret
        ann = make_customer(db, email="ann@example.com")
        bob = make_customer(db, email="bob@example.com")
        loyalty.earn(db, customer_id=ann, points=500, reason="Order O-1", order_id="O-1")
        loyalty.earn(db, customer_id=bob, points=300, reason="Order O-2", order_id="O-2")
        loyalty.redeem(db, customer_id=ann, points=120, reason="Reward")
        loyalty.adjust(db, customer_id=bob, points=50, reason="Goodwill: Late delivery")
        loyalty.adjust(db, customer_id=bob, points=-20, reason="Correction")
    _sign_in(page, base)
    page.goto(f"{base}/admin/loyalty")
    # the chart as Chart.js drew it, and the table of its figures
    page.wait_for_function("() => window.Chart && Chart.getChart('points-by-month')")
    plotted = page.evaluate(
        "() => { const c = Chart.getChart('points-by-month');"
        " return {labels: c.data.labels, sets: c.data.datasets.map(d => [d.label, d.data])}; }"
    )
    config = json.loads(page.locator("#points-by-month-config").inner_text())
    assert plotted["labels"] == config["data"]["labels"]
    month = plotted["labels"][-1]
    drawn = {
        label: dict(zip(plotted["labels"], data, strict=True)) for label, data in plotted["sets"]
    }
    table = page.locator(f'[data-chart-table="points-by-month"] tr[data-label="{month}"] td')
    cells = [
        float(value) for value in table.evaluate_all("cells => cells.map(c => c.dataset.value)")
    ]
    # then this month's figures are what the members' statements hold, in the chart and table
    expected = _flows_from_the_api(base, key, [ann, bob])
    assert expected[(month, "Issued")] == 850
    assert expected[(month, "Redeemed")] == 120
    assert drawn["Issued"][month] == expected[(month, "Issued")]
    assert drawn["Redeemed"][month] == expected[(month, "Redeemed")]
    assert drawn["Expired"][month] == 0
    assert cells == [850, 120, 0]
    # and every other month is empty
    assert sum(v for m, v in drawn["Issued"].items() if m != month) == 0


def test_the_member_list_is_paginated_and_filtered(page, live_server) -> None:
    base = live_server.base_url
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
        for number in range(1, 56):
            customer_id = make_customer(db, email=f"m{number}@example.com")
            loyalty.earn(db, customer_id=customer_id, points=number * 10, reason="Order")
    _sign_in(page, base)
    page.goto(f"{base}/admin/loyalty")
    rows = page.get_by_test_id("member-results").locator("tbody tr")
    # 50 to a page, highest balance first
    assert rows.count() == 50
    assert rows.first.inner_text().split("\t")[3] == "550"
    page.get_by_test_id("pager").get_by_role("link", name="Next").click()
    assert page.get_by_test_id("member-results").locator("tbody tr").count() == 5
    # a balance range keeps the members within it, and the pager keeps the range
    page.goto(f"{base}/admin/loyalty")
    page.get_by_label("Points from").fill("100")
    page.get_by_label("Points up to").fill("200")
    page.get_by_role("button", name="Find").click()
    balances = [
        row.split("\t")[3]
        for row in page.get_by_test_id("member-results").locator("tbody tr").all_inner_texts()
    ]
    assert balances == [str(points) for points in range(200, 90, -10)]
    # a search finds one member
    page.get_by_label("Find a member").fill("m7@example.com")
    page.get_by_label("Points from").fill("")
    page.get_by_label("Points up to").fill("")
    page.get_by_role("button", name="Find").click()
    found = page.get_by_test_id("member-results").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[1] for row in found] == ["m7@example.com"]


def test_members_by_tier_counts_the_tiers_the_api_gives(page, live_server) -> None:
    base = live_server.base_url
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
        key = platform.create_api_key(db, name="reports", scopes=[Scope.READ]).secret
        members = [make_customer(db) for _ in range(3)]
        for customer_id in members:
            loyalty.earn(db, customer_id=customer_id, points=100, reason="Order")
    served: Counter[str] = Counter()
    for customer_id in members:
        answer = httpx.get(
            f"{base}/v1/loyalty/members/{customer_id}/tier",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 200, answer.text
        served[answer.json()["tier_name"]] += 1
    _sign_in(page, base)
    page.goto(f"{base}/admin/loyalty")
    page.wait_for_function("() => window.Chart && Chart.getChart('members-by-tier')")
    plotted = page.evaluate(
        "() => { const c = Chart.getChart('members-by-tier');"
        " const data = c.data.datasets[0].data;"
        " return Object.fromEntries(c.data.labels.map((l, i) => [l, data[i]])); }"
    )
    assert {name: count for name, count in plotted.items() if count} == dict(served)
    assert sum(plotted.values()) == 3


def test_each_figure_stays_on_one_line_at_1280_pixels(page, live_server) -> None:
    base = live_server.base_url
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="manager@example.com", password=PASSWORD)
        member = make_customer(db)
        # 100,350,687 points at 1.00 per 100: a liability of €1,003,506.87
        loyalty.earn(db, customer_id=member, points=100_000_000, reason="Order O-1")
        loyalty.earn(db, customer_id=member, points=350_687, reason="Order O-2")
    page.set_viewport_size({"width": 1280, "height": 900})
    _sign_in(page, base)
    page.goto(f"{base}/admin/loyalty")
    assert page.get_by_test_id("liability-value").inner_text() == "€1,003,506.87"
    figures = page.locator('[data-testid="loyalty-figures"] .stat-value').evaluate_all(
        """values => values.map(v => {
            const range = document.createRange();
            range.selectNodeContents(v);
            return {
                text: v.innerText,
                lines: range.getClientRects().length,
                overflows: v.scrollWidth > v.clientWidth,
            };
        })"""
    )
    # then every figure is on one line, inside its tile
    assert [f for f in figures if f["lines"] != 1 or f["overflows"]] == []
