"""The customer list and the customer 360 on the demo retailer, read only: the filters narrow
the list to exactly the customers they say, the 360 loads every domain's panel, pages through
the timeline, and its activity chart plots what the API serves."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from rapport.customers.models import Consent, Customer, CustomerTraits
from rapport.platform import service as platform
from rapport.platform.admin import CUSTOMER_PANELS
from rapport.platform.db import open_session
from tests.conftest import DemoSite, sign_in

pytestmark = pytest.mark.browser


def _expected_customers(site: DemoSite, *, purpose: str, start: datetime, end: datetime) -> int:
    """Known, live customers who granted ``purpose`` and joined (the earlier of the profile's
    creation and their first event) in [start, end), counted here in Python."""
    with open_session(site.database_url) as db:
        granted = set(
            db.scalars(
                select(Consent.customer_id).where(
                    Consent.purpose == purpose, Consent.granted.is_(True)
                )
            )
        )
        first_seen = dict(
            db.execute(select(CustomerTraits.customer_id, CustomerTraits.first_seen_at)).all()
        )
        count = 0
        for customer in db.scalars(
            select(Customer).where(Customer.status == "active", Customer.is_anonymous.is_(False))
        ):
            seen = first_seen.get(customer.customer_id)
            joined = min(customer.created_at, seen) if seen else customer.created_at
            if customer.customer_id in granted and start <= joined < end:
                count += 1
        return count


def _listed_total(page) -> int:  # type: ignore[no-untyped-def]
    pager = page.locator(".pager").first.inner_text()
    found = re.search(r"of ([\d,]+)", pager) or re.search(r"([\d,]+) rows?", pager)
    assert found, pager
    return int(found.group(1).replace(",", ""))


def test_list_filters_by_consent_and_join_date(page, demo_site: DemoSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/customers")
    # when a marketer lists those who said yes to email and joined in the first demo year
    page.get_by_label("Consent granted").select_option("marketing_email")
    page.get_by_label("Joined from").fill("2025-01-01")
    page.get_by_label("Joined until").fill("2025-12-31")
    page.get_by_role("button", name="Search").click()
    # then the list holds exactly those customers, each showing the consent
    expected = _expected_customers(
        demo_site,
        purpose="marketing_email",
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert expected > 0
    assert _listed_total(page) == expected
    rows = page.get_by_test_id("customer-results").locator("tbody tr")
    assert rows.count() == min(expected, 25)
    for text in rows.all_inner_texts():
        assert "marketing email" in text
    # and the next page keeps the filters
    if expected > 25:
        page.get_by_role("link", name="Next →").click()
        assert "purpose=marketing_email" in page.url
        assert _listed_total(page) == expected


def test_a_date_the_list_cannot_read_is_pointed_out(page, demo_site: DemoSite) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, demo_site)
    answer = page.goto(f"{demo_site.base_url}/admin/customers?joined_from=31/12/2025")
    assert answer is not None
    assert answer.status == 422
    assert page.locator('[data-field-error="joined_from"]').inner_text() == (
        "A date such as 2026-03-31"
    )


def _busy_customer(site: DemoSite) -> str:
    """A demo customer with a few pages of events (but under the API's 500 a call)."""
    with open_session(site.database_url) as db:
        found = db.scalars(
            select(CustomerTraits.customer_id)
            .join(Customer, Customer.customer_id == CustomerTraits.customer_id)
            .where(
                Customer.status == "active",
                CustomerTraits.event_count > 30,
                CustomerTraits.event_count < 300,
            )
            .order_by(CustomerTraits.event_count.desc())
        ).first()
    assert found is not None
    return found


def test_the_360_loads_every_panel_and_pages_the_timeline(page, demo_site: DemoSite) -> None:  # type: ignore[no-untyped-def]
    customer_id = _busy_customer(demo_site)
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/customers/{customer_id}")
    # then every domain's panel is loaded into its section by htmx, none failing
    sections = page.locator("section.panel")
    assert sections.count() == len(CUSTOMER_PANELS)
    page.wait_for_function(
        "() => document.querySelectorAll('section.panel .panel-body [aria-busy]').length === 0"
    )
    assert page.locator("[data-panel-error]").count() == 0
    for index, panel in enumerate(CUSTOMER_PANELS):
        section = sections.nth(index)
        assert section.get_attribute("data-panel") == panel.title
        assert section.get_by_role("heading", name=panel.title).count() == 1
        assert section.locator(".panel-body").inner_text().strip() != ""
    # and the timeline shows 15 events, the next 15 on the next page
    timeline = page.get_by_test_id("timeline").locator("tbody tr")
    first_page = timeline.all_inner_texts()
    assert len(first_page) == 15
    page.get_by_role("link", name="Next →").click()
    assert "page=2" in page.url
    second_page = page.get_by_test_id("timeline").locator("tbody tr").all_inner_texts()
    assert len(second_page) == 15
    assert second_page != first_page


def test_the_activity_chart_plots_the_events_the_api_serves(page, demo_site: DemoSite) -> None:  # type: ignore[no-untyped-def]
    customer_id = _busy_customer(demo_site)
    with open_session(demo_site.database_url) as db:
        secret = platform.create_api_key(
            db, name="activity chart check", scopes=[platform.Scope.READ]
        ).secret
    served = page.request.get(
        f"{demo_site.base_url}/v1/customers/{customer_id}/timeline?limit=500",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert served.ok
    events = served.json()
    assert 0 < len(events) < 500
    counts = Counter((e["occurred_at"][:7], e["channel"]) for e in events)

    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/customers/{customer_id}")
    page.wait_for_function("() => Chart.getChart('activity-chart') !== undefined")
    plotted = page.evaluate(
        """() => {
          const chart = Chart.getChart('activity-chart');
          return {labels: chart.data.labels,
                  series: chart.data.datasets.map((d) => ({label: d.label, data: d.data}))};
        }"""
    )
    drawn = Counter()
    for series in plotted["series"]:
        for month, value in zip(plotted["labels"], series["data"], strict=True):
            if value:
                drawn[(month, series["label"])] = value
    assert drawn == counts
    # months without events are drawn as empty months, not left out
    months = sorted({month for month, _ in counts})
    assert plotted["labels"][0] == months[0]
    assert plotted["labels"][-1] == months[-1]
