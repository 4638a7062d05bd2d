"""The admin pages' layout in headless Chromium: on a phone (390 px wide) no page scrolls
sideways (the section navigation wraps), and at 1,280 px the customer and order lists fit their
box even where a customer without a name is shown by their raw id (an opaque id may wrap)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from rapport.customers import service as customers
from rapport.customers.models import CONSENT_PURPOSES
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as, wait_until_settled
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
        wait_until_settled(page)
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
        wait_until_settled(page)
        assert page.locator("a.opaque").count() >= 3, path
        widths = page.evaluate(WIDTHS)
        assert widths["page"] <= DESKTOP["width"], path
        assert widths["tables"] == [], f"{path}: {widths['tables']}"
    context.close()


def _seed_wide_rows(url: str) -> tuple[str, str]:
    """A member whose order (Rapport's own long ``ord_…`` id) earned points and came back,
    and an ingest key; answers the member's page and the key's secret."""
    with open_session(url) as db:
        person = customers.identify_customer(
            db,
            identities={"email": "returns.often@example.com"},
            profile={"first_name": "Rhea", "last_name": "Turner"},
        )
        body = order_body(customer_id=person.customer_id)
        body.pop("order_id", None)
        placed = orders.place_order(db, order=OrderIn.model_validate(body))
        loyalty.earn(
            db, customer_id=person.customer_id, points=120, reason="Order", order_id=placed.order_id
        )
        line = placed.lines[0] if hasattr(placed, "lines") else None
        sku = line.sku if line is not None else body["lines"][0]["sku"]
        orders.record_return(
            db,
            order_id=placed.order_id,
            request=ReturnIn.model_validate(
                {"lines": [{"sku": sku, "quantity": 1, "reason": "damaged"}], "channel": "web"}
            ),
        )
        issued = platform.create_api_key(db, name="site", scopes=[platform.Scope.INGEST])
        return f"/admin/customers/{person.customer_id}", issued.secret


def test_wide_tables_and_filters_fit_a_desktop_window(
    browser: Any, live_server: LiveServer
) -> None:
    # given a member with an order, points and a return, and a batch with refused messages
    _seed(live_server.database_url)
    member_page, secret = _seed_wide_rows(live_server.database_url)
    refused = [
        {
            "type": "track",
            "event": "Viewed",
            "messageId": f"m{n}",
            "anonymousId": "a" * 60,
            "properties": {"note": "x" * 400},
            "timestamp": "1999-01-01T00:00:00Z",
        }
        for n in range(3)
    ]
    sent = httpx.post(
        f"{live_server.base_url}/v1/batch", json={"batch": refused}, auth=(secret, ""), timeout=10
    )
    assert sent.status_code == 200, sent.text
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when their pages are shown at 1,280 px, then no table is cut or needs scrolling
    for path in (member_page, "/admin/events/rejected", "/admin/loyalty"):
        page.goto(f"{live_server.base_url}{path}")
        wait_until_settled(page)
        widths = page.evaluate(WIDTHS)
        assert widths["page"] <= DESKTOP["width"], path
        assert widths["tables"] == [], f"{path}: {widths['tables']}"
        # and no form control runs past the box it sits in
        outside = page.evaluate(OUTSIDE_THEIR_BOX)
        assert outside == [], f"{path}: {outside}"
    context.close()


OUTSIDE_THEIR_BOX = """() => [...document.querySelectorAll(
    "main form input, main form select, main form button, main table")]
  .filter((el) => el.offsetParent !== null)
  .filter((el) => {
    const box = el.closest("article, section, main").getBoundingClientRect();
    return el.getBoundingClientRect().right > box.right + 1;
  })
  .map((el) => `${el.tagName.toLowerCase()} `
    + `${el.name || el.dataset.testid || el.textContent.trim().slice(0, 20)}`
    + ` ends at ${Math.round(el.getBoundingClientRect().right)} px`)"""
