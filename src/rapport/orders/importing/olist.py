"""Reading the Olist dataset: orders, items, customers and payments files joined into rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from rapport.orders.importing.mapping import MAX_NAME, MalformedFile, TransactionMapping
from rapport.orders.importing.reading import CellReader, Row, TableFile

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
        self.items = TableFile(
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

    def _table(self, name: str) -> TableFile:
        return TableFile(self.folder / name, encoding="utf-8-sig", delimiter=",", label=name)

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
            values = CellReader(table, self.mapping)

            def when(row: list[str], column: str, line: int, *, past: bool) -> datetime | None:
                value = row[index[column]].strip()
                if not value:
                    return None
                read = values.past_time if past else values.time
                return read(value, line=line, column=column, fmt=None)[0]

            for line, row in table.data():
                order_id = row[index["order_id"]].strip()
                person = people.get(row[index["customer_id"]].strip())
                if person is None:
                    raise table.error(
                        "this customer_id is not in customers.csv", line=line, column="customer_id"
                    )
                placed_at = when(row, "order_purchase_timestamp", line, past=True)
                if placed_at is None:
                    raise table.error(
                        "the purchase time is empty",
                        line=line,
                        column="order_purchase_timestamp",
                    )
                # A promised delivery may lie ahead; a purchase or a delivery may not.
                promised = when(row, "order_estimated_delivery_date", line, past=False)
                self.orders[order_id] = _OlistOrder(
                    status=row[index["order_status"]].strip(),
                    customer=values.customer(person, line=line, column="customer_id"),
                    placed_at=placed_at,
                    promised=promised.date() if promised is not None else None,
                    delivered_at=when(row, "order_delivered_customer_date", line, past=True),
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
        values = CellReader(self.items, self.mapping)
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
