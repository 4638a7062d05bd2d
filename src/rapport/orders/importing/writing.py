"""Writing an import: :func:`import_transactions_file` runs the passes over a file and loads it.

The file is streamed, never held: memory grows with the number of orders, products and
cancellations in it, not with its lines. Up to three passes:

1. **check**: parse every row, so that a malformed file raises :class:`MalformedFile` before
   anything is written, and learn each order's time, customer and store and each product's
   latest price, name and category;
2. **match** (files with cancellations only): find the purchase each cancellation returns;
3. **load**: create missing stores and products, read the lines again, group them by order
   and import the orders in batches through :func:`rapport.orders.history.import_orders`.
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
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.customers.service import ImportedCustomer
from rapport.orders.history import ImportedLine, ImportedOrder, ImportedReturn, import_orders
from rapport.orders.importing.checking import Matches, Scan, match_returns, reporter, scan_file
from rapport.orders.importing.mapping import (
    BATCH_SIZE,
    MAX_ORDER_ID,
    PRODUCT_CHUNK,
    RUN_LINES,
    SPILL_BLOCK,
    MalformedFile,
    Progress,
    TransactionMapping,
)
from rapport.orders.importing.olist import OlistSource
from rapport.orders.importing.reading import CsvSource, TransactionSource
from rapport.orders.models import Order
from rapport.platform.errors import MalformedFile as FileProblem
from rapport.platform.files import open_decompressed
from rapport.platform.schemas import MAX_MINOR_UNITS


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
    # Orders added without their customer: the person was erased in Rapport, so the sale is
    # kept (sales figures stay true) and nothing of theirs is created or linked again.
    orders_of_erased: int = 0


def _open_source(path: Path, mapping: TransactionMapping, limit: int | None) -> TransactionSource:
    if mapping.layout == "olist":
        return OlistSource(path, mapping, limit=limit)
    if path.is_dir():
        raise MalformedFile(f"{path.name} is a folder; give the transactions file")
    return CsvSource(path, mapping, limit=limit)


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


def _lines(source: TransactionSource, scan: Scan) -> Iterator[_Line]:
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
    source: TransactionSource, scan: Scan, folder: Path, run_lines: int, report: Progress
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


def _ensure_stores(db: Session, mapping: TransactionMapping, scan: Scan) -> int:
    """Create the mapping's store and the stores the file names, when missing. Stores known
    only by their id get placeholder details (country ZZ), to be completed in the catalogue."""
    wanted: dict[str, catalog.StoreUpsert] = {}
    if mapping.home_store is not None:
        wanted[mapping.home_store.store_id] = mapping.home_store
    for store_id in sorted(scan.stores):
        wanted.setdefault(
            store_id,
            catalog.StoreUpsert(
                store_id=store_id, name=store_id, city="Unknown", address="Unknown", country="ZZ"
            ),
        )
    missing = [s for sid, s in wanted.items() if catalog.get_store(db, store_id=sid) is None]
    if missing:
        catalog.upsert_stores(db, stores=missing)
    return len(missing)


def _ensure_products(
    db: Session, mapping: TransactionMapping, scan: Scan, report: Progress
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
        new: list[catalog.ProductUpsert] = []
        for sku in chunk:
            if sku in existing:
                category_of[sku] = existing[sku].category_path
                continue
            seen = scan.products[sku]
            if fixed is not None and sku == fixed.sku:
                name, category = fixed.name, seen.category or fixed.category
            else:
                name, category = seen.name or f"Item {sku}", seen.category or catalog.UNCATEGORISED
            category_of[sku] = category
            new.append(
                catalog.ProductUpsert(
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
    of_erased: int = 0


def _load_orders(
    db: Session,
    lines: Iterator[_Line],
    *,
    source: TransactionSource,
    mapping: TransactionMapping,
    scan: Scan,
    category_of: Mapping[str, str],
    returns: Mapping[str, list[ImportedReturn]],
    batch_size: int,
    report: Progress,
    consent_source: str,
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
        erased = customers.erased_values(db, kind="external_id", values=externals)
        loaded.of_erased += sum(1 for o in fresh if o.customer_external_id in erased)
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
                    consents=_consents(
                        scan.consents_of(external_id.removeprefix(mapping.customer_prefix)),
                        granted=mapping.granted_consents,
                    ),
                )
                for external_id in externals
            ],
            consent_source=consent_source,
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


def _consents(read: Mapping[str, bool], *, granted: Iterable[str]) -> dict[str, bool]:
    """A new customer's consents: the choices the file records, then the purposes the shop
    says every customer granted (a recorded choice wins)."""
    consents = dict(read)
    for purpose in granted:
        consents.setdefault(purpose, True)
    return consents


def _import_olist_customers(
    db: Session, path: Path, report: Progress, *, granted: Iterable[str]
) -> None:
    """The people of ``customers.csv``, with their city and state, through the customers
    importer: importing orders first would create bare customers that a later customers
    import would leave bare. It checks the whole file before writing, and this is the
    import's first write, so a malformed file still changes nothing."""
    try:
        customers.import_customers_file(
            db,
            path,
            customers.CUSTOMER_FILE_PRESETS["olist"].with_overrides(granted_consents=granted),
            lambda phase, done, total: (
                report("customers", done, total) if phase == "import" else None
            ),
        )
    except FileProblem as error:
        raise MalformedFile(
            error.reason, line=error.line, column=error.column, file=path.name
        ) from error


