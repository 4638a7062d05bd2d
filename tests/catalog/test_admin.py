"""The price and stock consistency page over HTTP: the database counts the differences and
reads one page of them, whatever their number (the page in a browser:
test_admin_browser.py)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice
from rapport.catalog.schemas import ProductUpsert, StoreUpsert
from rapport.platform import service as platform
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

PAGE = "/admin/catalog/consistency"


def _rows(html: str, testid: str) -> list[str]:
    table = html[html.index(f'data-testid="{testid}"') :]
    table = table[: table.index("</table>")]
    return re.findall(r'<tr data-sku="([^"]+)"', table)


def _shop(db: Session, products: int) -> None:
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=f"P-{n:03d}",
                name=f"Product {n}",
                category_path="Wine/Red",
                price_minor=1200,
                cost_minor=600,
                currency="EUR",
            )
            for n in range(products)
        ],
    )
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id="web", name="Web", city="Online", address="-", country="FR",
                timezone="Europe/Paris",
            ),
            StoreUpsert(
                store_id="st-1", name="Rivoli", city="Paris", address="1 rue", country="FR",
                timezone="Europe/Paris",
            ),
        ],
    )  # fmt: skip


def test_the_price_differences_come_a_page_at_a_time(client: TestClient, db: Session) -> None:
    # given 60 products, each cheaper in the app and 20 of them also on the web
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    _shop(db, 60)
    db.add_all(
        ChannelPrice(sku=f"P-{n:03d}", channel="app", price_minor=1000, reason="app offer")
        for n in range(60)
    )
    db.add_all(
        ChannelPrice(sku=f"P-{n:03d}", channel="web", price_minor=1100, reason="web offer")
        for n in range(20)
    )
    db.commit()
    assert sign_in(client).status_code == 303
    selects: list[str] = []

    def watch(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "channel_prices" in statement and "LIMIT" in statement.upper():
            selects.append(statement)

    # when the page is opened
    connection = db.get_bind()
    event.listen(connection, "before_cursor_execute", watch)
    try:
        first = client.get(PAGE)
    finally:
        event.remove(connection, "before_cursor_execute", watch)

    # then the tile counts all 80 differences on 60 products, and the list shows the first 25
    # in SKU order, with the pager saying how many there are and linking the next page
    assert first.status_code == 200
    assert re.search(r'data-testid="tile-prices".*?<p class="stat-value">80</p>', first.text, re.S)
    assert "60 products" in first.text
    listed = _rows(first.text, "price-differences")
    assert listed[:3] == ["P-000", "P-000", "P-001"]
    assert len(listed) == 25
    assert "of 80" in first.text
    assert 'rel="next"' in first.text
    # and the database was asked for one page of rules, not for all of them
    assert selects, "the page was not read with a LIMIT"
    # the last page holds the rest; filtered by channel, the count is that channel's
    last = client.get(f"{PAGE}?page=4")
    assert len(_rows(last.text, "price-differences")) == 5
    web = client.get(f"{PAGE}?channel=web&per_page=10")
    assert re.search(r'data-testid="tile-prices".*?<p class="stat-value">20</p>', web.text, re.S)
    assert _rows(web.text, "price-differences") == [f"P-{n:03d}" for n in range(10)]


def test_the_stock_out_of_step_comes_a_page_at_a_time(client: TestClient, db: Session) -> None:
    # given 36 products: 10 in stock online, 12 sold out online but in the shop, 8 out of
    # stock online and in the shop, 3 out of stock online and tracked nowhere else; and 3
    # whose stock is not tracked (no level at all), online or anywhere
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    _shop(db, 36)
    levels = [(f"P-{n:03d}", "web", 4) for n in range(10)]
    levels += [(f"P-{n:03d}", "web", 0) for n in range(10, 30)]
    levels += [(f"P-{n:03d}", "st-1", 3) for n in range(10, 22)]
    levels += [(f"P-{n:03d}", "st-1", 0) for n in range(22, 27)]
    levels += [(f"P-{n:03d}", "st-1", 5) for n in range(33, 34)]  # tracked in the shop only
    catalog.set_stock(db, levels=levels)
    assert sign_in(client).status_code == 303

    # when the stock view is opened, 10 rows a page
    first = client.get(f"{PAGE}?show=stock&per_page=10")

    # then it counts 20 products out of step, 8 of them out of stock everywhere they are
    # tracked, and lists the first 10 by SKU; the last page has the rest, and none of the
    # untracked products
    assert first.status_code == 200
    assert re.search(r'data-testid="tile-stock".*?<p class="stat-value">20</p>', first.text, re.S)
    assert "8 out of stock everywhere" in first.text
    assert _rows(first.text, "stock-gaps") == [f"P-{n:03d}" for n in range(10, 20)]
    last = client.get(f"{PAGE}?show=stock&per_page=10&page=2")
    assert _rows(last.text, "stock-gaps") == [f"P-{n:03d}" for n in range(20, 30)]
    assert "Sold out online, in stock in shops" in last.text
    assert "Out of stock everywhere" in last.text
    assert "P-030" not in first.text + last.text


def test_a_location_that_keeps_no_stock_level_is_shown_as_not_tracked(
    client: TestClient, db: Session
) -> None:
    # given a product stocked in the shop only, the web warehouse keeping no level for it
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    _shop(db, 1)
    catalog.set_stock(db, levels=[("P-000", "st-1", 3)])
    assert sign_in(client).status_code == 303

    # then its page says the web does not track it, rather than showing 0 available there
    detail = client.get("/admin/catalog/products/P-000").text
    web_row = detail[detail.index('data-store="web"') :]
    web_row = web_row[: web_row.index("</tr>")]
    assert "not tracked" in web_row
    shop_row = detail[detail.index('data-store="st-1"') :]
    assert "not tracked" not in shop_row[: shop_row.index("</tr>")]
    # and so does the product list's Online column
    listed = client.get("/admin/catalog/products").text
    row = listed[listed.index('data-sku="P-000"') :]
    assert "not tracked" in row[: row.index("</tr>")]
    assert 'data-testid="shops-not-tracked"' not in row[: row.index("</tr>")]


def test_a_product_no_shop_keeps_a_level_for_is_listed_as_not_tracked_in_shops(
    client: TestClient, db: Session
) -> None:
    # given a product stocked on the web only, no shop keeping a level for it
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    _shop(db, 1)
    catalog.set_stock(db, levels=[("P-000", "web", 4)])
    assert sign_in(client).status_code == 303
    # when the product list is opened
    listed = client.get("/admin/catalog/products").text
    row = listed[listed.index('data-sku="P-000"') :]
    row = row[: row.index("</tr>")]
    # then its In shops column says not tracked, as its page does, rather than 0
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[-3:] == ["4", "not tracked", "0"], cells
    detail = client.get("/admin/catalog/products/P-000").text
    shop_row = detail[detail.index('data-store="st-1"') :]
    assert "not tracked" in shop_row[: shop_row.index("</tr>")]
