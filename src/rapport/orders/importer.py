"""Import order lines (transactions) from a CSV file through a column mapping.

The file is streamed, never held: memory grows with the number of orders, products and
cancellations in it, not with its lines. Up to three passes:

1. **check**: parse every row, so that a malformed file raises :class:`MalformedFile` before
   anything is written, and learn each order's time, customer and store and each product's
   latest price, name and category;
2. **match** (files with cancellations only): find the purchase each cancellation returns;
3. **load**: create missing stores and products, read the lines again, group them by order
   and import the orders in batches through :func:`rapport.orders.service.import_orders`.
   When one order's lines are spread over the file (Ta-Feng), the lines are first sorted by
   (order time, order) in runs on disk and merged back, so no more than one run is in memory.

Order ids are derived from the file (``<prefix>:<invoice>``, or ``<prefix>:<customer>:<day>``
for baskets), so running the same import again adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import itertools
import pickle
import re
import tempfile
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import SKU_PATTERN, ProductUpsert, StoreUpsert
from rapport.customers import importer as customer_files
from rapport.customers import service as customers
from rapport.customers.service import ImportedCustomer
from rapport.orders.models import Order
from rapport.orders.service import ImportedLine, ImportedOrder, ImportedReturn, import_orders
from rapport.platform.errors import InvalidInput
from rapport.platform.errors import MalformedFile as FileProblem
from rapport.platform.files import open_decompressed
from rapport.platform.schemas import MAX_MINOR_UNITS

BATCH_SIZE = 1_000  # orders per import_orders call (one transaction each)
# Lines sorted in memory at a time when a file's orders are not contiguous; about 40 MB.
RUN_LINES = 100_000
SPILL_BLOCK = 2_048  # lines per pickle record in a run file
PROGRESS_EVERY_ROWS = 5_000
PRODUCT_CHUNK = 1_000
RETURN_WINDOW_DAYS = 90
UNCATEGORISED = "Uncategorised"
RETURN_REASON = "cancelled"
MAX_EXTERNAL_ID = 100  # customers.external_id
MAX_NAME = 300  # products.name and category_path
MAX_ORDER_ID = 64
MAX_STORE_ID = 40  # orders.store_id

# Progress callback: (phase, done, total). "check", "match" and "sort" count bytes of the file
# as stored; "customers" rows, "products" SKUs and "import" orders.
Progress = Callable[[str, int, int], None]
Channel = Literal["web", "store"]
PriceUnit = Literal["major", "minor"]
PricePer = Literal["unit", "line"]

COLUMN_FIELDS = (
    "order", "customer", "item", "time", "price", "quantity", "category", "name", "store", "cost",
)  # fmt: skip
WHITESPACE = "whitespace"
WEB_STORE_ID = "web"  # the online warehouse, as the demo retailer names it

# ISO 4217 currencies whose minor unit is not the cent; the rest have two decimals.
_ZERO_DECIMALS = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
     "VUV", "XAF", "XOF", "XPF"}
)  # fmt: skip
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
_SKU = re.compile(SKU_PATTERN)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_SAMPLE_TIME = datetime(2001, 2, 3, 14, 5, 6)  # noqa: DTZ001 - only formatted, as an example


def minor_digits(currency: str) -> int:
    """Decimals of the currency's minor unit (2 for EUR, 0 for JPY, 3 for KWD)."""
    if currency in _ZERO_DECIMALS:
        return 0
    return 3 if currency in _THREE_DECIMALS else 2


class MalformedFile(FileProblem):
    """The file cannot be imported as it is: ``line`` (the header is line 1) and ``column``
    say where, and ``file`` which file, for imports that read several (Olist)."""

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
        file: str | None = None,
    ) -> None:
        super().__init__(reason, line=line, column=column)
        self.file = file
        if file is not None:
            self.detail = f"{file}: {self.detail[:1].lower()}{self.detail[1:]}"
            self.args = (self.detail,)
            self.extra["file"] = file


@dataclass(frozen=True)
class FixedItem:
    """The one product of files that have no item column (CDNOW)."""

    sku: str
    name: str
    category: str


