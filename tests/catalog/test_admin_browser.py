"""The prices and stock pages in headless Chromium: each channel's price as the catalogue API
serves it, stock per location, and the consistency report listing a product made
inconsistent."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice, Product, Store
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in, sign_in_as

PASSWORD = "correct horse battery"
CHANNELS = ("web", "app", "store", "call_center")


def _key(database_url: str) -> str:
    with open_session(database_url) as db:
        return platform.create_api_key(
            db, name="catalog page test", scopes=[platform.Scope("read")]
        ).secret


def _shown_prices(row) -> dict[str, int]:
    cells = row.locator("td[data-channel]")
    return {
        cells.nth(i).get_attribute("data-channel"): int(cells.nth(i).get_attribute("data-minor"))
        for i in range(cells.count())
    }


def test_a_demo_products_prices_per_channel_are_the_apis(page, demo_site) -> None:
    key = _key(demo_site.database_url)
    with open_session(demo_site.database_url) as db:
        sku = db.scalars(select(Product.sku).order_by(Product.sku).limit(1)).one()
    headers = {"Authorization": f"Bearer {key}"}
    product = httpx.get(
        f"{demo_site.base_url}/v1/products/{sku}", headers=headers, timeout=30
    ).json()
    rules, cursor = [], None
    while True:  # the report a page at a time: every rule of the product, wherever it falls
        report = httpx.get(
            f"{demo_site.base_url}/v1/prices/consistency",
            params={"limit": 500, **({"cursor": cursor} if cursor else {})},
            headers=headers,
            timeout=30,
        ).json()
        rules += [d for d in report["items"] if d["sku"] == sku and d["store_id"] is None]
        cursor = report["next_cursor"]
        if cursor is None:
            break
    expected = dict.fromkeys(CHANNELS, product["price_minor"])
    expected |= {d["channel"]: d["price_minor"] for d in rules}
    stock = httpx.get(f"{demo_site.base_url}/v1/stock/{sku}", headers=headers, timeout=30).json()

    sign_in(page, demo_site)
    page.goto(f"{demo_site.base_url}/admin/catalog/products")
    row = page.get_by_test_id("products").locator(f'tr[data-sku="{sku}"]')
    shown = _shown_prices(row)
    assert {c: shown[c] for c in expected} == expected
    assert "€" in row.locator('td[data-channel="web"]').inner_text()

    # the product's page: the same prices, and each location's units as the stock API says
    row.get_by_role("link").click()
    prices = page.get_by_test_id("channel-prices")
    for channel, minor in expected.items():
        cell = prices.locator(f'tr[data-channel="{channel}"] td[data-minor]')
        assert int(cell.get_attribute("data-minor")) == minor
    table = page.get_by_test_id("stock")
    for place in stock:
        row = table.locator(f'tr[data-store="{place["store_id"]}"]')
        if not place["tracked"]:
            assert row.get_by_test_id("not-tracked").count() == 1
            continue
        cells = row.locator("td")
        assert cells.nth(4).inner_text().replace(",", "") == str(place["available"])
    page.set_viewport_size({"width": 1280, "height": 900})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280


def _product(sku: str, price: int, category: str = "Wine/Red") -> ProductUpsert:
    return ProductUpsert(
        sku=sku,
        name=f"Product {sku}",
        category_path=category,
        brand="Castello",
        price_minor=price,
        cost_minor=price // 2,
        currency="EUR",
    )


def test_the_consistency_report_lists_a_product_made_inconsistent(page, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        catalog.upsert_products(
            db,
            products=[
                _product("W-ONE", 1200),
                _product("W-TWO", 1500),
                _product("K-CORK", 900, "Kitchen/Tools"),
            ],
        )
        catalog.upsert_stores(
            db,
            stores=[
                StoreUpsert(
                    store_id="web",
                    name="Web warehouse",
                    city="Online",
                    address="-",
                    country="FR",
                    timezone="Europe/Paris",
                ),
                StoreUpsert(
                    store_id="st-par-01",
                    name="Paris Rivoli",
                    city="Paris",
                    address="1 rue",
                    country="FR",
                    latitude=48.86,
                    longitude=2.35,
                    timezone="Europe/Paris",
                ),
            ],
        )
        catalog.set_stock(
            db,
            levels=[
                ("W-ONE", "web", 5), ("W-ONE", "st-par-01", 3),
                ("W-TWO", "web", 0), ("W-TWO", "st-par-01", 4),
                ("K-CORK", "web", 7),
            ],
        )  # fmt: skip
        # W-ONE made inconsistent: cheaper in the app
        catalog.set_channel_price(
            db, sku="W-ONE", channel="app", price_minor=999, reason="App launch offer"
        )
    sign_in_as(page, live_server.base_url, "merch@example.com", PASSWORD)

    # the list shows the app's own price, the others the catalogue's
    page.goto(f"{live_server.base_url}/admin/catalog/products")
    row = page.get_by_test_id("products").locator('tr[data-sku="W-ONE"]')
    assert _shown_prices(row) == {
        "web": 1200, "app": 999, "store": 1200, "call_center": 1200, "members": 1200
    }  # fmt: skip
    assert "€9.99" in row.locator('td[data-channel="app"]').inner_text()
    # searched by name and filtered by category
    page.get_by_label("SKU or name").fill("cork")
    page.get_by_role("button", name="Filter").click()
    skus = page.get_by_test_id("products").locator("tr[data-sku]")
    assert [skus.nth(i).get_attribute("data-sku") for i in range(skus.count())] == ["K-CORK"]
    page.goto(f"{live_server.base_url}/admin/catalog/products?category=Wine")
    skus = page.get_by_test_id("products").locator("tr[data-sku]")
    assert [skus.nth(i).get_attribute("data-sku") for i in range(skus.count())] == [
        "W-ONE",
        "W-TWO",
    ]

    # the consistency report lists W-ONE's app price with its reason, and nothing else
    page.goto(f"{live_server.base_url}/admin/catalog/consistency")
    listed = page.get_by_test_id("price-differences").locator("tr[data-sku]")
    assert listed.count() == 1
    text = listed.first.inner_text()
    assert "W-ONE" in text
    assert "App launch offer" in text
    assert "€12.00" in text
    assert "€9.99" in text
    # and the stock view: W-TWO sold out online while a shop has it
    page.get_by_test_id("tile-stock").click()
    gaps = page.get_by_test_id("stock-gaps").locator("tr[data-sku]")
    assert [gaps.nth(i).get_attribute("data-sku") for i in range(gaps.count())] == ["W-TWO"]
    assert "Sold out online" in gaps.first.inner_text()


def _overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def test_a_price_rule_is_ended_from_the_product_page(page, browser, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        catalog.upsert_products(db, products=[_product("W-ONE", 1200)])
        catalog.upsert_stores(
            db,
            stores=[
                StoreUpsert(
                    store_id="st-lyo-01", name="Lyon Bellecour", city="Lyon", address="2 place",
                    country="FR", timezone="Europe/Paris",
                )
            ],
        )  # fmt: skip
        app = catalog.set_channel_price(
            db, sku="W-ONE", channel="app", price_minor=999, reason="App launch offer"
        )
        lyon = catalog.set_channel_price(
            db, sku="W-ONE", channel="store", store_id="st-lyo-01", price_minor=899,
            reason="Clearance in Lyon",
        )  # fmt: skip
    product = f"{live_server.base_url}/admin/catalog/products/W-ONE"

    # with htmx: End rule, the confirmation, then back on the product with the app's price
    sign_in_as(
        page,
        live_server.base_url,
        "merch@example.com",
        PASSWORD,
        at="/admin/catalog/products/W-ONE",
    )
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert _overflow(page) <= 0, f"the product page scrolls sideways at {width} px"
    # at 390 px the rules table scrolls inside itself, so every End rule can be reached
    wrap = page.get_by_test_id("price-rules").locator("xpath=..")
    assert "table-wrap" in (wrap.get_attribute("class") or "")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(f'tr[data-rule="{app.id}"]').get_by_role("link", name="End rule").click()
    assert "€12.00" in page.get_by_test_id("after").inner_text()
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert _overflow(page) <= 0, f"the confirmation scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_test_id("confirm-end").click()
    page.wait_for_url(product)
    assert "app launch offer" in page.get_by_test_id("message").inner_text().lower()
    app_price = page.get_by_test_id("channel-prices").locator(
        'tr[data-channel="app"] td[data-minor]'
    )
    assert app_price.get_attribute("data-minor") == "1200"
    assert page.locator(f'tr[data-rule="{app.id}"] a').count() == 0
    page.set_viewport_size({"width": 390, "height": 900})

    # without JavaScript: the same form, posted by the browser itself
    context = browser.new_context(java_script_enabled=False)
    plain = context.new_page()
    sign_in_as(
        plain,
        live_server.base_url,
        "merch@example.com",
        PASSWORD,
        at="/admin/catalog/products/W-ONE",
    )
    plain.locator(f'tr[data-rule="{lyon.id}"]').get_by_role("link", name="End rule").click()
    plain.get_by_test_id("confirm-end").click()
    plain.wait_for_url(product)
    assert "in store st-lyo-01" in plain.get_by_test_id("message").inner_text()
    lyon_row = plain.get_by_test_id("stock").locator('tr[data-store="st-lyo-01"]')
    assert "€12.00" in lyon_row.inner_text()
    assert "Clearance" not in lyon_row.inner_text()
    context.close()


def test_the_rows_to_fix_fit_a_phone_and_a_desktop(page, live_server) -> None:
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="merch@example.com", password=PASSWORD)
        catalog.upsert_products(db, products=[_product("W-ONE", 1200)])
        now = clock.now()
        db.add(
            Store(
                store_id="st-old-01", name="Old shop", city="Paris", address="-", country="FR",
                latitude=48.85, timezone="Mars/Olympus", opening_hours={"mon": "9-5"},
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
        db.add(
            ChannelPrice(
                sku="W-ONE", channel="store", store_id="st-gone", price_minor=900,
                reason="Closed shop's clearance", valid_from=now - timedelta(days=1),
            )
        )  # fmt: skip
        db.commit()
    sign_in_as(
        page, live_server.base_url, "merch@example.com", PASSWORD, at="/admin/catalog/consistency"
    )
    page.get_by_test_id("tile-checks").click()
    rows = page.get_by_test_id("catalog-checks").locator("tr[data-kind]")
    assert rows.count() == 4
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        assert _overflow(page) <= 0, f"the rows to fix scroll sideways at {width} px"
    page.get_by_role("link", name="End rule 1").click()
    assert "st-gone" in page.get_by_test_id("rule").inner_text()
