"""The customer list and the customer 360 admin page in headless Chromium, on a fresh site:
a service agent finds a customer, reads their profile, consents and identities, sees each
domain's panel, merges a duplicate and exports the customer's data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rapport.customers import service as customers
from rapport.platform import service as platform
from rapport.platform.admin import CUSTOMER_PANELS
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
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
        customers.set_consent(
            db, customer_id=customer.customer_id, purpose="location", granted=False, source="app"
        )
        # another Lena, who never said yes to email: the consent filter leaves her out
        customers.identify_customer(
            db,
            identities={"email": "lena.k@example.net"},
            profile={"first_name": "Lena", "last_name": "Krause"},
        )
        duplicate = customers.identify_customer(db, identities={"email": "lena.v@example.org"})
        ids = (customer.customer_id, duplicate.customer_id)
    sign_in_as(page, live_server.base_url, "cx@example.com", PASSWORD)
    return live_server, ids


def _result_names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return (
        page.get_by_test_id("customer-results")
        .locator("tbody tr td:first-child a")
        .all_inner_texts()
    )


def test_find_on_the_list_open_the_360_and_merge_a_duplicate(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    server, (customer_id, duplicate_id) = signed_in
    # given the customers list, when an agent searches "lena" among those who said yes to email
    page.get_by_role("link", name="Customers", exact=True).click()
    page.get_by_label("Search customers").fill("lena")
    page.get_by_role("button", name="Search").click()
    # (the duplicate has no name: it shows as its id, found by its email)
    assert sorted(_result_names(page)) == sorted(["Lena Krause", "Lena Vogel", duplicate_id])
    page.get_by_label("Consent granted").select_option("marketing_email")
    page.get_by_role("button", name="Search").click()
    # then only the one who granted it is listed, with her orders and consents
    assert _result_names(page) == ["Lena Vogel"]
    row = page.get_by_test_id("customer-results").locator("tbody tr").first
    assert "lena@example.com" in row.inner_text()
    assert "marketing email" in row.inner_text()
    page.get_by_role("link", name="Lena Vogel").click()

    # then the 360 shows the header, profile, traits, consents per purpose and identities
    assert page.get_by_test_id("customer-name").inner_text().strip() == "Lena Vogel"
    assert page.get_by_test_id("customer-email").inner_text() == "lena@example.com"
    assert page.get_by_test_id("customer-status").inner_text() == "active"
    assert page.get_by_test_id("customer-numbers").inner_text() == "C-900"
    assert page.get_by_test_id("trait-orders").inner_text() == "1"
    assert page.get_by_test_id("trait-spend").inner_text() == "€45.90"
    assert "Wine/Red" in page.get_by_test_id("trait-categories").inner_text()
    consents = page.get_by_test_id("consents")
    assert "granted" in consents.locator("tr[data-purpose='marketing_email']").inner_text()
    assert "checkout" in consents.locator("tr[data-purpose='marketing_email']").inner_text()
    assert "refused" in consents.locator("tr[data-purpose='location']").inner_text()
    assert "not asked" in consents.locator("tr[data-purpose='marketing_push']").inner_text()
    assert "lena@example.com" in page.get_by_test_id("identities").inner_text()
    timeline = page.get_by_test_id("timeline").locator("tbody tr").all_inner_texts()
    assert len(timeline) == 5  # identified, order, view, two consents
    # and the activity chart is drawn by the chart kit
    page.wait_for_function("() => Chart.getChart('activity-chart') !== undefined")
    # and each domain's panel has its section, under its title, in order
    titles = page.locator("section.panel").evaluate_all(
        "(sections) => sections.map((s) => s.dataset.panel)"
    )
    assert titles == [panel.title for panel in CUSTOMER_PANELS]

    # when the duplicate is merged in from the page
    page.get_by_label("Duplicate customer id").fill(duplicate_id)
    page.get_by_role("button", name="Merge", exact=True).click()
    # then the page says so, its identity shows here and its old id leads here
    assert page.get_by_test_id("message").inner_text() == f"Merged {duplicate_id}"
    assert "lena.v@example.org" in page.get_by_test_id("identities").inner_text()
    page.goto(f"{server.base_url}/admin/customers/{duplicate_id}")
    assert page.url.endswith(f"/admin/customers/{customer_id}")


def test_a_message_in_the_address_shows_nothing(page, signed_in) -> None:  # type: ignore[no-untyped-def]
    server, (customer_id, _) = signed_in
    # given a link to a real customer page whose address carries text of someone's choosing
    page.goto(
        f"{server.base_url}/admin/customers/{customer_id}"
        "?message=Your+session+expired.+Call+0800+123+456"
    )
    # then the page shows no such notice: only a form's own redirect says anything
    assert page.get_by_test_id("customer-name").count() == 1
    assert page.get_by_test_id("message").count() == 0
    assert "0800" not in page.content()


def test_export_downloads_the_customers_data_as_json(page, signed_in, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, (customer_id, _) = signed_in
    page.goto(f"{server.base_url}/admin/customers/{customer_id}")
    # when the agent exports the customer's data
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export data (JSON)").click()
    download = download_info.value
    # then a JSON file named for the customer arrives, with their profile and consents
    assert download.suggested_filename == f"customer-{customer_id}.json"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    document = json.loads(target.read_text())
    assert document["customer_id"] == customer_id
    text = json.dumps(document)
    assert "lena@example.com" in text
    assert "marketing_email" in text
    assert "checkout" in text
    # and the request is on record, asked by the signed-in agent
    with open_session(server.database_url) as db:
        requests = customers.privacy_requests(db, customer_id=customer_id)
        assert [(r.kind, r.requested_by) for r in requests] == [("export", "cx@example.com")]


def test_the_360_frame_stands_without_panels(page, signed_in, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # given a site where no domain contributes a panel
    monkeypatch.setattr("rapport.customers.admin.CUSTOMER_PANELS", [])
    server, (customer_id, _) = signed_in
    page.goto(f"{server.base_url}/admin/customers/{customer_id}")
    # then the frame shows the customer, their chart and timeline, and no empty panel grid
    assert page.get_by_test_id("customer-name").inner_text().strip() == "Lena Vogel"
    assert page.locator("section.panel").count() == 0
    assert page.get_by_test_id("panels").count() == 0
    page.wait_for_function("() => Chart.getChart('activity-chart') !== undefined")
    assert page.get_by_test_id("timeline").locator("tbody tr").count() == 5
