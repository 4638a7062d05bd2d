"""How a transactions file maps to orders: its columns, formats, currency and channel
(:class:`TransactionMapping`), with the limits and the error a malformed file raises."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.platform import formatting
from rapport.platform.errors import InvalidInput
from rapport.platform.errors import MalformedFile as FileProblem

BATCH_SIZE = 1_000  # orders per import_orders call (one transaction each)
# Lines sorted in memory at a time when a file's orders are not contiguous; about 40 MB.
RUN_LINES = 100_000
SPILL_BLOCK = 2_048  # lines per pickle record in a run file
PROGRESS_EVERY_ROWS = 5_000
PRODUCT_CHUNK = 1_000
RETURN_WINDOW_DAYS = 90
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
CONSENT_PREFIX = "consent."  # consent.<purpose>: the column holding the customer's choice
WHITESPACE = "whitespace"
WEB_STORE_ID = "web"  # the online warehouse, as the demo retailer names it

SKU = re.compile(catalog.SKU_PATTERN)
SAMPLE_TIME = datetime(2001, 2, 3, 14, 5, 6)  # noqa: DTZ001 - only formatted, as an example


def minor_digits(currency: str) -> int:
    """Decimals of the currency's ISO 4217 minor unit (2 for EUR, 0 for JPY, 3 for KWD and
    IQD), as everywhere in Rapport (:func:`rapport.platform.formatting.minor_unit_digits`)."""
    return formatting.minor_unit_digits(currency)


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
    home_store: catalog.StoreUpsert | None = None  # orders' store when no store column says one
    layout: Literal["csv", "olist"] = "csv"
    return_window_days: int = RETURN_WINDOW_DAYS
    # purpose -> the column holding each customer's choice (their latest line's wins)
    consents: Mapping[str, str] = field(default_factory=dict)
    # Purposes granted to every customer the import creates (the shop collected them); a
    # choice read from a consent column wins.
    granted_consents: frozenset[str] = frozenset()

    @property
    def physical_store(self) -> catalog.StoreUpsert | None:
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
        """Every mapped column field and its column (``consent.<purpose>`` for consents)."""
        mapped = {f: c for f in COLUMN_FIELDS if (c := getattr(self, f)) is not None}
        mapped.update({CONSENT_PREFIX + p: c for p, c in self.consents.items()})
        return mapped

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
        consents = dict(self.consents)
        for name, column in (columns or {}).items():
            if column is None:
                continue
            if self.layout == "olist":
                raise InvalidInput(
                    "The olist preset reads Olist's own files; its columns cannot be changed",
                    field=name,
                )
            if name.startswith(CONSENT_PREFIX):
                purpose = name.removeprefix(CONSENT_PREFIX)
                _check_purposes([purpose], field=name)
                if column.strip():
                    consents[purpose] = column.strip()
                else:
                    consents.pop(purpose, None)
                continue
            if name not in COLUMN_FIELDS:
                raise InvalidInput(
                    f"Unknown field {name!r}; use one of {', '.join(COLUMN_FIELDS)}", field=name
                )
            changes[name] = column.strip() or None
            optional.discard(name)
        if "granted_consents" in changes:
            changes["granted_consents"] = self.granted_consents | _check_purposes(
                changes["granted_consents"], field="grant_consent"
            )
        mapping = replace(self, **changes, optional=frozenset(optional), consents=consents)
        if mapping.channel == "store" and mapping.physical_store is None:
            # In-store orders name their store: the column becomes required.
            optional.discard("store")
        return replace(mapping, optional=frozenset(optional))

    def validate(self) -> None:
        """Raise :class:`InvalidInput` when the mapping cannot read a file."""
        _check_purposes(self.consents, field="consent")
        _check_purposes(self.granted_consents, field="grant_consent")
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


def _check_purposes(purposes: Iterable[str], *, field: str) -> frozenset[str]:
    if isinstance(purposes, str):  # one purpose, not its letters
        purposes = [purposes]
    wanted = frozenset(p.strip() for p in purposes)
    unknown = sorted(wanted - set(customers.CONSENT_PURPOSES))
    if unknown:
        raise InvalidInput(
            f"Unknown consent purpose {unknown[0]!r}; use one of "
            f"{', '.join(customers.CONSENT_PURPOSES)}",
            field=field,
        )
    return wanted
