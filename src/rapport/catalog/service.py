"""Catalogue verbs: the only functions other code calls to read or change products and stores."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from rapport.catalog.audiences import store_coordinates, stores_within
from rapport.catalog.checks import CatalogProblem, catalog_problems
from rapport.catalog.importer import ProductImportSummary, import_products_file
from rapport.catalog.models import ChannelPrice, Product, StockLevel, Store
from rapport.catalog.precedence import rule_recency
from rapport.catalog.schemas import SKU_PATTERN, UNCATEGORISED, ProductUpsert, StoreUpsert
from rapport.catalog.upserts import refuse_repeats, upsert_products, upsert_stores
from rapport.platform import clock
from rapport.platform.db import upsert_rows
from rapport.platform.errors import InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.privacy import PrivacySubject

__all__ = [
    "CATEGORY_SEPARATOR",
    "PRIVACY_TABLES",
    "SKU_PATTERN",
    "UNCATEGORISED",
    "Availability",
    "CatalogProblem",
    "CategoryWarning",
    "PriceDifference",
    "ProductFacts",
    "ProductImportSummary",
    "ProductUpsert",
    "StoreUpsert",
    "attribute_values",
    "available_at",
    "available_units",
    "catalog_problems",
    "category_condition",
    "category_warnings",
    "channel_prices",
    "collect_reserved",
    "count_price_differences",
    "count_products",
    "count_stores",
    "effective_price",
    "end_channel_price",
    "erase_customer_data",
    "export_customer_data",
    "get_product",
    "get_products",
    "get_stock",
    "get_store",
    "has_attribute_value",
    "import_products_file",
    "in_any_category",
    "in_category",
    "list_products",
    "list_stores",
    "load_stock",
    "nearest_store",
    "price_consistency_report",
    "price_on",
    "product_facts",
    "release_reserved",
    "reserve_stock",
    "return_to_stock",
    "rule_recency",
    "set_channel_price",
    "set_stock",
    "short_by",
    "stock_view",
    "take_stock",
    "unknown_categories",
    "upsert_products",
    "upsert_stores",
]


def get_product(db: Session, *, sku: str) -> Product | None:
    return db.get(Product, sku)


def list_products(
    db: Session, *, after_sku: str | None = None, limit: int = 50, category: str | None = None
) -> list[Product]:
    """Products in SKU order, ``limit`` at a time, starting after ``after_sku`` (a page's
    cursor: the last SKU it showed); a cursor that is no product's SKU is 422 naming
    ``cursor`` (products are never deleted, so every cursor a page gave still is one)."""
    query = select(Product).order_by(Product.sku).limit(limit)
    if after_sku is not None:
        if db.get(Product, after_sku) is None:
            raise InvalidInput(
                "Not a cursor of the product list: pass next_cursor as it came",
                field="cursor",
            )
        query = query.where(Product.sku > after_sku)
    if category is not None:
        query = query.where(category_condition(Product.category_path, category))
    return list(db.scalars(query))


# ------------------------------------------------------------------------------ categories
#
# One meaning of "in a category" for every rule that names one (loyalty multipliers,
# exclusions, coupons and rewards; merchandising rules): the category itself and everything
# filed under it. Paths use "/" ("Wine/Red"): "Wine" holds "Wine" and "Wine/Red", not "Wines".

CATEGORY_SEPARATOR = "/"


def _rule_path(rule_category: str) -> str:
    return rule_category.strip().rstrip(CATEGORY_SEPARATOR)


def in_category(product_category: str | None, rule_category: str) -> bool:
    """Whether a product filed under ``product_category`` is in ``rule_category`` (the
    category itself or any category under it)."""
    wanted = _rule_path(rule_category)
    if not product_category or not wanted:
        return False
    return product_category == wanted or product_category.startswith(wanted + CATEGORY_SEPARATOR)


def in_any_category(product_category: str | None, rule_categories: Iterable[str]) -> bool:
    return any(in_category(product_category, category) for category in rule_categories)


def category_condition(
    column: QueryableAttribute[str] | ColumnElement[str], rule_category: str
) -> ColumnElement[bool]:
    """``in_category`` as SQL, the same on every database: case counts ("wine" is not
    "Wine") and every character is itself ('%' and '_' are letters). A prefix compared with
    ``substr`` rather than LIKE, which ignores ASCII case on SQLite and not on PostgreSQL."""
    wanted = _rule_path(rule_category)
    if not wanted:
        return false()
    under = wanted + CATEGORY_SEPARATOR
    return (column == wanted) | (func.substr(column, 1, len(under)) == under)


def unknown_categories(db: Session, *, categories: Iterable[str]) -> list[str]:
    """The named categories no product is in (neither exactly nor through a subcategory),
    in the order named, each once."""
    unknown: list[str] = []
    for category in dict.fromkeys(categories):
        holds = category_condition(Product.category_path, category)
        found = db.scalar(select(exists().where(holds)))
        if not found:
            unknown.append(category)
    return unknown


# The product attributes a rule may name (merchandising rules), each with its column.
_ATTRIBUTE_COLUMNS = {
    "category": Product.category_path,
    "brand": Product.brand,
    "country_of_origin": Product.country_of_origin,
}


def has_attribute_value(db: Session, *, attribute: str, value: str) -> bool:
    """Whether some product has ``value`` for ``attribute`` (a category: the category itself
    or one under it), compared as rules compare it: case counts."""
    column = _ATTRIBUTE_COLUMNS[attribute]
    holds = column == value
    if attribute == "category":
        holds = category_condition(Product.category_path, value)
    return bool(db.scalar(select(exists().where(holds))))


def attribute_values(db: Session, *, attribute: str, limit: int = 10_000) -> list[str]:
    """The values some product has for ``attribute`` (``category``, ``brand`` or
    ``country_of_origin``), sorted, at most ``limit`` of them; for ``category`` every level of
    every path ("Wine" and "Wine/Red" for a product in "Wine/Red"), as a rule may name any."""
    column = _ATTRIBUTE_COLUMNS[attribute]
    found = db.scalars(
        select(column).where(column.is_not(None)).distinct().order_by(column).limit(limit)
    )
    values: set[str] = set()
    for value in found:
        if value is None:
            continue
        if attribute == "category":
            parts = value.split(CATEGORY_SEPARATOR)
            values.update(CATEGORY_SEPARATOR.join(parts[: n + 1]) for n in range(len(parts)))
        else:
            values.add(value)
    return sorted(values)


@dataclass(frozen=True)
class CategoryWarning:
    """A rule names a category no product is in: saved all the same (the catalogue may load
    later), but the rule matches nothing until it does."""

    field: str
    detail: str


def category_warnings(db: Session, *, named: Sequence[tuple[str, str]]) -> list[CategoryWarning]:
    """A warning per (field, category) whose category no product is in."""
    unknown = set(unknown_categories(db, categories=[category for _, category in named]))
    return [
        CategoryWarning(
            field=field,
            detail=(
                f"No product is in category {category!r}; the rule matches nothing until "
                "products are filed under it (categories are paths such as 'Wine/Red')."
            ),
        )
        for field, category in named
        if category in unknown
    ]


def get_store(db: Session, *, store_id: str) -> Store | None:
    return db.get(Store, store_id)


def list_stores(db: Session) -> list[Store]:
    return list(db.scalars(select(Store).order_by(Store.store_id)))


def count_products(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Product)) or 0


def count_stores(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Store)) or 0


# ----------------------------------------------------------------------------------- stock

# The online warehouse's location id: stock sold on the web leaves from it.
WEB_LOCATION = "web"


def set_stock(db: Session, *, levels: Sequence[tuple[str, str, int]]) -> int:
    """Set on-hand units for (sku, store_id, units) triples in one transaction; reservations
    stay. Unknown stores or SKUs and a SKU and location given twice are refused, naming
    ``levels.<index>.<field>``, before anything is written. A count below the units reserved
    for pick-up is recorded as it is (the physical count is the truth: a reserved unit broke);
    the level then shows 0 available and how many reserved units it is short
    (:func:`short_by`). Returns how many levels were written."""
    refuse_repeats(
        [(sku, store_id) for sku, store_id, _ in levels],
        within="levels",
        field="store_id",
        describe=lambda key: f"{key[0]} at {key[1]}",
    )
    stores = {store_id for _, store_id, _ in levels}
    known_stores = set(db.scalars(select(Store.store_id).where(Store.store_id.in_(stores))))
    known = get_products(db, skus=[sku for sku, _, _ in levels])
    for index, (sku, store_id, _) in enumerate(levels):
        if sku not in known:
            raise InvalidInput(f"Unknown SKU {sku!r}", field=f"levels.{index}.sku")
        if store_id not in known_stores:
            raise InvalidInput(
                f"Unknown store {store_id!r}: a store of the catalogue, or 'web' for the online "
                "warehouse (add a store with PUT /v1/stores/{store_id} first)",
                field=f"levels.{index}.store_id",
            )
    existing = [db.get(StockLevel, (sku, store_id)) for sku, store_id, _ in levels]
    now = clock.now()
    for (sku, store_id, units), level in zip(levels, existing, strict=True):
        if level is None:
            db.add(
                StockLevel(sku=sku, store_id=store_id, on_hand=units, reserved=0, updated_at=now)
            )
        else:
            level.on_hand = units
            level.updated_at = now
    db.commit()
    return len(levels)


def load_stock(db: Session, *, levels: Sequence[tuple[str, str, int]]) -> int:
    """Bulk-set on-hand units (imports, demo): one statement per batch. Reservations stay;
    a level below its reservations is recorded as it is, short of them."""
    now = clock.now()
    upsert_rows(
        db,
        StockLevel.__table__,
        [
            {"sku": sku, "store_id": store_id, "on_hand": units, "reserved": 0, "updated_at": now}
            for sku, store_id, units in levels
        ],
        key_columns=["sku", "store_id"],
        update_columns=["on_hand", "updated_at"],
    )
    db.commit()
    return len(levels)


def reserve_stock(db: Session, *, sku: str, store_id: str, quantity: int) -> bool:
    """Reserve units for a pick-up order inside the caller's transaction. One conditional
    UPDATE, so two orders for the last unit cannot both win, on any database."""
    result = db.execute(
        update(StockLevel)
        .where(
            StockLevel.sku == sku,
            StockLevel.store_id == store_id,
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(reserved=StockLevel.reserved + quantity, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def collect_reserved(db: Session, *, sku: str, store_id: str, quantity: int) -> bool:
    """Reserved units leave the shop with the customer (inside the caller's transaction).
    False, and nothing moved, where the shop counts fewer units on hand than that (a count
    below its reservations was recorded: :func:`short_by`)."""
    result = db.execute(
        update(StockLevel)
        .where(
            StockLevel.sku == sku,
            StockLevel.store_id == store_id,
            StockLevel.on_hand >= quantity,
        )
        .values(
            on_hand=StockLevel.on_hand - quantity,
            reserved=StockLevel.reserved - quantity,
            updated_at=clock.now(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def available_units(on_hand: int, reserved: int) -> int:
    """Units a level can still sell or reserve: on hand less reserved, never below 0 (a count
    below the reservations leaves none, and :func:`short_by` says by how many)."""
    return max(on_hand - reserved, 0)


def short_by(on_hand: int, reserved: int) -> int:
    """How many reserved units a level cannot hand over: reserved less on hand, 0 when every
    reservation is covered."""
    return max(reserved - on_hand, 0)


def release_reserved(db: Session, *, sku: str, store_id: str, quantity: int) -> None:
    db.execute(
        update(StockLevel)
        .where(StockLevel.sku == sku, StockLevel.store_id == store_id)
        .values(reserved=StockLevel.reserved - quantity, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )


def take_stock(db: Session, *, sku: str, store_id: str, quantity: int) -> bool | None:
    """Sold units leave a location's stock inside the caller's transaction: one guarded
    UPDATE (``on_hand - reserved >= quantity``), so parallel sales of one SKU neither lose an
    update nor sell units promised to pick-up orders. True: taken; False: too few available;
    None: the location keeps no stock level for the SKU (its stock is not tracked here)."""
    result = db.execute(
        update(StockLevel)
        .where(
            StockLevel.sku == sku,
            StockLevel.store_id == store_id,
            StockLevel.on_hand - StockLevel.reserved >= quantity,
        )
        .values(on_hand=StockLevel.on_hand - quantity, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return True
    tracked = db.scalar(
        select(StockLevel.sku).where(StockLevel.sku == sku, StockLevel.store_id == store_id)
    )
    return False if tracked is not None else None


def return_to_stock(db: Session, *, sku: str, store_id: str, quantity: int) -> None:
    """Returned units go back on sale at a location, inside the caller's transaction: one
    atomic increment (a level is created where the location had none)."""
    now = clock.now()
    values = {"sku": sku, "store_id": store_id, "on_hand": quantity, "reserved": 0}
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql_insert(StockLevel).values(**values, updated_at=now)
        db.execute(
            pg.on_conflict_do_update(
                index_elements=["sku", "store_id"],
                set_={"on_hand": StockLevel.on_hand + pg.excluded.on_hand, "updated_at": now},
            )
        )
    else:
        lite = sqlite_insert(StockLevel).values(**values, updated_at=now)
        db.execute(
            lite.on_conflict_do_update(
                index_elements=["sku", "store_id"],
                set_={"on_hand": StockLevel.on_hand + lite.excluded.on_hand, "updated_at": now},
            )
        )


def get_stock(db: Session, *, sku: str, store_id: str) -> StockLevel | None:
    return db.get(StockLevel, (sku, store_id))


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Availability:
    """A product's stock at one location. ``tracked`` False: the location keeps no stock level
    for it, so its sales there are not limited (as the till sells it) and the units are None,
    not 0."""

    store_id: str
    name: str
    city: str
    tracked: bool
    on_hand: int | None
    reserved: int | None
    available: int | None  # on hand less reserved for pick-up, never below 0
    distance_km: float | None
    short_by: int | None = None  # reserved units the count cannot cover (None: not tracked)


def stock_view(
    db: Session, *, sku: str, latitude: float | None = None, longitude: float | None = None
) -> list[Availability]:
    """Units available (on hand less reserved) at every location for a product, nearest first
    when a point is given; the web warehouse comes last. A location that keeps no stock level
    for the product is not tracked there (``tracked`` False, no units)."""
    rows = db.execute(
        select(Store, StockLevel).outerjoin(
            StockLevel, (StockLevel.store_id == Store.store_id) & (StockLevel.sku == sku)
        )
    ).all()
    view = []
    for store, level in rows:
        distance = None
        if (
            latitude is not None
            and longitude is not None
            and store.latitude is not None
            and store.longitude is not None
        ):
            distance = round(_km(latitude, longitude, store.latitude, store.longitude), 1)
        view.append(
            Availability(
                store_id=store.store_id,
                name=store.name,
                city=store.city,
                tracked=level is not None,
                on_hand=level.on_hand if level else None,
                reserved=level.reserved if level else None,
                available=available_units(level.on_hand, level.reserved) if level else None,
                distance_km=distance,
                short_by=short_by(level.on_hand, level.reserved) if level else None,
            )
        )
    return sorted(view, key=lambda a: (a.distance_km is None, a.distance_km or 0.0, a.store_id))


# ---------------------------------------------------------------------------------- prices


def _same_place(sku: str, channel: str, store_id: str | None) -> list[ColumnElement[bool]]:
    """The rules for one SKU on one channel in one place (the whole channel, or one store)."""
    store = (
        ChannelPrice.store_id.is_(None) if store_id is None else ChannelPrice.store_id == store_id
    )
    return [ChannelPrice.sku == sku, ChannelPrice.channel == channel, store]


# The channel whose price may differ from store to store (``ChannelPriceIn.channel``).
STORE_CHANNEL = "store"


def _check_price_store(db: Session, *, channel: str, store_id: str) -> None:
    """A rule names a store only for the store channel, and only a store of the catalogue
    (not the web warehouse): 422 naming ``store_id`` otherwise."""
    if channel != STORE_CHANNEL:
        raise InvalidInput(
            f"A price for one store is a price on channel {STORE_CHANNEL!r}, not {channel!r}: "
            f"send channel {STORE_CHANNEL!r} with store_id, or leave store_id out for a "
            f"price on the whole {channel} channel",
            field="store_id",
        )
    if store_id == WEB_LOCATION or db.get(Store, store_id) is None:
        what = "is the online warehouse, not a store" if store_id == WEB_LOCATION else "is unknown"
        raise InvalidInput(
            f"Store {store_id!r} {what}: name a store of the catalogue (add one with "
            f"PUT /v1/stores/{{store_id}} first)",
            field="store_id",
        )


def set_channel_price(
    db: Session,
    *,
    sku: str,
    channel: str,
    price_minor: int,
    reason: str,
    store_id: str | None = None,
    before_commit: BeforeCommit | None = None,
) -> ChannelPrice:
    """Record a deliberate price exception for a channel (or one store). The rule in force
    for the same SKU, channel and store ends where the new one begins (its ``valid_to`` is
    set), so the newest rule wins and the history stays. The rule begins now: orders placed
    before it are never priced by it. ``before_commit`` runs last in the transaction, with
    the rule."""
    if db.get(Product, sku) is None:
        raise NotFound(f"No product with SKU {sku!r}", field="sku")
    if store_id is not None:
        _check_price_store(db, channel=channel, store_id=store_id)
    now = clock.now()
    db.execute(
        update(ChannelPrice)
        .where(
            *_same_place(sku, channel, store_id),
            or_(ChannelPrice.valid_from.is_(None), ChannelPrice.valid_from <= now),
            or_(ChannelPrice.valid_to.is_(None), ChannelPrice.valid_to > now),
        )
        .values(valid_to=now)
        .execution_options(synchronize_session="fetch")
    )
    rule = ChannelPrice(
        sku=sku,
        channel=channel,
        store_id=store_id,
        price_minor=price_minor,
        reason=reason,
        valid_from=now,
    )
    db.add(rule)
    db.flush()
    if before_commit is not None:
        before_commit(db, rule)
    db.commit()
    return rule


def end_channel_price(db: Session, *, rule_id: int) -> ChannelPrice:
    """End a price rule now (its ``valid_to``), keeping it as history: the product's price
    there is the catalogue's again, or the channel's where a store rule ends. A rule that
    has already ended is left as it is; one that has not begun ends before it begins."""
    rule = db.get(ChannelPrice, rule_id)
    if rule is None:
        raise NotFound(f"No price rule {rule_id}", field="rule_id")
    now = clock.now()
    if rule.valid_to is None or clock.as_utc(rule.valid_to) > now:
        begins = clock.as_utc(rule.valid_from) if rule.valid_from is not None else None
        rule.valid_to = begins if begins is not None and begins > now else now
        db.commit()
    return rule


def _live_at(rule: ChannelPrice, at: datetime) -> bool:
    return (rule.valid_from is None or clock.as_utc(rule.valid_from) <= at) and (
        rule.valid_to is None or clock.as_utc(rule.valid_to) > at
    )


def _deciding_rule(
    rules: Iterable[ChannelPrice], *, channel: str, store_id: str | None, at: datetime
) -> ChannelPrice | None:
    """The rule that sets the price on ``channel`` (in ``store_id``) at ``at``: of the rules
    live then, a store's own before the channel's, then the one that began last (a rule
    without a start began first), then the one recorded last."""
    live = [
        r
        for r in rules
        if r.channel == channel and r.store_id in (None, store_id) and _live_at(r, at)
    ]
    if not live:
        return None
    return max(live, key=lambda r: (r.store_id is not None, *rule_recency(r.valid_from, r.id)))


def effective_price(
    db: Session, *, sku: str, channel: str, store_id: str | None = None
) -> int | None:
    """The price a customer pays for ``sku`` on ``channel`` now (store rule, then channel
    rule, then the catalogue price; see ``price_on``)."""
    product = db.get(Product, sku)
    if product is None:
        return None
    rules = db.scalars(
        select(ChannelPrice).where(ChannelPrice.sku == sku, ChannelPrice.channel == channel)
    ).all()
    rule = _deciding_rule(rules, channel=channel, store_id=store_id, at=clock.now())
    return rule.price_minor if rule is not None else product.price_minor


def channel_prices(db: Session, *, skus: Sequence[str]) -> dict[str, list[ChannelPrice]]:
    """Every price rule (past, live and future) of each SKU, for pricing many lines at once."""
    rules: dict[str, list[ChannelPrice]] = {}
    for rule in db.scalars(
        select(ChannelPrice).where(ChannelPrice.sku.in_(set(skus))).order_by(ChannelPrice.id)
    ):
        rules.setdefault(rule.sku, []).append(rule)
    return rules


def price_on(
    catalogue_price_minor: int,
    rules: Sequence[ChannelPrice],
    *,
    channel: str,
    store_id: str | None,
    at: datetime,
) -> tuple[int, ChannelPrice | None]:
    """The price on ``channel`` (in ``store_id``) at ``at`` as ``effective_price`` decides it
    now: the store's rule live at that moment, else the channel's, else the catalogue price
    given (with the rule that set it, if any). Of two rules for the same place live at once
    (rules recorded before a new one ended the old), the one that began last wins, then the
    one recorded last."""
    rule = _deciding_rule(rules, channel=channel, store_id=store_id, at=at)
    if rule is None:
        return catalogue_price_minor, None
    return rule.price_minor, rule


@dataclass(frozen=True)
class PriceDifference:
    sku: str
    name: str
    catalogue_price_minor: int
    channel: str
    store_id: str | None
    price_minor: int
    reason: str
    rule_id: int  # the rule's id: the report's order is (sku, rule_id), its cursor the id


# The largest rule id a cursor may name (the column is a 32-bit INTEGER on every database).
_MAX_RULE_ID = 2**31 - 1


def _live_price_differences(channel: str | None) -> list[ColumnElement[bool]]:
    """The report's conditions, in SQL: a rule that sets the price now (live, and no later
    rule for the same place is) and whose price is not the catalogue price (on ``channel``
    alone, when given)."""
    now = clock.now()
    # A later rule for the same place, also live, decides the price instead (as
    # ``_deciding_rule`` picks): rules recorded before a new rule ended the one in force.
    later = aliased(ChannelPrice)
    began_later = or_(
        and_(later.valid_from.is_not(None), ChannelPrice.valid_from.is_(None)),
        later.valid_from > ChannelPrice.valid_from,
        and_(
            or_(
                and_(later.valid_from.is_(None), ChannelPrice.valid_from.is_(None)),
                later.valid_from == ChannelPrice.valid_from,
            ),
            later.id > ChannelPrice.id,
        ),
    )
    decided_by_later = exists().where(
        later.sku == ChannelPrice.sku,
        later.channel == ChannelPrice.channel,
        or_(
            and_(later.store_id.is_(None), ChannelPrice.store_id.is_(None)),
            later.store_id == ChannelPrice.store_id,
        ),
        or_(later.valid_from.is_(None), later.valid_from <= now),
        or_(later.valid_to.is_(None), later.valid_to > now),
        began_later,
    )
    conditions: list[ColumnElement[bool]] = [
        ChannelPrice.price_minor != Product.price_minor,
        or_(ChannelPrice.valid_from.is_(None), ChannelPrice.valid_from <= now),
        or_(ChannelPrice.valid_to.is_(None), ChannelPrice.valid_to > now),
        ~decided_by_later,
    ]
    if channel:
        conditions.append(ChannelPrice.channel == channel)
    return conditions


def price_consistency_report(
    db: Session,
    *,
    limit: int,
    after: str | None = None,
    offset: int = 0,
    channel: str | None = None,
) -> list[PriceDifference]:
    """Up to ``limit`` live price rules that set a price other than the catalogue's, with
    their reason, by SKU then rule (``channel``: that channel's only). ``after``, a rule's
    id as a page's cursor gave it, starts just past that rule; one that names no rule is
    422 naming ``cursor``. ``offset`` skips rows instead (the admin page's numbered pages)."""
    query = (
        select(ChannelPrice, Product)
        .join(Product, Product.sku == ChannelPrice.sku)
        .where(*_live_price_differences(channel))
    )
    if after is not None:
        last = None
        if re.fullmatch(r"[0-9]{1,10}", after) and int(after) <= _MAX_RULE_ID:
            last = db.get(ChannelPrice, int(after))
        if last is None:
            raise InvalidInput(
                "Not a cursor of the price consistency report: pass next_cursor as it came",
                field="cursor",
            )
        # Rules are never deleted, and a rule keeps its SKU: the cursor's place in the order
        # holds even if that rule has since expired or stopped differing.
        query = query.where(
            or_(
                ChannelPrice.sku > last.sku,
                and_(ChannelPrice.sku == last.sku, ChannelPrice.id > last.id),
            )
        )
    rows = db.execute(
        query.order_by(ChannelPrice.sku, ChannelPrice.id).offset(offset).limit(limit)
    ).all()
    return [
        PriceDifference(
            sku=product.sku,
            name=product.name,
            catalogue_price_minor=product.price_minor,
            channel=rule.channel,
            store_id=rule.store_id,
            price_minor=rule.price_minor,
            reason=rule.reason,
            rule_id=rule.id,
        )
        for rule, product in rows
    ]


def count_price_differences(db: Session, *, channel: str | None = None) -> tuple[int, int]:
    """How many live rules ``price_consistency_report`` lists, and for how many products."""
    counted = db.execute(
        select(func.count(), func.count(ChannelPrice.sku.distinct()))
        .select_from(ChannelPrice)
        .join(Product, Product.sku == ChannelPrice.sku)
        .where(*_live_price_differences(channel))
    ).one()
    return int(counted[0]), int(counted[1])


def get_products(db: Session, *, skus: Sequence[str]) -> dict[str, Product]:
    """Products by SKU (missing SKUs are simply absent)."""
    return {p.sku: p for p in db.scalars(select(Product).where(Product.sku.in_(set(skus))))}


@dataclass(frozen=True)
class ProductFacts:
    """What a product is sold as: its name, category, brand, origin and price."""

    sku: str
    name: str
    category_path: str
    brand: str | None
    country_of_origin: str | None
    price_minor: int
    currency: str | None = None  # ISO 4217 code of ``price_minor``


def product_facts(db: Session, *, skus: Sequence[str]) -> dict[str, ProductFacts]:
    """``ProductFacts`` by SKU, in one query of those columns only (for hot paths that serve a
    few dozen products: recommendations); missing SKUs are simply absent."""
    if not skus:
        return {}
    rows = db.execute(
        select(
            Product.sku,
            Product.name,
            Product.category_path,
            Product.brand,
            Product.country_of_origin,
            Product.price_minor,
            Product.currency,
        ).where(Product.sku.in_(set(skus)))
    )
    return {row[0]: ProductFacts(*row) for row in rows}


def available_at(db: Session, *, store_id: str, skus: Sequence[str]) -> dict[str, int | None]:
    """Units available (on hand less reserved) at one location for each of ``skus``; None for
    a SKU the location keeps no stock level for (not tracked there: its sales are not
    limited, as the till sells it)."""
    if not skus:
        return {}
    rows = db.execute(
        select(StockLevel.sku, StockLevel.on_hand - StockLevel.reserved).where(
            StockLevel.store_id == store_id, StockLevel.sku.in_(list(skus))
        )
    )
    available: dict[str, int | None] = dict.fromkeys(skus)
    available.update({str(sku): max(int(units), 0) for sku, units in rows})
    return available


def nearest_store(db: Session, *, latitude: float, longitude: float) -> Store | None:
    """The physical store closest to a point (stores without coordinates left out)."""
    best: tuple[float, Store] | None = None
    for store in list_stores(db):
        if store.latitude is None or store.longitude is None:
            continue
        distance = _km(latitude, longitude, store.latitude, store.longitude)
        if best is None or distance < best[0]:
            best = (distance, store)
    if best is None:
        return None
    return best[1]


# ------------------------------------------------------------------------------ privacy
# The catalog's part of export and erasure (rapport.flows.privacy): products, stores, stock
# and prices name no customer, so there is nothing to export or erase.

PRIVACY_TABLES: tuple[str, ...] = ()


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    return {}


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    return None


# --- audiences: stores near a point and their coordinates, for campaigns' segments ---
__all__ += ["store_coordinates", "stores_within"]
