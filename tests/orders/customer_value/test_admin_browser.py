"""Customer value on the admin pages, in headless Chromium: the fitted models and tiers, a
refit, and each customer's value on their 360 page (loaded from the orders domain by htmx)."""

from __future__ import annotations

from rapport.orders import service as orders
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.orders.customer_value.factories import add_customer_with_orders

PASSWORD = "correct horse battery"


def test_value_page_refit_and_the_customer_360_panel(page, live_server) -> None:
    # given customers with orders, fitted once
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        regular = add_customer_with_orders(
            db,
            name="web-regular",
            days_ago=[10, 40, 70, 100, 130],
            total_minor=9000,
            first_name="Regula",
        )
        for i in range(8):
            add_customer_with_orders(db, name=f"web-other{i}", days_ago=[200 + 20 * i, 150])
        fit = orders.fit_customer_value(db)
        assert fit is not None
        value = orders.customer_value(db, customer_id=regular)
        assert value is not None
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when the customer value page opens from the orders page
    page.goto(f"{live_server.base_url}/admin/orders")
    page.get_by_test_id("customer-value-link").click()
    # then it shows the fitted parameters, the tiers and the most valuable customers
    assert "9" in page.get_by_test_id("fit").inner_text()
    assert f"{fit.r:.4f}" in page.get_by_test_id("bgnbd").inner_text()
    tiers = page.get_by_test_id("value-tiers").locator("tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in tiers] == ["Top 1%", "Top 5%", "Top 20%", "Rest"]
    top = page.get_by_test_id("top-customers").locator("tbody tr").first.inner_text()
    assert "Regula" in top  # named, linked to the 360
    # and "Fit now" refits and says so
    page.get_by_role("button", name="Fit now").click()
    assert "Fitted on 9 customers" in page.get_by_test_id("message").inner_text()
    # and the customer 360 shows the customer's tier, predicted value and probability alive
    page.get_by_role("link", name="Regula").click()
    panel = page.get_by_test_id("customer-value")
    panel.wait_for()
    # (nine customers: floor(1% of 9) = floor(5% of 9) = 0, so the best is in the top 20%)
    assert page.get_by_test_id("value-tier").inner_text() == "Top 20%"
    # in the program's currency, not raw cents
    assert f"{value.predicted_value_minor / 100:,.2f}" in (
        page.get_by_test_id("predicted-value").inner_text()
    )
    assert page.get_by_test_id("p-alive").inner_text() == f"{value.p_alive * 100:.0f}%"
