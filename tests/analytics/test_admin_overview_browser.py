"""The business overview on the demo retailer, in Chromium: each tile shows the figure
analytics computes and opens its page, and the NPS trend plots what the feedback API serves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rapport.analytics.service import Overview, collect_overview
from rapport.platform import formatting
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import DemoSite, sign_in

pytestmark = pytest.mark.browser

LOCALE = formatting.DEFAULT_LOCALE


def _figures(overview: Overview) -> dict[str, str]:
    """What each tile must show, formatted as the page's filters format it."""

    def share(value: float | None) -> str:
        return formatting.share(value, LOCALE)

    def money(minor: int | None) -> str:
        return formatting.money(minor, overview.currency, LOCALE)

    return {
        "count-customers": formatting.number(overview.customers, LOCALE),
        "count-members": formatting.number(overview.members, LOCALE),
        "count-active-members": formatting.number(overview.active_members, LOCALE),
        "value-liability": money(overview.liability_minor),
        "value-breakage": share(overview.breakage),
        "value-nps": formatting.number(overview.nps_year, LOCALE, 1),
        "value-on-time": share(overview.on_time_share),
        "value-return-rate": share(overview.return_rate),
        "value-revenue-member": money(overview.revenue_per_member_minor),
        "value-revenue-non-member": money(overview.revenue_per_non_member_minor),
        "count-tickets-past-sla": formatting.number(overview.tickets_past_sla, LOCALE),
    }


TILE_PAGES = {
    "tile-members": "/admin/customers",
    "tile-active-members": "/admin/loyalty",
    "tile-liability": "/admin/loyalty",
    "tile-breakage": "/admin/loyalty",
    "tile-nps": "/admin/feedback",
    "tile-on-time": "/admin/orders",
    "tile-return-rate": "/admin/orders",
    "tile-revenue": "/admin/customers",
    "tile-tickets": "/admin/feedback/tickets",
}


def test_tiles_show_the_computed_figures_and_open_their_pages(
    page: Any, demo_site: DemoSite
) -> None:
    # given the demo retailer's figures as analytics computes them
    with open_session(demo_site.database_url) as db:
        overview = collect_overview(db)
    assert overview.members > 0
    assert overview.nps_answers > 0
    # when a manager opens the overview
    sign_in(page, demo_site)
    # then each tile shows its figure
    for test_id, expected in _figures(overview).items():
        assert page.get_by_test_id(test_id).inner_text().strip() == expected, test_id
    # and each tile links to its page
    for tile, path in TILE_PAGES.items():
        link = page.get_by_test_id(tile).locator("a")
        assert link.get_attribute("href") == path, tile
    # and following one opens that page
    page.get_by_test_id("tile-tickets").locator("a").click()
    page.wait_for_url(f"{demo_site.base_url}/admin/feedback/tickets")
    assert page.get_by_role("heading", level=1).count() == 1


def test_nps_trend_plots_what_the_feedback_api_serves(page: Any, demo_site: DemoSite) -> None:
    # given a key that may read the feedback scores
    with open_session(demo_site.database_url) as db:
        secret = platform.create_api_key(
            db, name="overview test", scopes=[platform.Scope.READ]
        ).secret
    # when the overview's NPS chart is drawn
    sign_in(page, demo_site)
    page.wait_for_function("() => window.Chart && Chart.getChart('nps-trend') !== undefined")
    months: list[str] = page.evaluate("() => Chart.getChart('nps-trend').data.labels")
    plotted: list[float | None] = page.evaluate(
        "() => Chart.getChart('nps-trend').data.datasets[0].data"
    )
    assert len(months) == 12
    # then every month's point is the NPS the API serves for that month
    served = httpx.get(
        f"{demo_site.base_url}/v1/feedback/scores/trend",
        params={"kind": "nps", "period": "month", "since": f"{months[0]}-01"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert served.status_code == 200
    by_month = {row["key"]: row["value"] for row in served.json()}
    assert [by_month.get(month) for month in months] == plotted
    assert sum(value is not None for value in plotted) >= 6
