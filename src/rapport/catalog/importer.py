"""``rapport import products``: a catalogue CSV (plain, .gz or .zip) into products, checked
whole before anything is written, then upserted by SKU in batches (re-running changes
nothing but what the file changed)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from sqlalchemy.orm import Session

from rapport.catalog.schemas import UNCATEGORISED, ProductUpsert
from rapport.catalog.upserts import upsert_products
from rapport.platform import amounts
from rapport.platform.errors import MalformedFile, pinpointed
from rapport.platform.files import open_decompressed
from rapport.platform.formatting import major_to_minor, minor_to_major, minor_unit_digits
from rapport.platform.schemas import MAX_MINOR_UNITS

REQUIRED = ("sku", "name", "price", "currency")
KNOWN = (*REQUIRED, "category_path", "brand", "cost", "country_of_origin", "season")
BATCH = 1_000
CURRENCY = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class ProductImportSummary:
    rows: int
    written: int


DELIMITERS = (",", ";", "\t", "|")


@contextmanager
def _open(path: Path) -> Iterator[IO[str]]:
    with ExitStack() as stack:
        _raw, stream = open_decompressed(stack, path, fail=MalformedFile)
        # Undecodable bytes arrive as lone surrogates, so the error can name line and column.
        yield stack.enter_context(
            io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
        )


def _delimiter(header: str) -> str:
    """The separator the header line uses: the first of ``DELIMITERS`` that splits it into
    every required column, else the one that splits it into the most columns (``,`` if none
    splits it at all): exports from spreadsheets set to a European locale use ``;``."""
    best, most = ",", 1
    for delimiter in DELIMITERS:
        columns = [name.strip() for name in next(csv.reader([header], delimiter=delimiter), [])]
        if all(column in columns for column in REQUIRED):
            return delimiter
        if len(columns) > most:
            best, most = delimiter, len(columns)
    return best


def _minor(value: str, *, line: int, column: str, currency: str) -> int:
    """An amount in major units (``12.50``, or ``12,50`` with a decimal comma) as minor
    units, with as many decimals as the currency has (ISO 4217: 0 for JPY, 3 for KWD)."""
    text = value.strip()
    known = CURRENCY.fullmatch(currency) is not None
    unit = f"in {currency}" if known else "in the row's currency"
    digits = minor_unit_digits(currency)  # 2 for a code that is no currency
    such_as = f"such as {amounts.example(digits)}"
    try:
        amount = amounts.read(text, digits)
    except ValueError as error:
        reason = "" if isinstance(error, amounts.NotAnAmount) else f": {error}"
        raise MalformedFile(
            f"{text!r} is not an amount {unit} {such_as}{reason}", line=line, column=column
        ) from None
    if amount < 0:
        raise MalformedFile(f"{text!r} must not be negative", line=line, column=column)
    try:
        minor = major_to_minor(amount, currency)
    except ValueError:
        decimals = f"at most {digits} decimals" if digits else f"{currency} has no decimals"
        raise MalformedFile(
            f"{text!r} is not an amount {unit} {such_as} ({decimals})",
            line=line,
            column=column,
        ) from None
    if minor > MAX_MINOR_UNITS:
        largest = f"{minor_to_major(MAX_MINOR_UNITS, currency)}"
        if known:
            largest = f"{largest} {currency}"
        raise MalformedFile(
            f"{text!r} is more than Rapport stores; the largest {column} is {largest}",
            line=line,
            column=column,
        )
    return minor


def read_products(path: Path) -> Iterator[ProductUpsert]:
    """Products from the file, in order; raises :class:`MalformedFile` naming line and column.
    The separator is read off the header line (``,``, ``;``, tab or ``|``), and a SKU listed
    twice is refused naming both lines."""
    with _open(path) as handle:
        first = handle.readline()
        reader = csv.DictReader(itertools.chain([first], handle), delimiter=_delimiter(first))
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED if column not in header]
        if missing:
            found = ", ".join(header) or "no header"
            raise MalformedFile(
                f"missing column(s) {', '.join(missing)}; the file has {found} (separated by "
                "',', ';', tab or '|')",
                line=1,
            )
        extra = [column for column in header if column not in KNOWN]
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            values = list(row.values())
            if None not in row and values[0].strip() == "" and all(v is None for v in values[1:]):
                continue  # a line of spaces only, as blank as an empty one
            if None in row or any(value is None for value in row.values()):
                raise MalformedFile(f"expected {len(header)} fields", line=line)
            for column, value in row.items():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise MalformedFile(
                        "this value is not UTF-8 text; export the file as UTF-8",
                        line=line,
                        column=column,
                    ) from None
            sku = row["sku"].strip()
            if sku in seen:
                raise MalformedFile(
                    f"SKU {sku!r} is also on line {seen[sku]}; list each product once",
                    line=line,
                    column="sku",
                )
            seen[sku] = line
            currency = row["currency"].strip()
            if not CURRENCY.fullmatch(currency):
                raise MalformedFile(
                    f"{currency!r} is not a currency code; write the currency as three capital "
                    "letters, such as EUR",
                    line=line,
                    column="currency",
                )
            attributes = {column: row[column] for column in extra if row[column] != ""}
            fields = {
                "sku": sku,
                "name": row["name"].strip(),
                "category_path": row.get("category_path", "").strip() or UNCATEGORISED,
                "brand": row.get("brand", "").strip() or None,
                "price_minor": _minor(row["price"], line=line, column="price", currency=currency),
                "cost_minor": _minor(
                    row.get("cost") or "0", line=line, column="cost", currency=currency
                ),
                "currency": currency,
                "country_of_origin": row.get("country_of_origin", "").strip() or None,
                "season": row.get("season", "").strip() or None,
                "attributes": attributes,
            }
            try:
                yield ProductUpsert(**fields)
            except ValidationError as error:
                loc, message = pinpointed(error.errors()[0])
                column = str(loc[0]) if loc else None
                column = {"price_minor": "price", "cost_minor": "cost"}.get(column or "", column)
                raise MalformedFile(message, line=line, column=column) from None


def import_products_file(
    db: Session, path: Path, *, progress: Callable[[int, int], None] | None = None
) -> ProductImportSummary:
    """Check the whole file, then upsert its products by SKU in batches; ``progress`` hears
    ``(products written, rows in the file)`` after each batch, and ``(0, rows)`` once the
    check is done."""
    rows = sum(1 for _ in read_products(path))  # a bad row stops us before any write
    if progress:
        progress(0, rows)
    written = 0
    batch: list[ProductUpsert] = []
    for product in read_products(path):
        batch.append(product)
        if len(batch) == BATCH:
            written += upsert_products(db, products=batch)
            if progress:
                progress(written, rows)
            batch = []
    if batch:
        written += upsert_products(db, products=batch)
        if progress:
            progress(written, rows)
    return ProductImportSummary(rows=rows, written=written)