@dataclass(frozen=True)
class TransactionMapping:
    """Which column holds each field of an order line, and how to read it.

    Column fields (``order``, ``customer``, ``item``, ``time``, ``price``, ``quantity``,
    ``category``, ``name``, ``store``, ``cost``) name a header column, matched without regard
    to case; ``None`` means the file has none. A mapped column must be in the file unless its
    field is in ``optional``. Without an order column, a basket is one customer's lines with
    the same time value. ``price`` (and ``cost``) is per unit or for the whole line
    (``price_per``), in major (12.50) or minor (1250) units."""

    time: str | None = None
    price: str | None = None
    item: str | None = None
    order: str | None = None
    customer: str | None = None
    quantity: str | None = None
    category: str | None = None
    name: str | None = None
    store: str | None = None
    cost: str | None = None
    optional: frozenset[str] = frozenset()
    time_format: str | None = None  # strptime format; None reads ISO 8601
    currency: str | None = None
    price_unit: PriceUnit = "major"
    price_per: PricePer = "unit"
    channel: Channel = "web"
    delimiter: str = ","  # or "whitespace": runs of spaces and tabs (CDNOW)
    encoding: str = "utf-8-sig"
    order_prefix: str = "csv"  # order ids are "<order_prefix>:<order key>"
    customer_prefix: str = ""  # prepended to customer ids (keeps datasets apart)
    locale: str = "en"  # of the customers the import creates
    fixed_item: FixedItem | None = None
    cancel_prefix: str | None = None  # order ids starting with it are cancellations
    skip_items: frozenset[str] = frozenset()  # item codes that are not products (postage)
    home_store: StoreUpsert | None = None  # orders' store when no store column says one
    layout: Literal["csv", "olist"] = "csv"
    return_window_days: int = RETURN_WINDOW_DAYS

    @property
    def physical_store(self) -> StoreUpsert | None:
        """The store in-store orders default to (the web warehouse is not one)."""
        home = self.home_store
        return home if home is not None and home.store_id != WEB_STORE_ID else None

    @property
    def fulfilment(self) -> str:
        return "ship" if self.channel == "web" else "in_store"

    @property
    def source(self) -> str:
        """The ``source`` recorded on orders and events (at most 20 characters)."""
        return f"import:{self.order_prefix}"[:20]

    def columns(self) -> dict[str, str]:
        """Every mapped column field and its column."""
        return {f: c for f in COLUMN_FIELDS if (c := getattr(self, f)) is not None}

    def with_overrides(
        self, columns: Mapping[str, str | None] | None = None, **settings: Any
    ) -> TransactionMapping:
        """This mapping with other columns (``""`` unmaps a field; a column named here must be
        in the file) and other settings (``currency``, ``time_format``, ``price_unit`` …);
        ``None`` values leave a setting as it is."""
        changes: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise InvalidInput(f"Unknown setting {unknown[0]!r}", field=unknown[0])
        optional = set(self.optional)
        for name, column in (columns or {}).items():
            if column is None:
                continue
            if name not in COLUMN_FIELDS:
                raise InvalidInput(
                    f"Unknown field {name!r}; use one of {', '.join(COLUMN_FIELDS)}", field=name
                )
            if self.layout == "olist":
                raise InvalidInput(
                    "The olist preset reads Olist's own files; its columns cannot be changed",
                    field=name,
                )
            changes[name] = column.strip() or None
            optional.discard(name)
        mapping = replace(self, **changes, optional=frozenset(optional))
        if mapping.channel == "store" and mapping.physical_store is None:
            # In-store orders name their store: the column becomes required.
            optional.discard("store")
        return replace(mapping, optional=frozenset(optional))

    def validate(self) -> None:
        """Raise :class:`InvalidInput` when the mapping cannot read a file."""
        if self.currency is None or not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise InvalidInput(
                "Give the currency as a 3-letter ISO code, e.g. --currency EUR", field="currency"
            )
        if self.price_unit not in ("major", "minor"):
            raise InvalidInput("The price unit is major or minor", field="price_unit")
        if self.price_per not in ("unit", "line"):
            raise InvalidInput("Prices are per unit or per line", field="price_per")
        if self.channel not in ("web", "store"):
            raise InvalidInput("The channel is web or store", field="channel")
        if self.delimiter != WHITESPACE and len(self.delimiter) != 1:
            raise InvalidInput("The delimiter is one character, or 'whitespace'", field="delimiter")
        if self.layout == "olist":
            return
        for name in ("time", "price"):
            if getattr(self, name) is None:
                raise InvalidInput(f"Map the {name} column (--{name}-col)", field=name)
        if self.item is None and self.fixed_item is None:
            raise InvalidInput("Map the item column (--item-col)", field="item")
        if self.channel == "store" and self.physical_store is None and self.store is None:
            raise InvalidInput(
                "In-store orders need a store: map the store column (--store-col)", field="store"
            )


