"""Importing order lines from CSV files: mappings, formats, baskets spread over a file,
cancellations as returns, idempotency, malformed files, the command, and the real Online
Retail and Olist files."""

from __future__ import annotations

import csv
import gzip
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.cli import import_transactions_command
from rapport.orders.importing import (
    PRESETS,
    SKIP_ADJUSTMENT,
    SKIP_FREE_GUEST,
    SKIP_NON_PRODUCT,
    UNMATCHED_GUEST,
    ImportSummary,
    MalformedFile,
    import_transactions_file,
)
from rapport.orders.models import Order, OrderLine, ReturnLine
from rapport.platform import formatting
from rapport.platform.db import open_session
from rapport.platform.errors import InvalidInput
from rapport.platform.settings import get_settings
from tests.conftest import SHARED_DATA, migrated_sqlite

HEADER = "Receipt,Client,Article,When,Price,Qty,Group,Label\n"
ROWS = (
    "R1,ana,SKU-1,2024-03-01 10:00:00,12.50,2,Wine/Red,Chianti\n"
    "R1,ana,SKU-2,2024-03-01 10:00:00,3,1,,Corkscrew\n"
    "R2,ben,SKU-1,2024-03-02 09:30:00,13.00,1,Wine/Red,Chianti Classico\n"
    "R3,,SKU-3,2024-03-02 11:00:00,5.00,4,,\n"
)
CUSTOM = PRESETS["csv"].with_overrides(
    {
        "order": "Receipt",
        "customer": "Client",
        "item": "Article",
        "time": "When",
        "price": "Price",
        "quantity": "Qty",
        "category": "Group",
        "name": "Label",
    },
    currency="EUR",
)
NO_RETURNS: dict[str, int] = {}
ONLINE_RETAIL = SHARED_DATA / "online-retail" / "online_retail.csv.gz"
OLIST = SHARED_DATA / "olist" / "subset-2017-10k"


def write(tmp_path: Path, text: str, name: str = "sales.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def totals(db: Session) -> tuple[int, int, int, int, int, int]:
    """Orders, lines, returns, events, customers, products: what an import could add."""
    return (
        count(db, Order),
        count(db, OrderLine),
        count(db, ReturnLine),
        count(db, Event),
        customers.count_customers(db),
        catalog.count_products(db),
    )


def lines_of(db: Session, order_id: str) -> list[tuple[str, int, int, str | None, int]]:
    return [
        (line.sku, line.quantity, line.unit_price_minor, line.category, line.returned_quantity)
        for line in orders.get_lines(db, order_id=order_id)
    ]


def external_id_of(db: Session, order_id: str) -> str | None:
    order = orders.get_order(db, order_id=order_id)
    assert order is not None
    if order.customer_id is None:
        return None
    customer = customers.get_customer(db, customer_id=order.customer_id)
    assert customer is not None
    return customer.external_id


# --- a mapped file ---------------------------------------------------------------------


def test_custom_mapping_imports_customers_products_and_orders(db, tmp_path) -> None:
    # given a till export with its own column names
    path = write(tmp_path, HEADER + ROWS)
    # when it is imported
    summary = import_transactions_file(db, path, CUSTOM)
    # then each receipt is an order, each row a line
    assert summary == ImportSummary(
        rows=4,
        lines=4,
        orders=3,
        orders_added=3,
        orders_present=0,
        lines_added=4,
        cancellations=0,
        returns_matched=0,
        returns_added=0,
        returns_unmatched=NO_RETURNS,
        return_units_capped=0,
        customers_created=2,
        products_created=3,
        stores_created=1,
        skipped={},
        prices_rounded=0,
        sorted_on_disk=False,
        unused_columns=(),
    )
    assert lines_of(db, "csv:R1") == [
        ("SKU-1", 2, 1250, "Wine/Red", 0),
        ("SKU-2", 1, 300, "Uncategorised", 0),
    ]
    first = orders.get_order(db, order_id="csv:R1")
    assert first is not None
    assert (first.total_minor, first.currency, first.placed_at) == (
        2800,
        "EUR",
        at("2024-03-01 10:00"),
    )
    assert (first.channel, first.fulfilment, first.store_id, first.source) == (
        "web",
        "ship",
        "web",
        "import:csv",
    )
    assert external_id_of(db, "csv:R1") == "ana"
    # and a row without a customer is a guest order
    assert external_id_of(db, "csv:R3") is None
    # and products take the latest name and unit price seen; unknown cost is 0
    chianti = catalog.get_product(db, sku="SKU-1")
    assert chianti is not None
    assert (chianti.name, chianti.category_path, chianti.price_minor, chianti.cost_minor) == (
        "Chianti Classico",
        "Wine/Red",
        1300,
        0,
    )
    unnamed = catalog.get_product(db, sku="SKU-3")
    assert unnamed is not None
    assert (unnamed.name, unnamed.category_path, unnamed.currency) == (
        "Item SKU-3",
        "Uncategorised",
        "EUR",
    )
    # and the orders are in the event log at their own time
    placed = db.scalars(
        select(Event.occurred_at).where(Event.type == "order_placed").order_by(Event.position)
    ).all()
    assert [t.replace(tzinfo=UTC) if t.tzinfo is None else t for t in placed] == [
        at("2024-03-01 10:00"),
        at("2024-03-02 09:30"),
        at("2024-03-02 11:00"),
    ]


def test_existing_products_and_stores_are_left_as_they_are(db, tmp_path) -> None:
    # given a product already in the catalogue
    from rapport.catalog.schemas import ProductUpsert

    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku="SKU-1",
                name="Chianti 2019",
                category_path="Wine/Italy",
                price_minor=1500,
                cost_minor=900,
                currency="EUR",
            )
        ],
    )
    # when a file selling it is imported
    summary = import_transactions_file(db, write(tmp_path, HEADER + ROWS), CUSTOM)
    # then it is not created again nor changed, and its lines take the file's category
    assert summary.products_created == 2
    product = catalog.get_product(db, sku="SKU-1")
    assert product is not None
    assert (product.name, product.price_minor, product.cost_minor) == ("Chianti 2019", 1500, 900)
    assert lines_of(db, "csv:R2") == [("SKU-1", 1, 1300, "Wine/Red", 0)]


