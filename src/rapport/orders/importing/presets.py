"""Ready-made mappings for public transaction datasets (Online Retail, Ta-Feng, CDNOW, Olist)."""

from __future__ import annotations

from rapport.catalog import service as catalog
from rapport.orders.importing.mapping import WEB_STORE_ID, WHITESPACE, FixedItem, TransactionMapping


def _web_store(country: str) -> catalog.StoreUpsert:
    # The same "web" warehouse the demo retailer uses: no coordinates, city "Online".
    return catalog.StoreUpsert(
        store_id=WEB_STORE_ID, name="Web shop", city="Online", address="Online", country=country
    )


# Postage, carriage, fees, discounts and manual corrections in the Online Retail file: not
# products, and their lines are not sales of anything.
ONLINE_RETAIL_NON_PRODUCTS = frozenset(
    {"POST", "DOT", "C2", "M", "m", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
)

PRESETS: dict[str, TransactionMapping] = {
    # Conventional column names; only sku, placed_at and unit_price must be there.
    "csv": TransactionMapping(
        order="order_id",
        customer="customer_id",
        item="sku",
        time="placed_at",
        price="unit_price",
        quantity="quantity",
        category="category",
        name="name",
        store="store_id",
        cost="unit_cost",
        optional=frozenset({"order", "customer", "quantity", "category", "name", "store", "cost"}),
        home_store=_web_store("ZZ"),
        order_prefix="csv",
    ),
    # Ta-Feng: one store, baskets are (customer, day), SALES_PRICE and ASSET are line totals.
    "ta-feng": TransactionMapping(
        time="TRANSACTION_DT",
        time_format="%m/%d/%Y",
        customer="CUSTOMER_ID",
        category="PRODUCT_SUBCLASS",
        item="PRODUCT_ID",
        quantity="AMOUNT",
        price="SALES_PRICE",
        cost="ASSET",
        price_per="line",
        currency="TWD",
        channel="store",
        order_prefix="ta-feng",
        customer_prefix="ta-feng:",
        locale="zh-TW",
        home_store=catalog.StoreUpsert(
            store_id="ta-feng",
            name="Ta-Feng warehouse store",
            city="Taipei",
            address="Ta-Feng hypermarket, Taipei (location approximate)",
            country="TW",
            latitude=25.0330,
            longitude=121.5654,
            timezone="Asia/Taipei",
        ),
    ),
    "online-retail": TransactionMapping(
        order="InvoiceNo",
        item="StockCode",
        name="Description",
        quantity="Quantity",
        time="InvoiceDate",
        price="UnitPrice",
        customer="CustomerID",
        currency="GBP",
        channel="web",
        order_prefix="online-retail",
        customer_prefix="online-retail:",
        locale="en-GB",
        cancel_prefix="C",
        skip_items=ONLINE_RETAIL_NON_PRODUCTS,
        home_store=_web_store("GB"),
    ),
    # CDNOW: whitespace-separated, no item ids (one product), dollar_value is the line total.
    "cdnow": TransactionMapping(
        customer="customer_id",
        time="date",
        time_format="%Y%m%d",
        quantity="number_of_cds",
        price="dollar_value",
        price_per="line",
        delimiter=WHITESPACE,
        currency="USD",
        channel="web",
        order_prefix="cdnow",
        customer_prefix="cdnow:",
        locale="en-US",
        fixed_item=FixedItem(sku="CDNOW-CD", name="CD (CDNOW)", category="Music/CD"),
        home_store=_web_store("US"),
    ),
    # Olist: a folder of tables (orders, order_items, customers, products); see OlistSource.
    "olist": TransactionMapping(
        layout="olist",
        currency="BRL",
        channel="web",
        order_prefix="olist",
        locale="pt-BR",
        home_store=_web_store("BR"),
    ),
}