def _web_store(country: str) -> StoreUpsert:
    # The same "web" warehouse the demo retailer uses: no coordinates, city "Online".
    return StoreUpsert(
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
        home_store=StoreUpsert(
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


@dataclass(frozen=True)
class ImportSummary:
    """What one import did. ``rows`` counts data rows read; ``lines`` and ``orders`` what the
    file holds once skipped rows are left out, ``*_added`` what this run stored."""

    rows: int
    lines: int
    orders: int
    orders_added: int
    orders_present: int
    lines_added: int
    cancellations: int
    returns_matched: int
    returns_added: int
    returns_unmatched: dict[str, int]
    return_units_capped: int
    customers_created: int
    products_created: int
    stores_created: int
    skipped: dict[str, int]
    prices_rounded: int
    sorted_on_disk: bool
    unused_columns: tuple[str, ...] = ()


# ------------------------------------------------------------------------------- reading


class _TableFile:
    """A delimited text file, plain, gzip or zip (its first ``.csv`` or ``.txt``), read one
    record at a time with the line it starts on."""

    def __init__(
        self, path: Path, *, encoding: str, delimiter: str, label: str | None = None
    ) -> None:
        self.path = path
        self.encoding = encoding
        self.delimiter = delimiter
        self.label = label  # named in errors when an import reads several files
        self.size = path.stat().st_size
        self._stack = ExitStack()
        self._raw: IO[bytes] | None = None
        self._text: IO[str] | None = None
        self._records: Iterator[tuple[int, list[str]]] = iter(())
        self.header: list[str] = []

    def __enter__(self) -> _TableFile:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def error(
        self, reason: str, *, line: int | None = None, column: str | None = None
    ) -> MalformedFile:
        return MalformedFile(reason, line=line, column=column, file=self.label)

    def position(self) -> int:
        """Bytes of the stored file read so far (read ahead in chunks, so approximate)."""
        return self._raw.tell() if self._raw is not None else 0

    def _open(self) -> None:
        self.header = []  # a source is opened once per pass
        # CDNOW's files are .txt, so zips may hold either (a .csv first).
        raw, stream = open_decompressed(
            self._stack,
            self.path,
            fail=lambda reason: self.error(reason),
            suffixes=(".csv", ".txt"),
        )
        self._raw = raw
        self._text = self._stack.enter_context(
            io.TextIOWrapper(stream, encoding=self.encoding, errors="surrogateescape", newline="")
        )

    def _split(self) -> Iterator[tuple[int, list[str]]]:
        assert self._text is not None
        if self.delimiter == WHITESPACE:
            return ((n, text.split()) for n, text in enumerate(self._text, start=1))
        reader = csv.reader(self._text, delimiter=self.delimiter, strict=True)

        def rows() -> Iterator[tuple[int, list[str]]]:
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    raise self.error(
                        f"{error}; check the quotes in the record starting here", line=start
                    ) from error
                yield start, row

        return rows()

    def records(self) -> Iterator[tuple[int, list[str]]]:
        """The non-blank records after the header, and the line each starts on."""
        records = self._split()
        line = 0
        while True:
            try:
                line, row = next(records)
            except StopIteration:
                return
            except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
                # A truncated or corrupt gzip/zip stream surfaces here, mid-file.
                raise self.error(
                    f"the compressed file is damaged ({error}); export it again", line=line + 1
                ) from error
            if not row:
                continue
            # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"), so the
            # error can name the line and column rather than a chunk of the file.
            if not "".join(row).isascii():
                for position, value in enumerate(row):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as error:
                        column = self.header[position] if position < len(self.header) else None
                        raise self.error(
                            f"this value is not {self.encoding} text; export the file as UTF-8 "
                            "or pass its encoding (--encoding cp1252)",
                            line=line,
                            column=column,
                        ) from error
            if not self.header:
                self.header = [name.strip() for name in row]
                continue
            yield line, row

    def read_header(self) -> list[str]:
        """Read the header record (line 1) and return the column names."""
        self._records = self.records()
        first = next(self._records, None)
        if first is not None:  # the header is consumed; ``first`` is the first data row
            self._records = itertools.chain([first], self._records)
        if not self.header:
            raise self.error("the file is empty; expected a header row", line=1)
        return self.header

    def data(self) -> Iterator[tuple[int, list[str]]]:
        """The data records after :meth:`read_header`, each checked to be as wide as it."""
        width = len(self.header)
        for line, row in self._records:
            if len(row) != width:
                raise self.ragged(row, line=line)
            yield line, row

    def ragged(self, row: list[str], *, line: int) -> MalformedFile:
        width = len(self.header)
        if len(row) < width:
            return self.error(
                f"the row has {len(row)} fields but the header has {width}; the row ends "
                "before this column (a missing field or a stray line break?)",
                line=line,
                column=self.header[len(row)],
            )
        return self.error(
            f"the row has {len(row)} fields but the header has {width}; quote values that "
            f"contain {self.delimiter!r}",
            line=line,
        )

    def positions(self, wanted: Mapping[str, str], required: Iterable[str]) -> dict[str, int]:
        """Field -> position of its column; a required field's column must be there."""
        found: dict[str, list[int]] = {}
        for position, name in enumerate(self.header):
            found.setdefault(name.casefold(), []).append(position)
        must = set(required)
        missing = [c for f, c in wanted.items() if f in must and c.casefold() not in found]
        if missing:
            plural = "s" if len(missing) > 1 else ""
            raise self.error(
                f"missing column{plural} {', '.join(repr(c) for c in missing)}; the header has "
                f"{', '.join(repr(c) for c in self.header)}. Rename the column{plural} or map "
                "another one (--item-col, --time-col …)",
                line=1,
                column=missing[0],
            )
        index: dict[str, int] = {}
        for name, column in wanted.items():
            places = found.get(column.casefold())
            if places is None:
                continue
            if len(places) > 1:
                raise self.error(
                    f"the header names {column!r} {len(places)} times; rename the duplicates",
                    line=1,
                    column=column,
                )
            index[name] = places[0]
        return index


@lru_cache(maxsize=1 << 16)
def _parse_time(value: str, fmt: str | None) -> tuple[datetime, str]:
    """The time as aware UTC (naive times are read as UTC) and the key naming it in basket
    ids: the day alone for times at midnight. Cached: files repeat their times a lot."""
    parsed = datetime.fromisoformat(value) if fmt is None else datetime.strptime(value, fmt)  # noqa: DTZ007
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed.hour == parsed.minute == parsed.second == parsed.microsecond == 0:
        key = parsed.strftime("%Y-%m-%d")
    else:
        key = parsed.strftime("%Y-%m-%dT%H:%M:%S")
    return parsed, key


@lru_cache(maxsize=1 << 16)
def _to_minor(value: str, digits: int) -> tuple[int, bool]:
    """A decimal amount in major units as minor units, rounded half up, and whether it had to
    be rounded (0.001 GBP). Raises ValueError for anything but a plain decimal number."""
    if not _NUMBER.fullmatch(value):
        raise ValueError(value)
    exact = Decimal(value).scaleb(digits)
    whole = exact.to_integral_value(rounding=ROUND_HALF_UP)
    return int(whole), whole != exact


class Row(NamedTuple):
    """One parsed data row. ``kind`` is "sale", "cancel" or "skip" (``reason`` says why)."""

    line: int
    kind: str
    reason: str | None = None
    order_key: str = ""
    customer: str | None = None
    at: datetime = datetime.min.replace(tzinfo=UTC)
    sku: str = ""
    quantity: int = 0
    unit_price: int = 0
    cost: int | None = None
    category: str | None = None
    name: str | None = None
    store: str | None = None
    rounded: bool = False


SKIP_NON_PRODUCT = "not a product (postage, fees, discounts, manual corrections)"
SKIP_ZERO_QUANTITY = "zero quantity"
SKIP_ADJUSTMENT = "negative quantity outside a cancellation (a stock adjustment)"
SKIP_NEGATIVE_PRICE = "negative price (an adjustment, not a sale)"
SKIP_FREE_GUEST = "zero price and no customer (a stock movement, not a sale)"
UNMATCHED_GUEST = "no customer id"
UNMATCHED_NO_PURCHASE = "no purchase of the item by the customer in the {days} days before"


class _Source(Protocol):
    size: int
    unused_columns: tuple[str, ...]

    def position(self) -> int: ...

    def rows(self) -> Iterator[Row]: ...

    def delivery(self, order_key: str) -> tuple[date | None, datetime | None]: ...

    def column_of(self, field: str) -> str | None: ...

    def __enter__(self) -> _Source: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _Values:
    """Reads the cells of one file into typed values, raising :class:`MalformedFile` that
    names the line and column."""

    def __init__(self, table: _TableFile, mapping: TransactionMapping) -> None:
        self.table = table
        self.mapping = mapping
        self.digits = 0 if mapping.price_unit == "minor" else minor_digits(mapping.currency or "")

    def time(self, value: str, *, line: int, column: str, fmt: str | None) -> tuple[datetime, str]:
        try:
            return _parse_time(value, fmt)
        except ValueError as error:
            expected = (
                "an ISO 8601 time like 2011-12-09 12:50:00; pass --time-format for others"
                if fmt is None
                else f"a time in the format {fmt!r}, like {_SAMPLE_TIME.strftime(fmt)!r}"
            )
            raise self.table.error(
                f"{value!r} is not {expected}", line=line, column=column
            ) from error

    def money(self, value: str, *, line: int, column: str, what: str) -> tuple[int, bool]:
        try:
            if self.mapping.price_unit == "minor":
                return int(value), False
            return _to_minor(value, self.digits)
        except ValueError as error:
            hint = (
                "a whole number of minor units (1250)"
                if self.mapping.price_unit == "minor"
                else "a number with a dot (12.50)"
            )
            raise self.table.error(
                f"{value!r} is not a {what}; use {hint}", line=line, column=column
            ) from error

    def integer(self, value: str, *, line: int, column: str) -> int:
        try:
            number = int(value)
        except ValueError as error:
            raise self.table.error(
                f"{value!r} is not a quantity; use a whole number", line=line, column=column
            ) from error
        if abs(number) > MAX_MINOR_UNITS:  # the quantity columns are 32-bit integers too
            raise self.table.error(
                f"{value} is more units than a line can hold", line=line, column=column
            )
        return number

    def sku(self, value: str, *, line: int, column: str | None) -> str:
        if not _SKU.fullmatch(value):
            raise self.table.error(
                f"{value!r} cannot be a SKU: use at most 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                line=line,
                column=column,
            )
        return value

    def store(self, value: str, *, line: int, column: str) -> str:
        if not _SKU.fullmatch(value) or len(value) > MAX_STORE_ID:
            raise self.table.error(
                f"{value!r} cannot be a store id: use at most {MAX_STORE_ID} letters, digits, "
                "'.', '_' or '-'",
                line=line,
                column=column,
            )
        return value

    def customer(self, value: str, *, line: int, column: str) -> str:
        limit = MAX_EXTERNAL_ID - len(self.mapping.customer_prefix)
        if len(value) > limit:
            raise self.table.error(
                f"a customer id of {len(value)} characters is too long (at most {limit})",
                line=line,
                column=column,
            )
        return value


def _unit_price(total: int, quantity: int) -> tuple[int, bool]:
    """A line total spread over its units, rounded half up to the minor unit."""
    return (2 * total + quantity) // (2 * quantity), total % quantity != 0


class CsvSource:
    """Order lines of one delimited file, read through a :class:`TransactionMapping`."""

    def __init__(self, path: Path, mapping: TransactionMapping, *, limit: int | None) -> None:
        self.mapping = mapping
        self.limit = limit
        self.table = _TableFile(path, encoding=mapping.encoding, delimiter=mapping.delimiter)
        self.size = self.table.size
        self.unused_columns: tuple[str, ...] = ()
        self._index: dict[str, int] = {}

    def __enter__(self) -> CsvSource:
        self.table.__enter__()
        try:
            header = self.table.read_header()
            wanted = self.mapping.columns()
            required = set(wanted) - self.mapping.optional
            self._index = self.table.positions(wanted, required)
            used = set(self._index.values())
            self.unused_columns = tuple(c for i, c in enumerate(header) if i not in used)
        except BaseException:
            self.table.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.table.__exit__(exc_type, exc, tb)

    def position(self) -> int:
        return self.table.position()

    def column_of(self, field: str) -> str | None:
        position = self._index.get(field)
        return None if position is None else self.table.header[position]

    def delivery(self, order_key: str) -> tuple[date | None, datetime | None]:
        return None, None  # transaction files say nothing of deliveries

    def rows(self) -> Iterator[Row]:
        """Parse the data rows one at a time, raising :class:`MalformedFile` at the first
        bad one."""
        m = self.mapping
        values = _Values(self.table, m)
        error = self.table.error
        index = self._index
        name_of = {f: self.table.header[i] for f, i in index.items()}
        # Positions of the columns; -1 for a field the file does not have.
        i_order, i_customer, i_item, i_quantity, i_category, i_name, i_store, i_cost = (
            index.get(f, -1)
            for f in ("order", "customer", "item", "quantity", "category", "name", "store", "cost")
        )
        i_time, i_price = index["time"], index["price"]
        c_time, c_price = name_of["time"], name_of["price"]
        per_line = m.price_per == "line"
        fixed = m.fixed_item
        cancel_prefix = m.cancel_prefix
        needs_store = m.channel == "store" and m.physical_store is None
        for count, (line, row) in enumerate(self.table.data(), start=1):
            if self.limit is not None and count > self.limit:
                return
            order: str | None = None
            if i_order >= 0:
                order = row[i_order].strip()
                if not order:
                    raise error(
                        "the order id is empty; every row needs one",
                        line=line,
                        column=name_of["order"],
                    )
            customer: str | None = None
            if i_customer >= 0 and (customer := row[i_customer].strip() or None) is not None:
                values.customer(customer, line=line, column=name_of["customer"])
            if fixed is not None:
                sku = fixed.sku
            elif not (sku := row[i_item].strip()):
                raise error(
                    "the item id is empty; every row needs one", line=line, column=name_of["item"]
                )
            quantity = 1
            if i_quantity >= 0:
                quantity = values.integer(
                    row[i_quantity].strip(), line=line, column=name_of["quantity"]
                )
            at, time_key = values.time(
                row[i_time].strip(), line=line, column=c_time, fmt=m.time_format
            )
            price, rounded = values.money(
                row[i_price].strip(), line=line, column=c_price, what="price"
            )
            cost: int | None = None
            if i_cost >= 0 and (raw_cost := row[i_cost].strip()):
                cost, _ = values.money(raw_cost, line=line, column=name_of["cost"], what="cost")
            cancel = (
                cancel_prefix is not None and order is not None and order.startswith(cancel_prefix)
            )
            if sku in m.skip_items:
                yield Row(line, "skip", SKIP_NON_PRODUCT)
                continue
            if quantity == 0:
                yield Row(line, "skip", SKIP_ZERO_QUANTITY)
                continue
            if quantity < 0 and not cancel:
                yield Row(line, "skip", SKIP_ADJUSTMENT)
                continue
            if price < 0:
                yield Row(line, "skip", SKIP_NEGATIVE_PRICE)
                continue
            quantity = abs(quantity)
            if per_line:
                price, rounded_share = _unit_price(price, quantity)
                rounded = rounded or rounded_share
                if cost is not None:
                    cost, _ = _unit_price(cost, quantity)
            if price * quantity > MAX_MINOR_UNITS:
                raise error(
                    f"a line of {quantity} x {price} minor units is more than Rapport stores "
                    f"({MAX_MINOR_UNITS}); check the quantity and price columns",
                    line=line,
                    column=c_price,
                )
            if not cancel and price == 0 and customer is None:
                yield Row(line, "skip", SKIP_FREE_GUEST)
                continue
            if fixed is None:
                values.sku(sku, line=line, column=name_of["item"])
            store = None
            if i_store >= 0 and (store := row[i_store].strip() or None) is not None:
                values.store(store, line=line, column=name_of["store"])
            elif needs_store:
                raise error(
                    "the store is empty; every in-store order needs one",
                    line=line,
                    column=name_of.get("store"),
                )
            if order is None:
                # A basket: one customer's lines at one time; a guest's line is its own order.
                order = f"{customer}:{time_key}" if customer is not None else f"line-{line}"
            yield Row(
                line,
                "cancel" if cancel else "sale",
                None,
                order,
                customer,
                at,
                sku,
                quantity,
                price,
                cost,
                row[i_category].strip()[:MAX_NAME] or None if i_category >= 0 else None,
                row[i_name].strip()[:MAX_NAME] or None if i_name >= 0 else None,
                store,
                rounded,
            )


# ------------------------------------------------------------------------------------ Olist

OLIST_STATUSES = ("delivered", "shipped")


class _OlistOrder(NamedTuple):
    status: str
    customer: str
    placed_at: datetime
    promised: date | None
    delivered_at: datetime | None


class OlistSource:
    """Order lines of the Olist tables in one folder: ``order_items.csv`` joined to
    ``orders.csv`` (status and dates), ``customers.csv`` (the person, customer_unique_id)
    and, when present, ``products.csv`` with ``product_category_name_translation.csv``.

    The orders, customers and products tables are read on the first opening and held in
    memory (about 300 bytes an order); the items are streamed at every opening."""

    FILES = ("orders.csv", "order_items.csv", "customers.csv")

    def __init__(self, path: Path, mapping: TransactionMapping, *, limit: int | None) -> None:
        self.folder = path if path.is_dir() else path.parent
        self.mapping = mapping
        self.limit = limit
        missing = [name for name in self.FILES if not (self.folder / name).is_file()]
        if missing:
            raise MalformedFile(
                f"{self.folder} is not an Olist folder: {', '.join(missing)} missing"
            )
        self.items = _TableFile(
            self.folder / "order_items.csv",
            encoding="utf-8-sig",
            delimiter=",",
            label="order_items.csv",
        )
        self.size = self.items.size
        self.unused_columns: tuple[str, ...] = ()
        self.orders: dict[str, _OlistOrder] = {}
        self.categories: dict[str, str] = {}

    @property
    def customers_file(self) -> Path:
        return self.folder / "customers.csv"

    def _table(self, name: str) -> _TableFile:
        return _TableFile(self.folder / name, encoding="utf-8-sig", delimiter=",", label=name)

    def _read(self, name: str, columns: list[str]) -> Iterator[tuple[int, list[str]]]:
        """Rows of a small table as its ``columns``, in that order."""
        with self._table(name) as table:
            table.read_header()
            index = table.positions({c: c for c in columns}, columns)
            for line, row in table.data():
                yield line, [row[index[c]].strip() for c in columns]

    def __enter__(self) -> OlistSource:
        if not self.orders:
            self._load_tables()
        self.items.__enter__()
        try:
            header = self.items.read_header()
            wanted = ["order_id", "product_id", "price"]
            self._index = self.items.positions({c: c for c in wanted}, wanted)
            used = set(self._index.values())
            self.unused_columns = tuple(c for i, c in enumerate(header) if i not in used)
        except BaseException:
            self.items.__exit__(None, None, None)
            raise
        return self

    def _load_tables(self) -> None:
        people = {
            order_customer: person
            for _, (order_customer, person) in self._read(
                "customers.csv", ["customer_id", "customer_unique_id"]
            )
        }
        english: dict[str, str] = {}
        if (self.folder / "product_category_name_translation.csv").is_file():
            english = {
                name: translated
                for _, (name, translated) in self._read(
                    "product_category_name_translation.csv",
                    ["product_category_name", "product_category_name_english"],
                )
            }
        if (self.folder / "products.csv").is_file():
            for _, (product, category) in self._read(
                "products.csv", ["product_id", "product_category_name"]
            ):
                if category:
                    # A category missing from the translation table keeps its Olist name.
                    self.categories[product] = english.get(category, category)[:MAX_NAME]
        table = self._table("orders.csv")
        columns = [
            "order_id",
            "customer_id",
            "order_status",
            "order_purchase_timestamp",
            "order_delivered_customer_date",
            "order_estimated_delivery_date",
        ]
        with table:
            table.read_header()
            index = table.positions({c: c for c in columns}, columns)
            values = _Values(table, self.mapping)

            def when(row: list[str], column: str, line: int) -> datetime | None:
                value = row[index[column]].strip()
                if not value:
                    return None
                return values.time(value, line=line, column=column, fmt=None)[0]

            for line, row in table.data():
                order_id = row[index["order_id"]].strip()
                person = people.get(row[index["customer_id"]].strip())
                if person is None:
                    raise table.error(
                        "this customer_id is not in customers.csv", line=line, column="customer_id"
                    )
                placed_at = when(row, "order_purchase_timestamp", line)
                if placed_at is None:
                    raise table.error(
                        "the purchase time is empty",
                        line=line,
                        column="order_purchase_timestamp",
                    )
                promised = when(row, "order_estimated_delivery_date", line)
                self.orders[order_id] = _OlistOrder(
                    status=row[index["order_status"]].strip(),
                    customer=values.customer(person, line=line, column="customer_id"),
                    placed_at=placed_at,
                    promised=promised.date() if promised is not None else None,
                    delivered_at=when(row, "order_delivered_customer_date", line),
                )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.items.__exit__(exc_type, exc, tb)

    def position(self) -> int:
        return self.items.position()

    def column_of(self, field: str) -> str | None:
        return {"customer": "customer_id", "item": "product_id", "price": "price"}.get(field)

    def delivery(self, order_key: str) -> tuple[date | None, datetime | None]:
        order = self.orders[order_key]
        return order.promised, order.delivered_at

    def rows(self) -> Iterator[Row]:
        values = _Values(self.items, self.mapping)
        i_order, i_product, i_price = (self._index[c] for c in ("order_id", "product_id", "price"))
        for count, (line, row) in enumerate(self.items.data(), start=1):
            if self.limit is not None and count > self.limit:
                return
            order_id = row[i_order].strip()
            order = self.orders.get(order_id)
            if order is None:
                raise self.items.error(
                    f"order {order_id!r} is not in orders.csv", line=line, column="order_id"
                )
            sku = values.sku(row[i_product].strip(), line=line, column="product_id")
            price, rounded = values.money(
                row[i_price].strip(), line=line, column="price", what="price"
            )
            if order.status not in OLIST_STATUSES:
                yield Row(line, "skip", f"item of an order with status {order.status!r}")
                continue
            yield Row(
                line,
                "sale",
                None,
                order_id,
                order.customer,
                order.placed_at,
                sku,
                1,
                price,
                None,
                self.categories.get(sku),
                None,
                None,
                rounded,
            )


def _open_source(path: Path, mapping: TransactionMapping, limit: int | None) -> _Source:
    if mapping.layout == "olist":
        return OlistSource(path, mapping, limit=limit)
    if path.is_dir():
        raise MalformedFile(f"{path.name} is a folder; give the transactions file")
    return CsvSource(path, mapping, limit=limit)


# ------------------------------------------------------------------------------------ check


@dataclass(slots=True)
class _OrderHead:
    at: datetime  # the earliest line's time
    customer: str | None
    store: str | None
    line: int  # first line, for errors


@dataclass(slots=True)
class _ProductSeen:
    at: datetime
    line: int
    price: int  # the latest non-zero unit price (0 when never sold above zero)
    name: str | None
    category: str | None
    cost: int | None


class _Cancellation(NamedTuple):
    at: datetime
    line: int
    customer: str | None
    sku: str
    quantity: int


@dataclass
class _Scan:
    """What the check pass learnt about a file."""

    rows: int = 0
    lines: int = 0
    rounded: int = 0
    in_order: bool = True  # each order's lines together, and times never going back
    skipped: Counter[str] = field(default_factory=Counter)
    orders: dict[str, _OrderHead] = field(default_factory=dict)
    products: dict[str, _ProductSeen] = field(default_factory=dict)
    stores: set[str] = field(default_factory=set)
    cancellations: list[_Cancellation] = field(default_factory=list)
    unused_columns: tuple[str, ...] = ()


def _reporter(progress: Progress | None) -> Progress:
    return progress or (lambda _phase, _done, _total: None)


def _scan(source: _Source, report: Progress, phase: str = "check") -> _Scan:
    scan = _Scan(unused_columns=source.unused_columns)
    orders, products = scan.orders, scan.products
    size = source.size
    report(phase, 0, size)
    current: str | None = None
    last_at: datetime | None = None
    for row in source.rows():
        scan.rows += 1
        if scan.rows % PROGRESS_EVERY_ROWS == 0:
            report(phase, min(source.position(), size), size)
        if row.kind == "skip":
            scan.skipped[row.reason or "other"] += 1
            continue
        if row.kind == "cancel":
            scan.cancellations.append(
                _Cancellation(row.at, row.line, row.customer, row.sku, row.quantity)
            )
            continue
        scan.lines += 1
        scan.rounded += row.rounded
        key = row.order_key
        head = orders.get(key)
        if head is None:
            orders[key] = _OrderHead(row.at, row.customer, row.store, row.line)
        else:
            if head.customer != row.customer:
                raise MalformedFile(
                    f"order {key!r} is for customer {head.customer!r} on line {head.line} but "
                    f"for {row.customer!r} here; an order has one customer",
                    line=row.line,
                    column=source.column_of("customer"),
                )
            head.at = min(head.at, row.at)
            if key != current:
                scan.in_order = False
        if last_at is not None and row.at < last_at:
            scan.in_order = False
        current, last_at = key, row.at
        if row.store is not None:
            scan.stores.add(row.store)
        seen = products.get(row.sku)
        if seen is None:
            products[row.sku] = _ProductSeen(
                row.at, row.line, row.unit_price, row.name, row.category, row.cost
            )
        elif (row.at, row.line) >= (seen.at, seen.line):
            # The latest row describes the product; an empty name or a zero (free) price
            # does not replace a known one.
            seen.at, seen.line = row.at, row.line
            seen.price = row.unit_price or seen.price
            seen.name = row.name or seen.name
            seen.category = row.category or seen.category
            seen.cost = row.cost if row.cost is not None else seen.cost
    report(phase, size, size)
    return scan


# ------------------------------------------------------------------------------------ match


@dataclass(slots=True)
class _Purchase:
    at: datetime
    line: int
    order_key: str
    remaining: int  # units of the line not yet returned


@dataclass
class _Matches:
    returns: dict[str, list[ImportedReturn]]
    matched: int
    unmatched: Counter[str]
    capped_units: int


def _match_returns(
    source: _Source, scan: _Scan, mapping: TransactionMapping, report: Progress
) -> _Matches:
    """Attach each cancellation to the same customer's most recent earlier order with that
    item, within the return window, whose line still has the units (or, failing that, some
    units) not yet returned. Cancellations are matched in time order."""
    unmatched: Counter[str] = Counter()
    guests = sum(1 for c in scan.cancellations if c.customer is None)
    if guests:
        unmatched[UNMATCHED_GUEST] = guests
    wanted = {(c.customer, c.sku) for c in scan.cancellations if c.customer is not None}
    returns: dict[str, list[ImportedReturn]] = defaultdict(list)
    if not wanted:
        return _Matches(dict(returns), 0, unmatched, 0)
    purchases: dict[tuple[str | None, str], list[_Purchase]] = defaultdict(list)
    # import_orders books an order's returns of an item on its first line with that item.
    first_lines: set[tuple[str, str]] = set()
    size = source.size
    report("match", 0, size)
    for count, row in enumerate(source.rows(), start=1):
        if count % PROGRESS_EVERY_ROWS == 0:
            report("match", min(source.position(), size), size)
        if row.kind != "sale" or (row.customer, row.sku) not in wanted:
            continue
        if (row.order_key, row.sku) in first_lines:
            continue
        first_lines.add((row.order_key, row.sku))
        placed_at = scan.orders[row.order_key].at
        purchases[(row.customer, row.sku)].append(
            _Purchase(placed_at, row.line, row.order_key, row.quantity)
        )
    report("match", size, size)
    window = timedelta(days=mapping.return_window_days)
    no_purchase = UNMATCHED_NO_PURCHASE.format(days=mapping.return_window_days)
    matched = capped = 0
    for cancel in sorted(c for c in scan.cancellations if c.customer is not None):
        candidates = [
            p
            for p in purchases.get((cancel.customer, cancel.sku), ())
            if p.remaining > 0 and cancel.at - window <= p.at <= cancel.at
        ]
        if not candidates:
            unmatched[no_purchase] += 1
            continue
        # The most recent purchase that still holds every unit cancelled, else the most
        # recent one with units left (the return is then capped at what it holds).
        whole = [p for p in candidates if p.remaining >= cancel.quantity]
        purchase = max(whole or candidates, key=lambda p: (p.at, p.line))
        quantity = min(cancel.quantity, purchase.remaining)
        purchase.remaining -= quantity
        capped += cancel.quantity - quantity
        matched += 1
        returns[purchase.order_key].append(
            ImportedReturn(
                sku=cancel.sku,
                quantity=quantity,
                reason=RETURN_REASON,
                returned_at=cancel.at,
                channel=mapping.channel,
            )
        )
    return _Matches(dict(returns), matched, unmatched, capped)


# ------------------------------------------------------------------------------------- load


class _Line(NamedTuple):
    """An order line on its way to import; sorts by (order time, order, file line)."""

    at: datetime
    order_key: str
    line: int
    sku: str
    quantity: int
    unit_price: int
    category: str | None


def _lines(source: _Source, scan: _Scan) -> Iterator[_Line]:
    orders = scan.orders
    for row in source.rows():
        if row.kind == "sale":
            yield _Line(
                orders[row.order_key].at,
                row.order_key,
                row.line,
                row.sku,
                row.quantity,
                row.unit_price,
                row.category,
            )


def _spill(lines: list[_Line], folder: Path, number: int) -> Path:
    path = folder / f"run-{number:04d}.pickle"
    with path.open("wb") as out:
        for start in range(0, len(lines), SPILL_BLOCK):
            pickle.dump(lines[start : start + SPILL_BLOCK], out, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _read_run(path: Path) -> Iterator[_Line]:
    with path.open("rb") as run:
        while True:
            try:
                block: list[_Line] = pickle.load(run)  # our own file, written just before
            except EOFError:
                return
            yield from block


def _sorted_lines(
    source: _Source, scan: _Scan, folder: Path, run_lines: int, report: Progress
) -> Iterator[_Line]:
    """The lines in (order time, order, line) order: sorted runs of ``run_lines`` lines
    written to ``folder``, then merged, so one run at most is in memory."""
    size = source.size
    report("sort", 0, size)
    runs: list[Path] = []
    chunk: list[_Line] = []
    for line in _lines(source, scan):
        chunk.append(line)
        if len(chunk) >= run_lines:
            chunk.sort()
            runs.append(_spill(chunk, folder, len(runs)))
            chunk = []
            report("sort", min(source.position(), size), size)
    chunk.sort()
    report("sort", size, size)
    if not runs:
        return iter(chunk)
    runs.append(_spill(chunk, folder, len(runs)))
    del chunk
    return heapq.merge(*(_read_run(path) for path in runs))


def _order_id(prefix: str, key: str) -> str:
    order_id = f"{prefix}:{key}"
    if len(order_id) <= MAX_ORDER_ID:
        return order_id
    # Too long for the column: a digest keeps it stable across runs.
    return f"{prefix}:{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _ensure_stores(db: Session, mapping: TransactionMapping, scan: _Scan) -> int:
    """Create the mapping's store and the stores the file names, when missing. Stores known
    only by their id get placeholder details (country ZZ), to be completed in the catalogue."""
    wanted: dict[str, StoreUpsert] = {}
    if mapping.home_store is not None:
        wanted[mapping.home_store.store_id] = mapping.home_store
    for store_id in sorted(scan.stores):
        wanted.setdefault(
            store_id,
            StoreUpsert(
                store_id=store_id, name=store_id, city="Unknown", address="Unknown", country="ZZ"
            ),
        )
    missing = [s for sid, s in wanted.items() if catalog.get_store(db, store_id=sid) is None]
    if missing:
        catalog.upsert_stores(db, stores=missing)
    return len(missing)


def _ensure_products(
    db: Session, mapping: TransactionMapping, scan: _Scan, report: Progress
) -> tuple[dict[str, str], int]:
    """Create the products the file sells that the catalogue lacks; return every SKU's
    category (the catalogue's for products already there) and how many were created."""
    category_of: dict[str, str] = {}
    created = 0
    skus = sorted(scan.products)
    fixed = mapping.fixed_item
    report("products", 0, len(skus))
    for start in range(0, len(skus), PRODUCT_CHUNK):
        chunk = skus[start : start + PRODUCT_CHUNK]
        existing = catalog.get_products(db, skus=chunk)
        new: list[ProductUpsert] = []
        for sku in chunk:
            if sku in existing:
                category_of[sku] = existing[sku].category_path
                continue
            seen = scan.products[sku]
            if fixed is not None and sku == fixed.sku:
                name, category = fixed.name, seen.category or fixed.category
            else:
                name, category = seen.name or f"Item {sku}", seen.category or UNCATEGORISED
            category_of[sku] = category
            new.append(
                ProductUpsert(
                    sku=sku,
                    name=name,
                    category_path=category,
                    price_minor=seen.price,
                    # Unknown cost is stored as 0 (the column has no "unknown"); set real
                    # costs through the catalogue.
                    cost_minor=min(seen.cost or 0, MAX_MINOR_UNITS),
                    currency=mapping.currency or "",
                )
            )
        if new:
            created += catalog.upsert_products(db, products=new)
        report("products", start + len(chunk), len(skus))
    return category_of, created


@dataclass
class _Loaded:
    added: int = 0
    present: int = 0
    lines: int = 0
    returns: int = 0


def _load_orders(
    db: Session,
    lines: Iterator[_Line],
    *,
    source: _Source,
    mapping: TransactionMapping,
    scan: _Scan,
    category_of: Mapping[str, str],
    returns: Mapping[str, list[ImportedReturn]],
    batch_size: int,
    report: Progress,
) -> _Loaded:
    loaded = _Loaded()
    total = len(scan.orders)
    home = mapping.home_store.store_id if mapping.home_store is not None else None
    batch: list[ImportedOrder] = []
    done = 0

    def flush() -> None:
        nonlocal done
        ids = [o.order_id for o in batch]
        existing = set(db.scalars(select(Order.order_id).where(Order.order_id.in_(ids))))
        fresh = [o for o in batch if o.order_id not in existing]
        # New customers in bulk first: import_orders would create them one at a time, about
        # three times slower (it still looks each one up).
        externals = sorted({o.customer_external_id for o in fresh if o.customer_external_id})
        customers.import_customers(
            db,
            customers=[
                ImportedCustomer(
                    external_id=external_id,
                    email=None,
                    first_name=None,
                    last_name=None,
                    locale=mapping.locale,
                    home_city=None,
                    home_latitude=None,
                    home_longitude=None,
                    consents={},
                )
                for external_id in externals
            ],
        )
        loaded.added += import_orders(db, orders=fresh, source=mapping.source)
        loaded.present += len(batch) - len(fresh)
        loaded.lines += sum(len(o.lines) for o in fresh)
        loaded.returns += sum(len(o.returns) for o in fresh)
        done += len(batch)
        batch.clear()
        report("import", done, total)

    report("import", 0, total)
    for key, group in itertools.groupby(lines, key=lambda line: line.order_key):
        head = scan.orders[key]
        promised, delivered_at = source.delivery(key)
        batch.append(
            ImportedOrder(
                order_id=_order_id(mapping.order_prefix, key),
                customer_external_id=(
                    mapping.customer_prefix + head.customer if head.customer else None
                ),
                channel=mapping.channel,
                fulfilment=mapping.fulfilment,
                store_id=head.store or home,
                placed_at=head.at,
                currency=mapping.currency or "",
                lines=[
                    ImportedLine(
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price_minor=line.unit_price,
                        category=line.category or category_of[line.sku],
                    )
                    for line in group
                ],
                promised_delivery=promised,
                delivered_at=delivered_at,
                returns=returns.get(key, []),
            )
        )
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    report("import", total, total)
    return loaded


def _import_olist_customers(db: Session, path: Path, report: Progress) -> None:
    """The people of ``customers.csv``, with their city and state, through the customers
    importer: importing orders first would create bare customers that a later customers
    import would leave bare. It checks the whole file before writing, and this is the
    import's first write, so a malformed file still changes nothing."""
    try:
        customer_files.import_customers_file(
            db,
            path,
            customer_files.PRESETS["olist"],
            lambda phase, done, total: (
                report("customers", done, total) if phase == "import" else None
            ),
        )
    except FileProblem as error:
        raise MalformedFile(
            error.reason, line=error.line, column=error.column, file=path.name
        ) from error


def import_transactions_file(
    db: Session,
    path: Path,
    mapping: TransactionMapping,
    progress: Progress | None = None,
    *,
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    run_lines: int = RUN_LINES,
) -> ImportSummary:
    """Check the whole file, then create its missing stores, products and customers and
    import its orders in batches. A malformed file raises :class:`MalformedFile` before
    anything is written; orders already present are skipped, so a second run adds nothing.
    ``limit`` reads only the first data rows (of ``order_items.csv`` for Olist)."""
    mapping.validate()
    report = _reporter(progress)
    source = _open_source(path, mapping, limit)  # opened once per pass
    with source:
        scan = _scan(source, report)
    matches = _Matches({}, 0, Counter(), 0)
    if scan.cancellations:
        with source:
            matches = _match_returns(source, scan, mapping, report)

    # Everything below writes; the file is known to be well formed.
    customers_before = customers.count_customers(db)
    if isinstance(source, OlistSource):
        _import_olist_customers(db, source.customers_file, report)
    stores_created = _ensure_stores(db, mapping, scan)
    category_of, products_created = _ensure_products(db, mapping, scan, report)
    with ExitStack() as stack:
        stack.enter_context(source)
        if scan.in_order:
            lines: Iterator[_Line] = _lines(source, scan)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rapport-")))
            lines = _sorted_lines(source, scan, folder, run_lines, report)
        loaded = _load_orders(
            db,
            lines,
            source=source,
            mapping=mapping,
            scan=scan,
            category_of=category_of,
            returns=matches.returns,
            batch_size=batch_size,
            report=report,
        )
    return ImportSummary(
        rows=scan.rows,
        lines=scan.lines,
        orders=len(scan.orders),
        orders_added=loaded.added,
        orders_present=loaded.present,
        lines_added=loaded.lines,
        cancellations=len(scan.cancellations),
        returns_matched=matches.matched,
        returns_added=loaded.returns,
        returns_unmatched=dict(matches.unmatched),
        return_units_capped=matches.capped_units,
        customers_created=customers.count_customers(db) - customers_before,
        products_created=products_created,
        stores_created=stores_created,
        skipped=dict(scan.skipped),
        prices_rounded=scan.rounded,
        sorted_on_disk=not scan.in_order,
        unused_columns=scan.unused_columns,
    )