def test_conventional_column_names_need_no_mapping(db, tmp_path) -> None:
    # given a file with the csv preset's column names, prices in minor units per line
    path = write(
        tmp_path,
        "order_id,customer_id,sku,placed_at,unit_price,quantity,store_id\n"
        "A-1,C-9,TEA,2024-05-01T08:15:00+02:00,900,3,paris-1\n",
    )
    mapping = PRESETS["csv"].with_overrides(
        currency="JPY", price_unit="minor", price_per="line", channel="store"
    )
    # when it is imported
    summary = import_transactions_file(db, path, mapping)
    # then the time is stored in UTC and the store named by the row is created
    assert (summary.orders_added, summary.stores_created) == (1, 2)
    order = orders.get_order(db, order_id="csv:A-1")
    assert order is not None
    assert (order.placed_at, order.store_id, order.fulfilment, order.status) == (
        at("2024-05-01 06:15"),
        "paris-1",
        "in_store",
        "completed",
    )
    assert lines_of(db, "csv:A-1") == [("TEA", 3, 300, "Uncategorised", 0)]
    store = catalog.get_store(db, store_id="paris-1")
    assert store is not None
    assert (store.name, store.country) == ("paris-1", "ZZ")


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def zipped(path: Path) -> Path:
    target = path.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "exported by the till")
        archive.write(path, arcname="export/sales.csv")
    return target


def renamed_gzip(path: Path) -> Path:
    # The format is read from the bytes: a gzip file named .csv still reads.
    target = path.with_name("misnamed.csv")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


@pytest.mark.parametrize("pack", [gzipped, zipped, renamed_gzip])
def test_gzip_and_zip_files_import_the_same(db, tmp_path, pack) -> None:
    # given the export compressed, with a byte-order mark as Excel writes
    path = pack(write(tmp_path, "\ufeff" + HEADER + ROWS))
    # when it is imported
    summary = import_transactions_file(db, path, CUSTOM)
    # then the same orders arrive
    assert (summary.rows, summary.orders_added, summary.lines_added) == (4, 3, 4)
    assert lines_of(db, "csv:R1") == [
        ("SKU-1", 2, 1250, "Wine/Red", 0),
        ("SKU-2", 1, 300, "Uncategorised", 0),
    ]


def test_running_the_same_import_again_adds_nothing(db, tmp_path) -> None:
    # given an imported file
    path = write(tmp_path, HEADER + ROWS)
    import_transactions_file(db, path, CUSTOM)
    before = totals(db)
    # when it is imported again
    second = import_transactions_file(db, path, CUSTOM)
    # then every order is found already there and nothing is added
    assert (
        second.orders_added,
        second.orders_present,
        second.lines_added,
        second.customers_created,
        second.products_created,
        second.stores_created,
    ) == (0, 3, 0, 0, 0, 0)
    assert totals(db) == before == (3, 4, 0, 3, 2, 3)


# --- baskets and line totals -------------------------------------------------------------

TA_FENG_HEADER = (
    "TRANSACTION_DT,CUSTOMER_ID,AGE_GROUP,PIN_CODE,PRODUCT_SUBCLASS,PRODUCT_ID,AMOUNT,ASSET,"
    "SALES_PRICE\n"
)
# Baskets (customer, day) spread over the file, and a day out of order, as in Ta-Feng.
TA_FENG_ROWS = (
    "11/2/2000,01104905,45-49,115,110411,4710199010372,2,24,30\n"  # line 2
    "11/1/2000,00418683,45-49,115,120107,4710857472535,1,48,46\n"  # line 3
    "11/2/2000,00418683,45-49,115,100407,4710043654103,3,80,100\n"  # line 4
    "11/1/2000,01104905,45-49,115,110411,4710199010372,1,12,15\n"  # line 5
    "11/2/2000,01104905,45-49,115,120107,4710857472535,1,40,59\n"  # line 6
    "11/1/2000,00418683,45-49,115,110411,4710199010372,1,12,14\n"  # line 7
)


@pytest.mark.parametrize("run_lines", [2, 100])
def test_baskets_spread_over_the_file_are_grouped_and_loaded_in_time_order(
    db, tmp_path, run_lines
) -> None:
    # given a Ta-Feng-like file, sorted on disk in runs of two lines, or in memory
    path = write(tmp_path, TA_FENG_HEADER + TA_FENG_ROWS)
    # when it is imported
    summary = import_transactions_file(db, path, PRESETS["ta-feng"], run_lines=run_lines)
    # then each (customer, day) is one order with its lines in file order
    assert (summary.orders_added, summary.lines_added, summary.sorted_on_disk) == (4, 6, True)
    assert lines_of(db, "ta-feng:00418683:2000-11-01") == [
        ("4710857472535", 1, 4600, "120107", 0),
        ("4710199010372", 1, 1400, "110411", 0),
    ]
    # and SALES_PRICE is the line total: 100 TWD for 3 is 33.33 a unit, rounded
    assert lines_of(db, "ta-feng:00418683:2000-11-02") == [("4710043654103", 3, 3333, "100407", 0)]
    assert summary.prices_rounded == 1
    assert lines_of(db, "ta-feng:01104905:2000-11-02") == [
        ("4710199010372", 2, 1500, "110411", 0),
        ("4710857472535", 1, 5900, "120107", 0),
    ]
    basket = orders.get_order(db, order_id="ta-feng:01104905:2000-11-02")
    assert basket is not None
    assert (basket.placed_at, basket.store_id, basket.channel, basket.status) == (
        at("2000-11-02 00:00"),
        "ta-feng",
        "store",
        "completed",
    )
    assert external_id_of(db, "ta-feng:01104905:2000-11-02") == "ta-feng:01104905"
    # and orders reach the log in time order
    placed = db.scalars(
        select(Event.properties).where(Event.type == "order_placed").order_by(Event.position)
    ).all()
    assert [p["order_id"] for p in placed] == [
        "ta-feng:00418683:2000-11-01",
        "ta-feng:01104905:2000-11-01",
        "ta-feng:00418683:2000-11-02",
        "ta-feng:01104905:2000-11-02",
    ]
    # and the product's cost is ASSET per unit; the store is Ta-Feng's, in Taipei
    product = catalog.get_product(db, sku="4710199010372")
    assert product is not None
    assert (product.price_minor, product.cost_minor, product.currency) == (1500, 1200, "TWD")
    store = catalog.get_store(db, store_id="ta-feng")
    assert store is not None
    assert (store.city, store.country, store.timezone) == ("Taipei", "TW", "Asia/Taipei")


