"""The admin sign-in and overview in a real headless Chromium."""

from __future__ import annotations

import re

import pytest

from rapport.catalog import service as catalog
from rapport.catalog.schemas import StoreUpsert
from rapport.customers import service as customers
from rapport.customers.service import ImportedCustomer
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as

PASSWORD = "correct horse battery"


@pytest.fixture
def seeded(live_server):  # type: ignore[no-untyped-def]
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        customers.import_customers(
            db,
            customers=[
                ImportedCustomer(
                    external_id=f"C{n}",
                    email=None,
                    first_name=None,
                    last_name=None,
                    locale="en",
                    home_city=None,
                    home_latitude=None,
                    home_longitude=None,
                    consents={"analytics": True, "personalization": n % 2 == 0},
                )
                for n in range(3)
            ],
        )
        catalog.upsert_stores(
            db,
            stores=[
                StoreUpsert(store_id="web", name="Web", city="Online", address="-", country="GB")
            ],
        )
    return live_server


def test_wrong_password_is_refused_in_the_browser(page, seeded) -> None:
    # given the sign-in page
    page.goto(f"{seeded.base_url}/admin")
    assert re.search(r"/admin/login\?next=/admin$", page.url)
    # when a wrong password is entered
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    # then an error is shown and the overview stays closed
    assert page.get_by_test_id("login-error").inner_text() == "Wrong email or password."
    page.goto(f"{seeded.base_url}/admin")
    assert "/admin/login" in page.url


def test_sign_in_shows_overview_with_counts(page, seeded) -> None:
    sign_in_as(page, seeded.base_url, "ops@example.com", PASSWORD)
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.get_by_test_id("count-customers").inner_text() == "3"
    assert page.get_by_test_id("count-members").inner_text() == "0"
    assert page.get_by_test_id("signed-in-as").inner_text() == "ops@example.com"
    # the consent chart was drawn by Chart.js (served from npm's package)
    page.wait_for_function("() => window.Chart && Chart.getChart('consent-chart') !== undefined")
    consent = page.locator('table[data-chart-table="consent-chart"]')
    assert consent.locator('tr[data-label="analytics"] td').text_content() == "100.0%"
    assert consent.locator('tr[data-label="personalization"] td').text_content() == "66.7%"
    # and signing out closes the session
    page.get_by_test_id("signed-in-as").click()  # the account menu
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/admin/login$"))
    page.goto(f"{seeded.base_url}/admin")
    assert "/admin/login" in page.url
