"""The first passes over a file: check every row before anything is written (learning each
order, product and store), and match each cancellation to the purchase it returns."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from rapport.orders.history import ImportedReturn
from rapport.orders.importing.mapping import (
    PROGRESS_EVERY_ROWS,
    RETURN_REASON,
    MalformedFile,
    Progress,
    TransactionMapping,
)
from rapport.orders.importing.reading import (
    UNMATCHED_GUEST,
    UNMATCHED_NO_PURCHASE,
    TransactionSource,
)
from rapport.platform.schemas import MAX_MINOR_UNITS

# ------------------------------------------------------------------------------------ check


@dataclass(slots=True)
class _OrderHead:
    at: datetime  # the earliest line's time
    customer: str | None
    store: str | None
    line: int  # first line, for errors
    total: int = 0  # the lines' total in minor units


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
class Scan:
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
    # customer -> purpose -> (time, line, granted): each customer's latest choice in the file
    consents: dict[str, dict[str, tuple[datetime, int, bool]]] = field(default_factory=dict)

    def consents_of(self, customer: str) -> dict[str, bool]:
        """The customer's latest choice per purpose in the file (none: no column said)."""
        return {p: granted for p, (_, _, granted) in self.consents.get(customer, {}).items()}


def reporter(progress: Progress | None) -> Progress:
    return progress or (lambda _phase, _done, _total: None)


def scan_file(source: TransactionSource, report: Progress, phase: str = "check") -> Scan:
    scan = Scan(unused_columns=source.unused_columns)
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
        if row.consents and row.customer is not None:
            choices = scan.consents.setdefault(row.customer, {})
            for purpose, granted in row.consents:
                known = choices.get(purpose)
                if known is None or (row.at, row.line) >= known[:2]:
                    choices[purpose] = (row.at, row.line, granted)
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
            head = orders[key] = _OrderHead(row.at, row.customer, row.store, row.line)
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
        head.total += row.unit_price * row.quantity
        if head.total > MAX_MINOR_UNITS:
            raise MalformedFile(
                f"order {key!r} comes to {head.total} minor units with this line, more than "
                f"Rapport stores for an order ({MAX_MINOR_UNITS}); check the quantity and price "
                "columns, or split the order",
                line=row.line,
                column=source.column_of("price"),
            )
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
class Matches:
    returns: dict[str, list[ImportedReturn]]
    matched: int
    unmatched: Counter[str]
    capped_units: int


def match_returns(
    source: TransactionSource, scan: Scan, mapping: TransactionMapping, report: Progress
) -> Matches:
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
        return Matches(dict(returns), 0, unmatched, 0)
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
    return Matches(dict(returns), matched, unmatched, capped)