def test_cdnow_whitespace_file_has_one_product(db, tmp_path) -> None:
    # given CDNOW's layout: space-separated, CRLF, dollar_value the total for the CDs
    path = write(
        tmp_path,
        " customer_id  date number_of_cds  dollar_value\r\n"
        " 00001 19970101  1   11.77\r\n"
        " 00002 19970112  1   12.00\r\n"
        " 00002 19970112  5   77.00\r\n",
        name="CDNOW_master.txt",
    )
    # when it is imported
    summary = import_transactions_file(db, path, PRESETS["cdnow"])
    # then a customer's purchases of one day are one order of "CDNOW-CD"
    assert (summary.rows, summary.orders_added, summary.customers_created) == (3, 2, 2)
    assert lines_of(db, "cdnow:00002:1997-01-12") == [
        ("CDNOW-CD", 1, 1200, "Music/CD", 0),
        ("CDNOW-CD", 5, 1540, "Music/CD", 0),
    ]
    cd = catalog.get_product(db, sku="CDNOW-CD")
    assert cd is not None
    assert (cd.name, cd.category_path, cd.price_minor, cd.currency) == (
        "CD (CDNOW)",
        "Music/CD",
        1540,
        "USD",
    )


# --- cancellations and returns -----------------------------------------------------------

RETAIL_HEADER = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
)
RETAIL_ROWS = (
    "1001,85123A,WHITE HANGING HEART,6,2011-01-03 10:00:00,2.55,17850,United Kingdom\n"  # 2
    "1001,POST,POSTAGE,1,2011-01-03 10:00:00,18.00,17850,United Kingdom\n"  # 3
    "1002,85123A,WHITE HANGING HEART,4,2011-02-01 09:00:00,2.65,17850,United Kingdom\n"  # 4
    "1002,71053,WHITE METAL LANTERN,1,2011-02-01 09:00:00,3.39,17850,United Kingdom\n"  # 5
    "1003,22423,REGENCY CAKESTAND,2,2011-02-01 12:00:00,12.75,,United Kingdom\n"  # 6
    "1004,22423,,5,2011-02-02 12:00:00,0,,United Kingdom\n"  # 7
    "1005,22423,damaged,-3,2011-02-03 12:00:00,0,,United Kingdom\n"  # 8
    "C2001,85123A,WHITE HANGING HEART,-3,2011-02-10 15:00:00,2.65,17850,United Kingdom\n"  # 9
    "C2002,85123A,WHITE HANGING HEART,-4,2011-02-11 15:00:00,2.65,17850,United Kingdom\n"  # 10
    "C2003,85123A,WHITE HANGING HEART,-9,2011-02-12 15:00:00,2.65,17850,United Kingdom\n"  # 11
    "C2004,22423,REGENCY CAKESTAND,-1,2011-02-12 10:00:00,12.75,,United Kingdom\n"  # 12
    "C2005,71053,WHITE METAL LANTERN,-1,2011-06-01 10:00:00,3.39,17850,United Kingdom\n"  # 13
    "C2006,21730,GLASS STAR LANTERN,-1,2011-02-12 10:00:00,4.25,17850,United Kingdom\n"  # 14
    "C2007,D,Discount,-1,2011-02-12 10:00:00,5.00,17850,United Kingdom\n"  # 15
)


def test_cancellations_become_returns_of_the_customers_latest_purchase(db, tmp_path) -> None:
    # given purchases, stock adjustments and cancellations in the Online Retail layout
    path = write(tmp_path, RETAIL_HEADER + RETAIL_ROWS)
    # when it is imported
    summary = import_transactions_file(db, path, PRESETS["online-retail"])
    # then purchases are orders, guest ones included, and adjustments are skipped
    assert (summary.rows, summary.orders_added, summary.lines_added) == (14, 3, 4)
    assert summary.skipped == {SKIP_NON_PRODUCT: 2, SKIP_FREE_GUEST: 1, SKIP_ADJUSTMENT: 1}
    assert external_id_of(db, "online-retail:1003") is None
    # and C2001 (3 units) returns from 1002, the latest purchase holding 3; C2002 (4) no longer
    # fits there and returns from 1001; C2003 (9) fits nowhere: it takes the 1 unit left in
    # 1002, the latest purchase with any, and 8 units are counted as capped
    assert (summary.cancellations, summary.returns_matched, summary.returns_added) == (6, 3, 3)
    assert summary.return_units_capped == 8
    assert lines_of(db, "online-retail:1002") == [
        ("85123A", 4, 265, "Uncategorised", 4),
        ("71053", 1, 339, "Uncategorised", 0),
    ]
    assert lines_of(db, "online-retail:1001") == [("85123A", 6, 255, "Uncategorised", 4)]
    returned = db.execute(
        select(
            ReturnLine.order_id, ReturnLine.quantity, ReturnLine.refund_minor, ReturnLine.reason
        ).order_by(ReturnLine.returned_at)
    ).all()
    assert [tuple(r) for r in returned] == [
        ("online-retail:1002", 3, 795, "cancelled"),
        ("online-retail:1001", 4, 1020, "cancelled"),
        ("online-retail:1002", 1, 265, "cancelled"),
    ]
    # and a guest's cancellation, one past 90 days and one never bought are counted, not imported
    assert summary.returns_unmatched == {
        UNMATCHED_GUEST: 1,
        "no purchase of the item by the customer in the 90 days before": 2,
    }
    events = db.scalars(
        select(Event.event_id).where(Event.type == "order_returned").order_by(Event.event_id)
    ).all()
    assert events == [
        "import:online-retail-online-retail:1001-returned",
        "import:online-retail-online-retail:1002-returned",
    ]
    assert external_id_of(db, "online-retail:1001") == "online-retail:17850"


def test_returns_are_not_added_twice(db, tmp_path) -> None:
    # given an imported file with cancellations
    path = write(tmp_path, RETAIL_HEADER + RETAIL_ROWS)
    import_transactions_file(db, path, PRESETS["online-retail"])
    before = totals(db)
    # when it is imported again
    second = import_transactions_file(db, path, PRESETS["online-retail"])
    # then the same cancellations match but nothing is stored again
    assert (second.returns_matched, second.returns_added, second.orders_added) == (3, 0, 0)
    assert totals(db) == before