def _only_people(path: Path, people: set[str], folder: Path) -> Path:
    """A copy of Olist's ``customers.csv`` in ``folder`` with only the rows of ``people``
    (their ``customer_unique_id``): the customers of a trial's orders (``--limit``), not every
    person in the file. Every other record becomes as many blank lines as it spanned, which
    the customers importer passes over, so an error still names the original file's line.
    A file that cannot be read as CSV is left whole: the customers import says what is wrong."""
    column = customers.CUSTOMER_FILE_PRESETS["olist"].external_id
    copy = folder / path.name
    try:
        with ExitStack() as stack:
            _raw, stream = open_decompressed(stack, path, fail=FileProblem)
            text = stack.enter_context(
                io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
            )
            out = stack.enter_context(
                copy.open("w", encoding="utf-8", errors="surrogateescape", newline="")
            )
            reader = csv.reader(text)
            writer = csv.writer(out, lineterminator="\n")
            header = next(reader, [])
            if column not in [name.strip() for name in header]:
                return path
            position = [name.strip() for name in header].index(column)
            writer.writerow(header)
            seen = reader.line_num
            for row in reader:
                spanned, seen = reader.line_num - seen, reader.line_num
                if len(row) > position and row[position].strip() in people:
                    writer.writerow(row)
                else:
                    out.write("\n" * spanned)
    except (csv.Error, FileProblem, OSError, EOFError, zlib.error, zipfile.BadZipFile):
        return path
    return copy


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
    ``limit`` reads only the first data rows (of ``order_items.csv`` for Olist, whose
    customers are then only the people of the orders read)."""
    mapping.validate()
    report = reporter(progress)
    source = _open_source(path, mapping, limit)  # opened once per pass
    with source:
        scan = scan_file(source, report)
    matches = Matches({}, 0, Counter(), 0)
    if scan.cancellations:
        with source:
            matches = match_returns(source, scan, mapping, report)

    # Everything below writes; the file is known to be well formed.
    customers_before = customers.count_customers(db)
    if isinstance(source, OlistSource):
        with tempfile.TemporaryDirectory(prefix="rapport-") as scratch:
            people = source.customers_file
            if limit is not None:  # a trial: the people of the orders it reads
                named = {head.customer for head in scan.orders.values() if head.customer}
                people = _only_people(people, named, Path(scratch))
            _import_olist_customers(db, people, report, granted=mapping.granted_consents)
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
            consent_source=customers.import_consent_source(path),
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
        orders_of_erased=loaded.of_erased,
    )
