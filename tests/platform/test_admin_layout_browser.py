"""The admin pages' layout in headless Chromium: on a phone (390 px wide) no page scrolls
sideways (the section navigation wraps), and at 1,280 px the customer and order lists fit their
box even where a customer without a name is shown by their raw id (an opaque id may wrap)."""

from __future__ import annotations

from typing import Any

import pytest

from rapport.customers import service as customers
from rapport.customers.models import CONSENT_PURPOSES
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as
from tests.orders.factories import order_body, seed_catalog

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

WIDTHS = """() => ({
  page: document.documentElement.scrollWidth,
  tables: [...document.querySelectorAll(".table-wrap")]
    .filter((box) => box.scrollWidth > box.clientWidth + 1)
    .map((box) => `${box.querySelector("table")?.dataset.testid} is ${box.scrollWidth} px`
      + ` in ${box.clientWidth} px`),
})"""


def _seed(url: str) -> str:
    """Seeds the pages; answers the page of a customer with a long address and every
    consent (the customer 360)."""
    with open_session(url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        seed_catalog(db)
        # customers known by a shop number alone (no name, no email): lists show their raw id
        for number in range(3):
            person = customers.identify_customer(
                db, identities={"external_id": f"NONAME-{number}"}, profile={}
            )
            orders.place_order(
                db,
                order=OrderIn.model_validate(
                    order_body(customer_id=person.customer_id, order_id=f"WEB-{number}")
                ),
            )
        # and customers with long addresses who granted every consent, in the same lists
        for number in range(3):
            person = customers.identify_customer(
                db,
                identities={
                    "email": f"hannah.thompson-{number}.averyverylongaddressforthisone@example.net"
                },
                profile={"first_name": "Hannah", "last_name": "Thompson"},
            )
            for purpose in CONSENT_PURPOSES:
                customers.set_consent(
                    db, customer_id=person.customer_id, purpose=purpose, granted=True, source="test"
                )
            db.commit()
        return f"/admin/customers/{person.customer_id}"


PHONE_PAGES = (
    "/admin",
    "/admin/customers",
    "/admin/loyalty",
    "/admin/loyalty/coupons",
    "/admin/orders/list",
    "/admin/orders/customer-value",
    "/admin/feedback",
    "/admin/feedback/targets",
    "/admin/segments",
    "/admin/deliveries",
    "/admin/webhooks",
)


def test_no_admin_page_scrolls_sideways_on_a_phone(browser: Any, live_server: LiveServer) -> None:
    customer_page = _seed(live_server.database_url)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    wide = []
    for path in (*PHONE_PAGES, customer_page):
        page.goto(f"{live_server.base_url}{path}")
        page.wait_for_load_state("networkidle")
        width = page.evaluate(WIDTHS)["page"]
        if width > PHONE["width"]:
            wide.append(f"{path} is {width} px wide")
    context.close()
    assert wide == [], f"pages scrolled sideways on a {PHONE['width']} px phone: {wide}"


def test_lists_with_nameless_customers_fit_a_desktop_window(
    browser: Any, live_server: LiveServer
) -> None:
    _seed(live_server.database_url)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    for path in ("/admin/customers", "/admin/orders/list"):
        page.goto(f"{live_server.base_url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.locator("a.opaque").count() >= 3, path
        widths = page.evaluate(WIDTHS)
        assert widths["page"] <= DESKTOP["width"], path
        assert widths["tables"] == [], f"{path}: {widths['tables']}"
    context.close()
