"""The orders admin pages in headless Chromium, on the demo retailer's history."""

from __future__ import annotations

from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo, load_demo_orders
from rapport.orders import service as orders
from rapport.platform import service as platform
from rapport.platform.db import open_session

PASSWORD = "correct horse battery"


def test_promises_returns_and_a_customers_orders(page, live_server) -> None:
    # given the demo retailer's orders loaded
    retailer = DemoRetailer(seed=4, customers=80)
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        load_demo(db, retailer=retailer)
        load_demo_orders(db, retailer=retailer)
        by_channel = {row.key: row for row in orders.promise_kept(db, by="channel")}
        late_count = len(orders.late_deliveries(db, limit=50))
        buyer = next(h for h in retailer.histories() if len(h.orders) >= 2)
        from rapport.customers import service as customers

        customer_id = customers.find_customer_by_external_id(
            db, external_id=buyer.customer.external_id
        ).customer_id
    page.goto(f"{live_server.base_url}/admin/login")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # when the orders page opens
    page.get_by_role("link", name="Orders").click()
    # then the on-time shares match the service's figures and the charts are drawn
    rows = page.get_by_test_id("promise-by-channel").locator("tbody tr").all_inner_texts()
    assert len(rows) == len(by_channel)
    web = by_channel["web"]
    assert f"web\t{web.due}\t{web.on_time}\t{web.share * 100:.1f}%" in rows
    page.wait_for_function("() => Chart.getChart('promise-channel') !== undefined")
    assert page.get_by_test_id("late-deliveries").locator("tbody tr").count() == max(late_count, 1)
    # and a customer's orders show across channels
    page.goto(f"{live_server.base_url}/admin/orders/customer/{customer_id}")
    for order in buyer.orders:
        assert page.get_by_test_id(f"order-{order.order_id}").is_visible()