# --- malformed files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            HEADER + ROWS.replace("13.00", "13,00"),
            "Line 4: the row has 9 fields but the header has 8; quote values that contain ','",
        ),
        (
            HEADER + ROWS.replace("13.00", "thirteen"),
            "Line 4, column 'Price': 'thirteen' is not a price; use a number like 12.50 or 12,50",
        ),
        (
            HEADER + ROWS.replace("2024-03-02 09:30:00", "02/03/2024"),
            "Line 4, column 'When': '02/03/2024' is not an ISO 8601 time like",
        ),
        (
            HEADER + ROWS.replace(",2,Wine", ",two,Wine"),
            "Line 2, column 'Qty': 'two' is not a quantity; use a whole number in the digits 0-9",
        ),
        (
            HEADER + ROWS.replace(",2,Wine", ",1_000,Wine"),
            "Line 2, column 'Qty': '1_000' is not a quantity; use a whole number in the digits",
        ),
        (
            # Arabic-Indic three, which int() reads as 3
            HEADER + ROWS.replace(",2,Wine", ",\u0663,Wine"),
            "Line 2, column 'Qty': '\u0663' is not a quantity; use a whole number in the digits",
        ),
        (
            HEADER + ROWS.replace(",2,Wine", ",+2,Wine"),
            "Line 2, column 'Qty': '+2' is not a quantity; use a whole number in the digits",
        ),
        (
            HEADER + ROWS.replace("SKU-3", "SKU 3"),
            "Line 5, column 'Article': 'SKU 3' cannot be a SKU",
        ),
        (
            HEADER + ROWS.replace("R2,ben", "R1,ben"),
            "Line 4, column 'Client': order 'R1' is for customer 'ana' on line 2 but for 'ben'",
        ),
        (
            HEADER.replace("When", "Date") + ROWS,
            "Line 1, column 'When': missing column 'When'; the header has",
        ),
        (HEADER + ROWS + 'R4,ana,"SKU-4\n', "Line 6: unexpected end of data"),
        (
            HEADER + ROWS.replace("2024-03-02 09:30:00", "2099-03-01 10:00:00"),
            "Line 4, column 'When': '2099-03-01 10:00:00' is in the future",
        ),
        (
            HEADER + ROWS + "C1,ana,SKU-1,2099-03-01 10:00:00,12.50,-1,,\n",
            "Line 6, column 'When': '2099-03-01 10:00:00' is in the future",
        ),
        (
            HEADER
            + "R1,ana,SKU-1,2024-03-01 10:00:00,20000000.00,1,,\n"
            + "R1,ana,SKU-2,2024-03-01 10:00:00,20000000.00,1,,\n",
            "Line 3, column 'Price': order 'R1' comes to 4000000000 minor units with this line, "
            "more than Rapport stores for an order (2147483647)",
        ),
    ],
)
def test_malformed_file_names_its_line_and_changes_nothing(db, tmp_path, text, message) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, CUSTOM)
    assert error.value.detail.startswith(message), error.value.detail
    assert totals(db) == (0, 0, 0, 0, 0, 0)


SLASHED = (
    "R1,ana,NEWSKU-77,2024-03-01 10:00:00,12.50,1,,New\n"
    "R2,ana,NEWSKU-77,2024-03-01 11:00:00,12.50,1,,New\n"
    "R3,TX/1,NEWSKU-78,2024-03-02 09:30:00,13.00,1,,Newer\n"
)


def test_a_customer_number_with_a_slash_stops_the_check_pass(db, tmp_path) -> None:
    # the customers import's own check: nothing written, not even the products before it
    path = write(tmp_path, HEADER + SLASHED)
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, CUSTOM)
    assert error.value.detail.startswith(
        "Line 4, column 'Client': 'TX/1' cannot be a customer number. "
        "A customer number cannot hold '/'"
    ), error.value.detail
    assert totals(db) == (0, 0, 0, 0, 0, 0)


def test_bytes_that_are_not_utf8_are_named_as_utf8(db, tmp_path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes((HEADER + ROWS.replace("Chianti\n", "Chianti \xe9\n", 1)).encode("latin-1"))
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, CUSTOM)
    assert error.value.detail.startswith(
        "Line 2, column 'Label': this value is not UTF-8 text; export the file as UTF-8 or pass"
    ), error.value.detail
    assert totals(db) == (0, 0, 0, 0, 0, 0)


def test_damaged_gzip_is_malformed(db, tmp_path) -> None:
    path = tmp_path / "sales.csv.gz"
    path.write_bytes(gzip.compress((HEADER + ROWS * 50).encode())[:-30])
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, CUSTOM)
    assert "the compressed file is damaged" in error.value.detail
    assert totals(db) == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (PRESETS["csv"], "Give the currency as a 3-letter ISO code"),
        (CUSTOM.with_overrides({"price": ""}), "Map the price column (--price-col)"),
        (CUSTOM.with_overrides({"store": ""}, channel="store"), "In-store orders need a store"),
        (CUSTOM.with_overrides(price_per="basket"), "Prices are per unit or per line"),
    ],
)
def test_mappings_that_cannot_read_a_file_are_refused(mapping, message) -> None:
    with pytest.raises(InvalidInput) as error:
        mapping.validate()
    assert error.value.detail.startswith(message)


def test_overrides_refuse_unknown_fields() -> None:
    with pytest.raises(InvalidInput, match="Unknown field 'colour'"):
        CUSTOM.with_overrides({"colour": "Colour"})
    with pytest.raises(InvalidInput, match="olist preset reads Olist's own files"):
        PRESETS["olist"].with_overrides({"item": "sku"})


def test_progress_reports_each_phase(db, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS)
    reports: list[tuple[str, int, int]] = []
    import_transactions_file(db, path, CUSTOM, lambda *r: reports.append(r), batch_size=2)
    size = path.stat().st_size
    assert reports == [
        ("check", 0, size),
        ("check", size, size),
        ("products", 0, 3),
        ("products", 3, 3),
        ("import", 0, 3),
        ("import", 2, 3),
        ("import", 3, 3),
        ("import", 3, 3),
    ]


# --- the command -------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def command_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(import_transactions_command)
    return app


@pytest.fixture
def database_url(tmp_path, monkeypatch) -> Iterator[str]:
    url = migrated_sqlite(tmp_path / "import.db")
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


MAPPED = [
    *("--order-col", "Receipt", "--customer-col", "Client", "--item-col", "Article"),
    *("--time-col", "When", "--price-col", "Price", "--quantity-col", "Qty"),
    *("--category-col", "Group", "--name-col", "Label", "--currency", "eur"),
]


