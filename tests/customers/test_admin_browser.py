"""The customer 360 admin page in headless Chromium."""

from __future__ import annotations

import pytest

from rapport.customers import service as customers
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.customers.factories import order_placed, process, track

PASSWORD = "correct horse battery"


@pytest.fixture
def signed_in(page, live_server):  # type: ignore[no-untyped-def]
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="cx@example.com", password=PASSWORD)
        track(
            db,
            "identified",
            user_id="C-900",
            properties={
                "traits": {"email": "lena@example.com", "firstName": "Lena", "lastName": "Vogel"}
            },
        )
        track(
            db,
            "order_placed",
            user_id="C-900",
            properties=order_placed(4590, ["Wine/Red", "Kitchen/Tools"]),
        )
        track(
            db, "product_viewed", user_id="C-900", properties={"category": "Wine/Red", "sku": "W-1"}
        )
        db.commit()
        process(db)
        customer = customers.find_customer(db, kind="email", value="lena@example.com")
        customers.set_consent(
            db,
            customer_id=customer.customer_id,
            purpose="marketing_email",
            granted=True,
            source="checkout",
        )
        duplicate = customers.identify_customer(db, identities={"email": "lena.v@example.org"})
        ids = (customer.customer_id, duplicate.customer_id)
    page.goto(f"{live_server.base_url}/admin/login")
    page.get_by_label("Email").fill("cx@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.base_url}/admin")
    return live_server, ids


def test_search_open_360_and_merge_a_duplicate(page, signed_in) -> None:
    server, (customer_id, duplicate_id) = signed_in
    # given the customers page, when searching by email
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search customers").fill("LENA@example.com")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Lena Vogel").click()
    # then the 360 shows profile, traits, consent and timeline
    assert page.get_by_test_id("customer-name").inner_text().strip() == "Lena Vogel"
    assert page.get_by_test_id("trait-orders").inner_text() == "1"
    assert page.get_by_test_id("trait-spend").inner_text() == "45.90 EUR"
    assert "Wine/Red" in page.get_by_test_id("trait-categories").inner_text()
    assert "marketing email" in page.get_by_test_id("consents").inner_text()
    timeline = page.get_by_test_id("timeline").locator("tbody tr").all_inner_texts()
    assert len(timeline) == 4  # identified, order, view, consent
    page.wait_for_function("() => Chart.getChart('activity-chart') !== undefined")
    # when the duplicate is merged in from the page
    page.get_by_label("Duplicate customer id").fill(duplicate_id)
    page.get_by_role("button", name="Merge").click()
    # then its identity shows here and its old id leads here
    assert page.get_by_test_id("message").inner_text() == f"Merged {duplicate_id}"
    assert "lena.v@example.org" in page.get_by_test_id("identities").inner_text()
    page.goto(f"{server.base_url}/admin/customers/{duplicate_id}")
    assert page.url.endswith(f"/admin/customers/{customer_id}")
