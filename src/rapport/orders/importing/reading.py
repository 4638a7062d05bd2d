"""Reading a delimited transactions file row by row into checked values (CSV, gzip, zip)."""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple, Protocol

from rapport.customers import service as customers
from rapport.orders.importing.mapping import (
    CONSENT_PREFIX,
    MAX_EXTERNAL_ID,
    MAX_NAME,
    MAX_STORE_ID,
    SAMPLE_TIME,
    SKU,
    WHITESPACE,
    MalformedFile,
    TransactionMapping,
    minor_digits,
)
from rapport.platform import amounts, clock
from rapport.platform.files import open_decompressed, text_encoding
from rapport.platform.schemas import MAX_MINOR_UNITS

# ------------------------------------------------------------------------------- reading


class TableFile:
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

    def __enter__(self) -> TableFile:
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
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # an empty line, or one of spaces only
            # Undecodable bytes arrive as lone surrogates (errors="surrogateescape"), so the
            # error can name the line and column rather than a chunk of the file.
            if not "".join(row).isascii():
                for position, value in enumerate(row):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError as error:
                        column = self.header[position] if position < len(self.header) else None
                        raise self.error(
                            f"this value is not {text_encoding(self.encoding)} text; export the "
                            "file as UTF-8 or pass its encoding (--encoding cp1252)",
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
    if not amounts.AMOUNT.fullmatch(value):
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
    consents: tuple[tuple[str, bool], ...] = ()  # the customer's choices on this line


SKIP_NON_PRODUCT = "not a product (postage, fees, discounts, manual corrections)"
SKIP_ZERO_QUANTITY = "zero quantity"
SKIP_ADJUSTMENT = "negative quantity outside a cancellation (a stock adjustment)"
SKIP_NEGATIVE_PRICE = "negative price (an adjustment, not a sale)"
SKIP_FREE_GUEST = "zero price and no customer (a stock movement, not a sale)"
UNMATCHED_GUEST = "no customer id"
UNMATCHED_NO_PURCHASE = "no purchase of the item by the customer in the {days} days before"


class TransactionSource(Protocol):
    size: int
    unused_columns: tuple[str, ...]

    def position(self) -> int: ...

    def rows(self) -> Iterator[Row]: ...

    def delivery(self, order_key: str) -> tuple[date | None, datetime | None]: ...

    def column_of(self, field: str) -> str | None: ...

    def __enter__(self) -> TransactionSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class CellReader:
    """Reads the cells of one file into typed values, raising :class:`MalformedFile` that
    names the line and column."""

    def __init__(self, table: TableFile, mapping: TransactionMapping) -> None:
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
                else f"a time in the format {fmt!r}, like {SAMPLE_TIME.strftime(fmt)!r}"
            )
            raise self.table.error(
                f"{value!r} is not {expected}", line=line, column=column
            ) from error

    def past_time(
        self, value: str, *, line: int, column: str, fmt: str | None
    ) -> tuple[datetime, str]:
        """:meth:`time` for something that has happened (an order placed, a return, a
        delivery): more than :data:`rapport.platform.clock.MAX_CLOCK_SKEW` ahead of now is
        refused, as the API refuses it."""
        at, key = self.time(value, line=line, column=column, fmt=fmt)
        if clock.is_in_future(at):
            raise self.table.error(
                f"{value!r} is in the future (more than 5 minutes after now, "
                f"{clock.now():%Y-%m-%d %H:%M} UTC); an order or return in a file must have "
                "happened already",
                line=line,
                column=column,
            )
        return at, key

    def money(self, value: str, *, line: int, column: str, what: str) -> tuple[int, bool]:
        try:
            if self.mapping.price_unit == "minor":
                if not amounts.WHOLE.fullmatch(value):
                    raise ValueError(value)
                return int(value), False
            point = value
            if "," in value:  # a decimal comma, as European spreadsheets write amounts
                try:
                    point = amounts.decimal_point(value, self.digits)
                except ValueError as error:
                    raise self.table.error(
                        f"{value!r} is not a {what}; {error}", line=line, column=column
                    ) from None
            return _to_minor(point, self.digits)
        except ValueError as error:
            hint = (
                "a whole number of minor units (1250)"
                if self.mapping.price_unit == "minor"
                else f"a number like {amounts.example(self.digits)} or "
                f"{amounts.example(self.digits, ',')}"
                if self.digits
                else f"a whole number like {amounts.example(0)}"
            )
            raise self.table.error(
                f"{value!r} is not a {what}; use {hint}", line=line, column=column
            ) from error

    def integer(self, value: str, *, line: int, column: str) -> int:
        # Plain ASCII digits, with a minus for a return's line: int() would also take "1_000",
        # "+2" and other scripts' digits ("٣"), which no shop's export means as a quantity.
        if not amounts.WHOLE.fullmatch(value):
            raise self.table.error(
                f"{value!r} is not a quantity; use a whole number in the digits 0-9 (a minus "
                "for a return), with no separators",
                line=line,
                column=column,
            )
        number = int(value)
        if abs(number) > MAX_MINOR_UNITS:  # the quantity columns are 32-bit integers too
            raise self.table.error(
                f"{value} is more units than a line can hold", line=line, column=column
            )
        return number

    def sku(self, value: str, *, line: int, column: str | None) -> str:
        if not SKU.fullmatch(value):
            raise self.table.error(
                f"{value!r} cannot be a SKU: use at most 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                line=line,
                column=column,
            )
        return value

    def store(self, value: str, *, line: int, column: str) -> str:
        if not SKU.fullmatch(value) or len(value) > MAX_STORE_ID:
            raise self.table.error(
                f"{value!r} cannot be a store id: use at most {MAX_STORE_ID} letters, digits, "
                "'.', '_' or '-'",
                line=line,
                column=column,
            )
        return value

    def consents(
        self, row: list[str], positions: list[tuple[str, int, str]], *, line: int
    ) -> tuple[tuple[str, bool], ...]:
        """The consent choices a row records (purpose, granted); an empty cell is none."""
        choices = []
        for purpose, position, column in positions:
            try:
                granted = customers.consent_choice(row[position])
            except ValueError:
                raise self.table.error(
                    f"{row[position].strip()!r} is not a consent choice for {purpose}; use one "
                    f"of {customers.consent_choices_hint()}, or leave it empty when no choice "
                    "was made",
                    line=line,
                    column=column,
                ) from None
            if granted is not None:
                choices.append((purpose, granted))
        return tuple(choices)

    def customer(self, value: str, *, line: int, column: str) -> str:
        limit = MAX_EXTERNAL_ID - len(self.mapping.customer_prefix)
        if len(value) > limit:
            raise self.table.error(
                f"a customer id of {len(value)} characters is too long (at most {limit})",
                line=line,
                column=column,
            )
        problem = customers.customer_number_refusal(self.mapping.customer_prefix + value)
        if problem is not None:
            raise self.table.error(problem, line=line, column=column)
        return value