def test_command_imports_and_prints_a_summary(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS)
    # when the command runs twice
    first = runner.invoke(command_app, [str(path), *MAPPED])
    second = runner.invoke(command_app, [str(path), *MAPPED])
    # then the first adds three orders and the second none
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert re.search(r"Orders added\s*│\s*3\s*│", first.output), first.output
    assert re.search(r"Customers created\s*│\s*2\s*│", first.output), first.output
    assert re.search(r"Orders added\s*│\s*0\s*│", second.output), second.output
    assert re.search(r"Orders already present.*│\s*3\s*│", second.output), second.output
    with open_session(database_url) as db:
        assert totals(db)[:2] == (3, 4)


def test_command_counts_the_orders_kept_without_their_erased_customer(
    command_app, database_url, tmp_path
) -> None:
    # given a customer erased after a first import, which says nothing of erased people
    first = runner.invoke(command_app, [str(write(tmp_path, HEADER + ROWS)), *MAPPED])
    assert first.exit_code == 0, first.output
    assert "erased" not in first.output
    with open_session(database_url) as db:
        ben = customers.find_customer_by_external_id(db, external_id="ben")
        assert ben is not None
        privacy.erase_customer(db, customer_id=ben.customer_id, requested_by="test")
    # when an older export naming them is imported
    older = write(tmp_path, HEADER + "OLD-" + ROWS.replace("\nR", "\nOLD-R"), name="o.csv")
    result = runner.invoke(command_app, [str(older), *MAPPED])
    # then the summary counts their order apart
    assert result.exit_code == 0, result.output
    assert re.search(r"Orders kept without their erased customer\s*│\s*1\s*│", result.output), (
        result.output
    )


def test_command_says_when_the_prices_are_not_in_the_currency_the_admin_shows(
    command_app, database_url, tmp_path
) -> None:
    path = write(tmp_path, HEADER + ROWS)
    # a file in the program's currency imports without a word about it
    same = runner.invoke(command_app, [str(path), *MAPPED])
    assert same.exit_code == 0, same.output
    assert "Note:" not in same.output
    # one in pounds, into a shop still showing euros, says what to set and where
    pounds = [*MAPPED[:-1], "GBP"]
    other = runner.invoke(command_app, [str(write(tmp_path, HEADER + ROWS)), *pounds])
    assert other.exit_code == 0, other.output
    said = " ".join(other.output.split())
    assert "these prices are in GBP, but the admin pages show money in EUR" in said
    assert "set it under Loyalty, program settings" in said
    # and once the program is in pounds, nothing more is said
    with open_session(database_url) as db:
        loyalty.configure_program(db, currency="GBP")
    again = runner.invoke(command_app, [str(path), *pounds])
    assert "Note:" not in again.output


def test_command_reports_a_malformed_file_and_exits_2(command_app, database_url, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS.replace("13.00", "thirteen"))
    result = runner.invoke(command_app, [str(path), *MAPPED])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "Error in sales.csv: Line 4, column 'Price': 'thirteen' is not a price" in output
    assert "Nothing was imported" in output
    with open_session(database_url) as db:
        assert totals(db) == (0, 0, 0, 0, 0, 0)


def test_command_reports_a_slashed_customer_number_before_writing(
    command_app, database_url, tmp_path
) -> None:
    path = write(tmp_path, HEADER + SLASHED)
    result = runner.invoke(command_app, [str(path), *MAPPED])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert (
        "Error in sales.csv: Line 4, column 'Client': 'TX/1' cannot be a customer number. "
        "A customer number cannot hold '/'" in output
    ), output
    assert "Nothing was imported" in output
    assert "Creating products" not in output
    with open_session(database_url) as db:
        assert totals(db) == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--preset", "sap"], "Unknown preset 'sap'; use one of csv, ta-feng, online-retail"),
        ([], "Give the currency as a 3-letter ISO code, e.g. --currency EUR"),
        (["--currency", "EUR", "--channel", "phone"], "The channel is web or store"),
        (["--preset", "olist", "--item-col", "sku"], "olist preset reads Olist's own files"),
        (["--currency", "EUR", "--encoding", "klingon"], "unknown encoding 'klingon'"),
    ],
)
def test_command_refuses_bad_options(
    command_app, database_url, tmp_path, arguments, message
) -> None:
    path = write(tmp_path, HEADER + ROWS)
    result = runner.invoke(command_app, [str(path), *arguments])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


# --- the real Online Retail file: its first 20,000 rows --------------------------------

RETAIL_LIMIT = 20_000


def expected_online_retail(path: Path, limit: int) -> dict[str, object]:
    """The import's figures for the first ``limit`` rows, worked out directly: the preset's
    rules, and a brute-force search for each cancellation's purchase."""
    sales: list[dict[str, str]] = []
    cancels: list[dict[str, str]] = []
    skipped: Counter[str] = Counter()
    with gzip.open(path, "rt", encoding="utf-8", newline="") as file:
        for number, row in enumerate(csv.DictReader(file)):
            if number == limit:
                break
            quantity, price = int(row["Quantity"]), Decimal(row["UnitPrice"])
            cancel = row["InvoiceNo"].startswith("C")
            if row["StockCode"] in PRESETS["online-retail"].skip_items:
                skipped[SKIP_NON_PRODUCT] += 1
            elif quantity < 0 and not cancel:
                skipped[SKIP_ADJUSTMENT] += 1
            elif price == 0 and not row["CustomerID"] and not cancel:
                skipped[SKIP_FREE_GUEST] += 1
            else:
                (cancels if cancel else sales).append(row)
    minor = [int(Decimal(r["UnitPrice"]).scaleb(2).to_integral_value(ROUND_HALF_UP)) for r in sales]
    when = {r["InvoiceNo"]: at(r["InvoiceDate"]) for r in reversed(sales)}  # earliest line
    # Purchase lines a return can land on: the first line of each (invoice, item).
    left: dict[tuple[str, str], int] = {}
    for r in sales:
        left.setdefault((r["InvoiceNo"], r["StockCode"]), int(r["Quantity"]))
    matched = unmatched_guest = unmatched = capped = 0
    for c in sorted(cancels, key=lambda r: at(r["InvoiceDate"])):
        if not c["CustomerID"]:
            unmatched_guest += 1
            continue
        wanted, returned_at = -int(c["Quantity"]), at(c["InvoiceDate"])
        candidates = sorted(
            {
                (when[r["InvoiceNo"]], r["InvoiceNo"])
                for r in sales
                if r["CustomerID"] == c["CustomerID"]
                and r["StockCode"] == c["StockCode"]
                and returned_at - timedelta(days=90) <= when[r["InvoiceNo"]] <= returned_at
                and left[(r["InvoiceNo"], r["StockCode"])] > 0
            },
            reverse=True,
        )
        if not candidates:
            unmatched += 1
            continue
        fits = [i for _, i in candidates if left[(i, c["StockCode"])] >= wanted]
        invoice = fits[0] if fits else candidates[0][1]
        taken = min(wanted, left[(invoice, c["StockCode"])])
        left[(invoice, c["StockCode"])] -= taken
        capped += wanted - taken
        matched += 1
    return {
        "orders": len({r["InvoiceNo"] for r in sales}),
        "lines": len(sales),
        "customers": len({r["CustomerID"] for r in sales if r["CustomerID"]}),
        "products": len({r["StockCode"] for r in sales}),
        "value": sum(int(r["Quantity"]) * m for r, m in zip(sales, minor, strict=True)),
        "skipped": dict(skipped),
        "cancellations": len(cancels),
        "matched": matched,
        "unmatched_guest": unmatched_guest,
        "unmatched": unmatched,
        "capped": capped,
    }


