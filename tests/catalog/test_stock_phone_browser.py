"""The product page's stock table on a phone (390 px) and a desktop (1280 px): each location
with its counts, reservations, what is short and its own price, neither the page nor the table
scrolling sideways (on a phone each location is a block, each figure under its column's name)."""

from __future__ import annotations

import os
from pathlib import Path

from rapport.catalog import service as catalog
from rapport.catalog.schemas import StoreUpsert
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as
from tests.orders.factories import CHIANTI, seed_catalog

PASSWORD = "correct horse battery"
# Where the screenshots go when someone wants to look at them (RAPPORT_SCREENSHOTS=<folder>).
SHOTS = os.environ.get("RAPPORT_SCREENSHOTS")


def _sideways(page, selector: str) -> int:  # type: ignore[no-untyped-def]
    """How far the element scrolls sideways inside itself (0: it fits)."""
    return int(page.evaluate(f"() => {{ const e = document.querySelector('{selector}'); "
                             "return e.scrollWidth - e.clientWidth; }"))  # fmt: skip


def test_the_stock_table_fits_a_phone_and_a_desktop(page, live_server) -> None:  # type: ignore[no-untyped-def]
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        seed_catalog(db)
        catalog.upsert_stores(
            db,
            stores=[
                StoreUpsert(
                    store_id="st-sgl-01", name="Saint-Germain-en-Laye Centre Commercial",
                    city="Saint-Germain-en-Laye", address="3 rue au Pain", country="FR",
                )
            ],
        )  # fmt: skip
        catalog.set_stock(db, levels=[(CHIANTI, "st-sgl-01", 12_500)])
        catalog.set_channel_price(
            db, sku=CHIANTI, channel="store", store_id="st-lyo-01", price_minor=1_099,
            reason="Clearance before the new vintage arrives",
        )  # fmt: skip
    sign_in_as(
        page, live_server.base_url, "merch@example.com", PASSWORD,
        at=f"/admin/catalog/products/{CHIANTI}",
    )  # fmt: skip
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        if SHOTS:
            page.get_by_test_id("stock").locator("xpath=../..").screenshot(
                path=str(Path(SHOTS) / f"stock-{width}.png")
            )
        assert _sideways(page, "html") <= 0, f"the product page scrolls sideways at {width} px"
        for inside in ("div.table-wrap:has(> [data-testid=stock])", "[data-testid=stock]"):
            assert _sideways(page, inside) <= 0, f"the stock table scrolls sideways at {width} px"
        row = page.get_by_test_id("stock").locator('tr[data-store="st-lyo-01"]').inner_text()
        assert "Clearance before the new vintage arrives" in row
        assert "€10.99" in row
    # on a phone each figure is under its column's name (a label before it, from data-label)
    row = page.get_by_test_id("stock").locator('tr[data-store="st-sgl-01"]')
    labels = row.locator("td[data-label]").evaluate_all("cells => cells.map(c => c.dataset.label)")
    assert labels == ["City", "On hand", "Reserved", "Available", "Price here"]
