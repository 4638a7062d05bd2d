"""``rapport import products``: a catalogue CSV (plain, .gz or .zip) into products, checked
whole before anything is written, then upserted by SKU in batches (re-running changes
nothing but what the file changed)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from sqlalchemy.orm import Session

from rapport.catalog.schemas import UNCATEGORISED, ProductUpsert
from rapport.catalog.upserts import upsert_products
from rapport.platform.errors import MalformedFile, pinpointed
from rapport.platform.files import open_decompressed

REQUIRED = ("sku", "name", "price", "currency")
KNOWN = (*REQUIRED, "category_path", "brand", "cost", "country_of_origin", "season")
BATCH = 1_000


@dataclass(frozen=True)
class ProductImportSummary:
    rows: int
    written: int


@contextmanager
def _open(path: Path) -> Iterator[IO[str]]:
    with ExitStack() as stack:
        _raw, stream = open_decompressed(stack, path, fail=MalformedFile)
        yield stack.enter_context(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))


def _minor(value: str, *, line: int, column: str) -> int:
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise MalformedFile(
            f"{value!r} is not an amount such as 12.50", line=line, column=column
        ) from None
    minor = amount * 100
    if minor != minor.to_integral_value() or minor < 0:
        raise MalformedFile(
            f"{value!r} is not a non-negative amount in cents", line=line, column=column
        )
    return int(minor)


def read_products(path: Path) -> Iterator[ProductUpsert]:
    """Products from the file, in order; raises :class:`MalformedFile` naming line and column."""
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED if column not in header]
        if missing:
            found = ", ".join(header) or "no header"
            raise MalformedFile(
                f"missing column(s) {', '.join(missing)}; the file has {found}", line=1
            )
        extra = [column for column in header if column not in KNOWN]
        for row in reader:
            line = reader.line_num
            if None in row or any(value is None for value in row.values()):
                raise MalformedFile(f"expected {len(header)} fields", line=line)
            attributes = {column: row[column] for column in extra if row[column] != ""}
            fields = {
                "sku": row["sku"].strip(),
                "name": row["name"].strip(),
                "category_path": row.get("category_path", "").strip() or UNCATEGORISED,
                "brand": row.get("brand", "").strip() or None,
                "price_minor": _minor(row["price"], line=line, column="price"),
                "cost_minor": _minor(row.get("cost") or "0", line=line, column="cost"),
                "currency": row["currency"].strip(),
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