@pytest.fixture(scope="module")
def online_retail() -> tuple[Path, dict[str, object]]:
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"Online Retail is not at {ONLINE_RETAIL} (shared data not present)")
    return ONLINE_RETAIL, expected_online_retail(ONLINE_RETAIL, RETAIL_LIMIT)


def test_online_retail_slice_imports_exact_counts_once(db, online_retail) -> None:
    path, expected = online_retail
    # given the first 20,000 rows of the real file
    mapping = PRESETS["online-retail"]
    # when they are imported twice
    first = import_transactions_file(db, path, mapping, limit=RETAIL_LIMIT)
    after_first = totals(db)
    second = import_transactions_file(db, path, mapping, limit=RETAIL_LIMIT)
    # then the counts are the ones worked out from the file
    assert expected == {
        "orders": 753,
        "lines": 19_530,
        "customers": 526,
        "products": 2_367,
        "value": 37_369_686,
        "skipped": {SKIP_NON_PRODUCT: 89, SKIP_FREE_GUEST: 88, SKIP_ADJUSTMENT: 48},
        "cancellations": 245,
        "matched": 49,
        "unmatched_guest": 20,
        "unmatched": 176,
        "capped": 0,
    }
    assert (first.rows, first.orders_added, first.lines_added) == (
        RETAIL_LIMIT,
        expected["orders"],
        expected["lines"],
    )
    assert (first.customers_created, first.products_created) == (
        expected["customers"],
        expected["products"],
    )
    assert first.skipped == expected["skipped"]
    assert (first.cancellations, first.returns_matched, first.returns_added) == (
        expected["cancellations"],
        expected["matched"],
        expected["matched"],
    )
    assert first.returns_unmatched == {
        UNMATCHED_GUEST: expected["unmatched_guest"],
        "no purchase of the item by the customer in the 90 days before": expected["unmatched"],
    }
    assert first.return_units_capped == expected["capped"]
    assert db.scalar(select(func.sum(Order.total_minor))) == expected["value"]
    # and the second run adds nothing
    assert (second.orders_added, second.orders_present, second.returns_added) == (
        0,
        expected["orders"],
        0,
    )
    assert (second.customers_created, second.products_created) == (0, 0)
    assert totals(db) == after_first


# --- the real Olist subset: its first 2,500 order items ----------------------------------

# The whole subset takes some 17 s on SQLite and 33 s on PostgreSQL, mostly import_orders
# looking up each order's customer; a quarter of it keeps this file within its time budget.
OLIST_LIMIT = 2_500


def expected_olist(folder: Path, limit: int) -> dict[str, int]:
    with (folder / "orders.csv").open(encoding="utf-8", newline="") as file:
        olist_orders = {row["order_id"]: row for row in csv.DictReader(file)}
    with (folder / "order_items.csv").open(encoding="utf-8", newline="") as file:
        items = list(csv.DictReader(file))[:limit]
    kept = [
        i for i in items if olist_orders[i["order_id"]]["order_status"] in ("delivered", "shipped")
    ]
    imported = {i["order_id"] for i in kept}
    with (folder / "customers.csv").open(encoding="utf-8", newline="") as file:
        person = {row["customer_id"]: row["customer_unique_id"] for row in csv.DictReader(file)}

    def late(order: dict[str, str]) -> bool:
        promised = date.fromisoformat(order["order_estimated_delivery_date"][:10])
        delivered = order["order_delivered_customer_date"]
        return not delivered or date.fromisoformat(delivered[:10]) > promised

    return {
        "orders": len(imported),
        "lines": len(kept),
        "skipped_items": len(items) - len(kept),
        "products": len({i["product_id"] for i in kept}),
        "late": sum(1 for o in imported if late(olist_orders[o])),
        "customers": len({person[olist_orders[o]["customer_id"]] for o in imported}),
        "value": sum(
            int(Decimal(i["price"]).scaleb(2).to_integral_value(ROUND_HALF_UP)) for i in kept
        ),
    }


@pytest.fixture(scope="module")
def olist() -> tuple[Path, dict[str, int]]:
    if not (OLIST / "order_items.csv").exists():
        pytest.skip(f"the Olist subset is not at {OLIST} (shared data not present)")
    return OLIST, expected_olist(OLIST, OLIST_LIMIT)


