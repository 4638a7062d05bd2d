"""The orders admin pages in headless Chromium on the demo retailer: on-time charts that plot
what the API reports, the orders and late-deliveries lists filtered and paged, and the
customer 360's orders panel."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from rapport.orders.models import Order, ReturnLine
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in


def _key(database_url: str) -> str:
    with open_session(database_url) as db:
        issued = platform.create_api_key(
            db, name="orders page test", scopes=[platform.Scope("read")]
        )
        return issued.secret


def test_on_time_charts_plot_what_the_api_reports(page, demo_site) -> None:
    key = _key(demo_site.database_url)
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/orders")
    for by in ("channel", "carrier"):
        served = httpx.get(
            f"{demo_site.base_url}/v1/orders/reports/promise-kept",
            params={"by": by},
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        assert served, f"the demo has shipped orders due by {by}"
        chart_id = f"promise-{by}"
        page.wait_for_function(f"() => Chart.getChart('{chart_id}') !== undefined")
        plotted = page.evaluate(
            f"() => {{ const c = Chart.getChart('{chart_id}');"
            " return [c.data.labels, c.data.datasets[0].data]; }"
        )
        assert plotted[0] == [row["key"].replace("_", " ") for row in served]
        assert plotted[1] == [round(row["share"] * 100, 2) for row in served]
    # the page fits a 1,280 px window
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280


def test_orders_list_filters_and_pages(page, demo_site) -> None:
    with open_session(demo_site.database_url) as db:
        total = db.scalar(select(func.count()).select_from(Order))
        app_orders = db.scalar(select(func.count()).where(Order.channel == "app"))
        late = db.scalar(select(func.count()).where(Order.late_notified_at.is_not(None)))
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/orders/list")
    assert page.get_by_test_id("orders").locator("tbody tr").count() == min(total, 25)
    assert f"of {total:,}" in page.get_by_test_id("pager").inner_text()
    page.get_by_label("Channel").select_option("app")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_test_id("orders").locator("tbody tr")
    assert rows.count() == min(app_orders, 25)
    channels = rows.locator("td:nth-child(4)").all_inner_texts()
    assert channels
    assert all(text.split()[0] == "app" for text in channels)
    page.goto(f"{demo_site.base_url}/admin/orders/list?late=true")
    shown = page.get_by_test_id("orders").locator("tbody tr[data-order]").count()
    assert shown == min(late, 25)


def test_orders_panel_lists_a_customers_orders_with_money(page, demo_site) -> None:
    with open_session(demo_site.database_url) as db:
        customer_id, count = db.execute(
            select(Order.customer_id, func.count())
            .where(Order.customer_id.is_not(None))
            .group_by(Order.customer_id)
            .order_by(func.count().desc(), Order.customer_id)
            .limit(1)
        ).one()
        newest = db.scalars(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.placed_at.desc(), Order.order_id)
            .limit(10)
        ).all()
        returned = db.scalar(select(func.count()).where(ReturnLine.customer_id == customer_id))
    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/orders/customers/{customer_id}/panel")
    assert page.locator(".topbar").count() == 0  # a fragment, not a page
    rows = page.get_by_test_id("customer-orders").locator("tbody tr")
    assert [rows.nth(i).get_attribute("data-order") for i in range(rows.count())] == [
        o.order_id for o in newest
    ]
    first = newest[0]
    total = rows.first.get_by_test_id("order-total").inner_text()
    # formatted in the order's currency: "€12.34", never raw cents
    major = f"{first.total_minor // 100:,}.{first.total_minor % 100:02d}"
    assert major in total
    assert re.search(r"[€$£]", total), total
    assert f"{count} orders" in page.get_by_test_id("orders-panel").inner_text()
    # the returns panel: each return with its reason, and the return risk
    page.goto(f"{demo_site.base_url}/admin/orders/customers/{customer_id}/returns-panel")
    shown = page.get_by_test_id("customer-returns").locator("tbody tr").count() if returned else 0
    assert shown == min(returned, 20)
    assert "%" in page.get_by_test_id("returns-panel").inner_text()
    # signed out, the panel is not served
    page.context.clear_cookies()
    answer = page.request.get(
        f"{demo_site.base_url}/admin/orders/customers/{customer_id}/panel", max_redirects=0
    )
    assert answer.status in (302, 303, 307, 401)


def test_orders_list_columns_and_filters_line_up_at_1280_px(page, demo_site) -> None:
    # given the orders list in a 1,280 px window
    sign_in(page, demo_site)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{demo_site.base_url}/admin/orders/list")

    # when the heads and the cells of its columns, and its filters, are measured
    measured = page.evaluate(
        """() => {
          const table = document.querySelector('[data-testid=orders]');
          const align = (cell) => getComputedStyle(cell).textAlign.replace('start', 'left');
          const middle = (el) => {
            const box = el.getBoundingClientRect();
            return box.top + box.height / 2;
          };
          return {
            heads: [...table.querySelectorAll('thead th')].map(align),
            cells: [...table.querySelectorAll('tbody tr:first-child td')].map(align),
            checkbox: middle(document.querySelector('input[name=late]')),
            button: middle(document.querySelector('[data-testid=order-filters] button')),
          };
        }"""
    )

    # then every column's cells sit as its head does (the order id under "Order", not pushed
    # right), and "Late only" is level with the Filter button beside it
    assert measured["cells"] == measured["heads"]
    assert measured["heads"][0] == "left"
    assert abs(measured["checkbox"] - measured["button"]) <= 2, measured