def _unit_price(total: int, quantity: int) -> tuple[int, bool]:
    """A line total spread over its units, rounded half up to the minor unit."""
    return (2 * total + quantity) // (2 * quantity), total % quantity != 0


class CsvSource:
    """Order lines of one delimited file, read through a :class:`TransactionMapping`."""

    def __init__(self, path: Path, mapping: TransactionMapping, *, limit: int | None) -> None:
        self.mapping = mapping
        self.limit = limit
        self.table = TableFile(path, encoding=mapping.encoding, delimiter=mapping.delimiter)
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
        values = CellReader(self.table, m)
        error = self.table.error
        index = self._index
        name_of = {f: self.table.header[i] for f, i in index.items()}
        # Positions of the columns; -1 for a field the file does not have.
        i_order, i_customer, i_item, i_quantity, i_category, i_name, i_store, i_cost = (
            index.get(f, -1)
            for f in ("order", "customer", "item", "quantity", "category", "name", "store", "cost")
        )
        i_time, i_price = index["time"], index["price"]
        consent_at = [
            (field.removeprefix(CONSENT_PREFIX), position, name_of[field])
            for field, position in index.items()
            if field.startswith(CONSENT_PREFIX)
        ]
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
            at, time_key = values.past_time(
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
                values.consents(row, consent_at, line=line)
                if consent_at and customer is not None
                else (),
            )