def test_olist_subset_imports_delivered_and_shipped_orders_once(db, olist) -> None:
    folder, expected = olist
    # when the Olist folder is imported twice, up to its 2,500th order item
    first = import_transactions_file(db, folder, PRESETS["olist"], limit=OLIST_LIMIT)
    after_first = totals(db)
    second = import_transactions_file(db, folder, PRESETS["olist"], limit=OLIST_LIMIT)
    # then delivered and shipped orders arrive with their lines, promises and people
    assert expected == {
        "orders": 2_148,
        "lines": 2_463,
        "skipped_items": 37,
        "products": 1_768,
        "late": 131,
        "customers": 2_146,
        "value": 30_458_964,
    }
    assert (first.orders_added, first.lines_added, first.products_created) == (
        expected["orders"],
        expected["lines"],
        expected["products"],
    )
    assert sum(first.skipped.values()) == expected["skipped_items"]
    # the people of those orders, with their city: not all 9,920 in customers.csv (a trial)
    assert first.customers_created == expected["customers"]
    assert customers.count_customers(db) == expected["customers"]
    late = db.scalar(select(func.count()).select_from(Event).where(Event.type == "delivery_late"))
    assert late == expected["late"]
    assert db.scalar(select(func.sum(Order.total_minor))) == expected["value"]
    order = orders.get_order(db, order_id="olist:00042b26cf59d7ce69dfabb4e55b4fd9")
    assert order is not None
    assert (order.placed_at, order.promised_delivery, order.delivered_at, order.status) == (
        at("2017-02-04 13:57:51"),
        date(2017, 3, 17),
        at("2017-03-01 16:42:31"),
        "delivered",
    )
    assert lines_of(db, order.order_id) == [
        ("ac6c3623068f30de03045865e4e10089", 1, 19990, "garden_tools", 0)
    ]
    person = customers.find_customer_by_external_id(
        db, external_id="64b576fb70d441e8f1b2d7d446e483c5"
    )
    assert person is not None
    assert order.customer_id == person.customer_id
    assert person.locale == "pt-BR"
    assert person.home_city == "varzea paulista"
    # and the second run adds nothing
    assert (second.orders_added, second.orders_present, second.customers_created) == (
        0,
        expected["orders"],
        0,
    )
    assert totals(db) == after_first


OLIST_FILES = {
    "orders.csv": (
        "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
        "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date\n"
        "o1,c1,delivered,2017-03-01 10:00:00,,,2017-03-09 18:00:00,2017-03-08 00:00:00\n"
        "o2,c2,shipped,2017-03-02 11:00:00,,,,2017-03-20 00:00:00\n"
        "o3,c3,canceled,2017-03-03 12:00:00,,,,2017-03-21 00:00:00\n"
    ),
    "order_items.csv": (
        "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value\n"
        "o2,1,p2,s1,2017-03-05 00:00:00,10.5,3.1\n"
        "o1,1,p1,s1,2017-03-04 00:00:00,99.9,9.9\n"
        "o1,2,p1,s1,2017-03-04 00:00:00,99.9,9.9\n"
        "o3,1,p2,s1,2017-03-06 00:00:00,10.5,3.1\n"
    ),
    "customers.csv": (
        "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state\n"
        "c1,person-a,1001,sao paulo,SP\n"
        "c2,person-b,2002,curitiba,PR\n"
        "c3,person-a,1001,sao paulo,SP\n"
    ),
    "products.csv": "product_id,product_category_name\np1,beleza_saude\np2,pc_gamer\n",
    "product_category_name_translation.csv": (
        "\ufeffproduct_category_name,product_category_name_english\nbeleza_saude,health_beauty\n"
    ),
}


def olist_folder(tmp_path: Path, **replaced: str) -> Path:
    folder = tmp_path / "olist"
    folder.mkdir()
    for name, text in OLIST_FILES.items():
        write(folder, replaced.get(name.removesuffix(".csv"), text), name)
    return folder


def test_olist_folder_imports_delivered_and_shipped_orders_with_their_promises(
    db, tmp_path
) -> None:
    # given an Olist folder: a late delivery, a shipped order never delivered, a cancellation
    folder = olist_folder(tmp_path)
    # when it is imported (the folder, or any file in it)
    summary = import_transactions_file(db, folder / "orders.csv", PRESETS["olist"])
    # then delivered and shipped orders arrive; the cancelled one's item is counted
    assert (summary.orders_added, summary.lines_added, summary.customers_created) == (2, 3, 2)
    assert summary.skipped == {"item of an order with status 'canceled'": 1}
    assert summary.sorted_on_disk
    assert lines_of(db, "olist:o1") == [
        ("p1", 1, 9990, "health_beauty", 0),
        ("p1", 1, 9990, "health_beauty", 0),
    ]
    assert lines_of(db, "olist:o2") == [("p2", 1, 1050, "pc_gamer", 0)]
    late = orders.get_order(db, order_id="olist:o1")
    assert late is not None
    assert (late.status, late.promised_delivery, late.delivered_at) == (
        "delivered",
        date(2017, 3, 8),
        at("2017-03-09 18:00"),
    )
    never = orders.get_order(db, order_id="olist:o2")
    assert never is not None
    assert (never.status, never.delivered_at) == ("failed", None)
    flagged = db.scalars(
        select(Event.properties).where(Event.type == "delivery_late").order_by(Event.position)
    ).all()
    assert [(e["order_id"], e["reason"]) for e in flagged] == [
        ("olist:o1", "promised date passed"),
        ("olist:o2", "delivery failed"),
    ]
    # and the person behind both customer_ids of person-a is one customer, from customers.csv
    assert external_id_of(db, "olist:o1") == "person-a"
    person = customers.find_customer_by_external_id(db, external_id="person-a")
    assert person is not None
    assert (person.home_city, person.locale) == ("sao paulo", "pt-BR")


def test_an_olist_trial_creates_only_the_customers_of_its_orders(db, tmp_path) -> None:
    # given an Olist folder whose customers.csv names three people, one with a two-line city
    folder = olist_folder(
        tmp_path,
        customers=OLIST_FILES["customers.csv"].replace("curitiba", '"curitiba\nnorte"'),
    )
    # when only its first order item is read (o2, person-b's)
    summary = import_transactions_file(db, folder, PRESETS["olist"], limit=1)
    # then person-b alone is created, with their city
    assert (summary.orders_added, summary.customers_created) == (1, 1)
    assert customers.count_customers(db) == 1
    person = customers.find_customer_by_external_id(db, external_id="person-b")
    assert person is not None
    assert person.home_city == "curitiba\nnorte"
    # and the full import later creates the others
    full = import_transactions_file(db, folder, PRESETS["olist"])
    assert (full.orders_added, full.customers_created) == (1, 1)


def test_olist_malformed_customers_file_is_named_and_changes_nothing(db, tmp_path) -> None:
    folder = olist_folder(
        tmp_path,
        customers=OLIST_FILES["customers.csv"].replace("c2,person-b,2002", "c2,person-b"),
    )
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, folder, PRESETS["olist"])
    assert error.value.detail.startswith(
        "customers.csv: line 3, column 'customer_state': the row has 4 fields"
    ), error.value.detail
    assert totals(db) == (0, 0, 0, 0, 0, 0)


def test_olist_item_of_an_unknown_order_is_malformed(db, tmp_path) -> None:
    folder = olist_folder(
        tmp_path, order_items=OLIST_FILES["order_items.csv"].replace("o3,1", "o9,1")
    )
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, folder, PRESETS["olist"])
    assert error.value.detail == (
        "order_items.csv: line 5, column 'order_id': order 'o9' is not in orders.csv"
    )


def test_olist_needs_its_files(db, tmp_path) -> None:
    with pytest.raises(MalformedFile, match=r"is not an Olist folder: orders\.csv, order_items"):
        import_transactions_file(db, tmp_path, PRESETS["olist"])


# --- decimal commas, blank lines, erased people -------------------------------------------


def test_a_semicolon_file_may_write_amounts_with_a_decimal_comma(db, tmp_path) -> None:
    # given a till export from a spreadsheet in a European locale
    path = write(tmp_path, (HEADER + ROWS).replace(",", ";").replace("12.50", "12,50"))
    path.write_text(path.read_text().replace("13.00", "13,0").replace(";3;1", ";3,00;1"))
    # when it is imported, then its amounts read as the comma-separated file's
    summary = import_transactions_file(db, path, CUSTOM.with_overrides(delimiter=";"))
    assert (summary.orders_added, summary.prices_rounded) == (3, 0)
    assert lines_of(db, "csv:R1") == [
        ("SKU-1", 2, 1250, "Wine/Red", 0),
        ("SKU-2", 1, 300, "Uncategorised", 0),
    ]
    assert lines_of(db, "csv:R2") == [("SKU-1", 1, 1300, "Wine/Red", 0)]


@pytest.mark.parametrize(
    ("currency", "price", "unit_price"),
    [("EUR", '"12,5"', 1250), ("KWD", '"1,250"', 1250), ("JPY", "1200", 1200)],
)
def test_a_decimal_comma_has_the_currencys_decimals(
    db, tmp_path, currency, price, unit_price
) -> None:
    path = write(tmp_path, HEADER + f"R1,ana,SKU-1,2024-03-01 10:00:00,{price},1,,\n")
    import_transactions_file(db, path, CUSTOM.with_overrides(currency=currency))
    assert lines_of(db, "csv:R1") == [("SKU-1", 1, unit_price, "Uncategorised", 0)]


@pytest.mark.parametrize(
    ("currency", "price", "unit_price", "shown"),
    [("IQD", "1.234", 1234, "IQD1.234"), ("RSD", "12.34", 1234, "RSD12.34")],
)
def test_a_currency_cldr_shows_without_decimals_keeps_its_iso_4217_minor_unit(
    db, tmp_path, currency, price, unit_price, shown
) -> None:
    # given a file in a currency ISO 4217 gives decimals and CLDR shows without (IQD 3, RSD 2)
    path = write(tmp_path, HEADER + f"R1,ana,SKU-1,2024-03-01 10:00:00,{price},1,,\n")
    # when it is imported, then the price is stored in ISO 4217 minor units, and the admin
    # pages show it as the file wrote it
    import_transactions_file(db, path, CUSTOM.with_overrides(currency=currency))
    assert lines_of(db, "csv:R1") == [("SKU-1", 1, unit_price, "Uncategorised", 0)]
    assert formatting.money(unit_price, currency) == shown


@pytest.mark.parametrize(
    ("currency", "price", "message"),
    [
        (
            "EUR",
            "1.234,50",
            "'1.234,50' is not a price; write amounts without thousands separators, like 12.50 "
            "or 12,50, with at most 2 decimals",
        ),
        (
            "EUR",
            "1,234",
            "'1,234' is not a price; write amounts without thousands separators, like 12.50 "
            "or 12,50, with at most 2 decimals",
        ),
        (
            "JPY",
            "1200,5",
            "'1200,5' is not a price; write amounts without thousands separators, like 1250 "
            "(the currency has no decimals)",
        ),
    ],
)
def test_a_comma_that_could_separate_thousands_is_refused(
    db, tmp_path, currency, price, message
) -> None:
    path = write(tmp_path, HEADER.replace(",", ";") + f"R1;ana;SKU-1;2024-03-01;{price};1;;\n")
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, CUSTOM.with_overrides(currency=currency, delimiter=";"))
    assert error.value.detail == f"Line 2, column 'Price': {message}"
    assert totals(db) == (0, 0, 0, 0, 0, 0)


def test_a_line_of_spaces_is_skipped_as_blank(db, tmp_path) -> None:
    path = write(tmp_path, HEADER + ROWS.replace("\nR2", "\n   \n\t\nR2"))
    summary = import_transactions_file(db, path, CUSTOM)
    assert (summary.rows, summary.orders_added) == (4, 3)


def test_an_erased_persons_orders_are_kept_without_them_and_counted(db, tmp_path) -> None:
    # given a customer erased after a first import
    import_transactions_file(db, write(tmp_path, HEADER + ROWS), CUSTOM)
    ben = customers.find_customer_by_external_id(db, external_id="ben")
    assert ben is not None
    privacy.erase_customer(db, customer_id=ben.customer_id, requested_by="test")
    # when an older export naming them is imported
    older = write(tmp_path, HEADER + "OLD-" + ROWS.replace("\nR", "\nOLD-R"), name="o.csv")
    summary = import_transactions_file(db, older, CUSTOM)
    # then their order is kept, without them, and said apart; nobody is created again
    assert (summary.orders_added, summary.customers_created, summary.orders_of_erased) == (
        3,
        0,
        1,
    )
    assert external_id_of(db, "csv:OLD-R2") is None
    assert external_id_of(db, "csv:OLD-R1") == "ana"
    assert customers.find_customer_by_external_id(db, external_id="ben") is None


@pytest.mark.parametrize(
    ("price_unit", "price"),
    [
        *[
            ("major", price)
            for price in ["1_000", "1e3", ",5", "5,", ".5", "5.", "+5", "\uff11\uff12"]
        ],
        *[("minor", price) for price in ["1_000", "\u0661\u0662", "+5", "12.50"]],
    ],
)
def test_a_price_written_otherwise_than_in_ascii_digits_is_refused(
    db, tmp_path, price_unit, price
) -> None:
    path = write(tmp_path, HEADER.replace(",", ";") + f"R1;ana;SKU-1;2024-03-01;{price};1;;\n")
    mapping = CUSTOM.with_overrides(delimiter=";", price_unit=price_unit)
    with pytest.raises(MalformedFile) as error:
        import_transactions_file(db, path, mapping)
    assert error.value.detail.startswith(f"Line 2, column 'Price': {price!r} is not a price")
    assert totals(db) == (0, 0, 0, 0, 0, 0)
