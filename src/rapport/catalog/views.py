"""Reads for the prices and stock pages: products a page at a time with their price on each
channel and their stock by location, one product in full, and the consistency report (prices
that differ between channels, with the rule and reason behind each, and stock out of step
between the web warehouse and the shops)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from rapport.catalog.models import ChannelPrice, Product, StockLevel, Store
from rapport.catalog.service import (
    CATEGORY_SEPARATOR,
    WEB_LOCATION,
    available_units,
    category_condition,
    channel_prices,
    count_price_differences,
    price_consistency_report,
    price_on,
    short_by,
)
from rapport.platform import clock

# The channels a price can differ on (``ChannelPriceIn.channel``), in the order pages show them,
# then the loyalty members' price (loyalty records it as the channel ``members``).
CHANNELS = ("web", "app", "store", "call_center", "members")


@dataclass(frozen=True)
class ChannelPriceView:
    channel: str
    price_minor: int
    reason: str | None  # the rule's reason where a rule sets it; None: the catalogue price


@dataclass(frozen=True)
class ProductRow:
    product: Product
    prices: list[ChannelPriceView]
    web_available: int | None  # None: the web warehouse keeps no level (not tracked online)
    store_available: int | None  # None: no shop keeps a level for it (not tracked in shops)
    stores_stocking: int

    @property
    def differs(self) -> bool:
        return len({p.price_minor for p in self.prices}) > 1


@dataclass(frozen=True)
class StockRow:
    store_id: str
    name: str
    city: str
    on_hand: int
    reserved: int
    available: int  # never below 0
    store_price_minor: int | None = None
    tracked: bool = True  # False: the location keeps no stock level for the product
    store_price_reason: str | None = None
    short_by: int = 0  # reserved units the count on hand cannot cover


@dataclass(frozen=True)
class ProductDetail:
    product: Product
    prices: list[ChannelPriceView]
    stock: list[StockRow]
    rules: list[ChannelPrice] = field(default_factory=list)
    open_rule_ids: frozenset[int] = frozenset()  # rules not ended yet (live or to come)


@dataclass(frozen=True)
class RuleEnding:
    """A price rule an admin is about to end, and the price there once it has."""

    product: Product
    rule: ChannelPrice
    ended: bool  # it has ended, or was ended before it began: nothing to end
    begun: bool  # False: an earlier version's rule still to begin, which ending cancels
    price_after_minor: int
    # What sets the price once it ends: "rule 9 (app offer)", "the catalogue price".
    set_by_after: str


def rule_over(rule: ChannelPrice, now: datetime) -> bool:
    """Whether a price rule sets no price from ``now`` on: it has ended, or it was ended
    before it began (its end is its start)."""
    if rule.valid_to is None:
        return False
    ends = clock.as_utc(rule.valid_to)
    begins = clock.as_utc(rule.valid_from) if rule.valid_from is not None else None
    return ends <= now or (begins is not None and ends <= begins)


def rule_ending(db: Session, *, sku: str, rule_id: int) -> RuleEnding | None:
    """The price rule ``rule_id`` of product ``sku`` (None when the product has no such rule)
    and what the price in its place will be once it ends: the next rule live there, else the
    channel's rule (for a store's), else the catalogue price."""
    product = db.get(Product, sku)
    rule = db.get(ChannelPrice, rule_id)
    if product is None or rule is None or rule.sku != sku:
        return None
    now = clock.now()
    ended = rule_over(rule, now)
    begun = rule.valid_from is None or clock.as_utc(rule.valid_from) <= now
    others = [r for r in channel_prices(db, skus=[sku]).get(sku, []) if r.id != rule.id]
    price, deciding = price_on(
        product.price_minor, others, channel=rule.channel, store_id=rule.store_id, at=now
    )
    set_by = "the catalogue price"
    if deciding is not None:
        set_by = f"rule {deciding.id} ({deciding.reason})"
    return RuleEnding(product, rule, ended, begun, price, set_by)


def _search(query: str, category: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        conditions.append(
            or_(func.lower(Product.sku).like(pattern), func.lower(Product.name).like(pattern))
        )
    if category.strip():
        conditions.append(category_condition(Product.category_path, category))
    return conditions


def count_products(db: Session, *, query: str = "", category: str = "") -> int:
    statement = select(func.count()).select_from(Product).where(*_search(query, category))
    return db.scalar(statement) or 0


def _prices(product: Product, rules: Sequence[ChannelPrice]) -> list[ChannelPriceView]:
    now = clock.now()
    views = []
    for channel in CHANNELS:
        price, rule = price_on(product.price_minor, rules, channel=channel, store_id=None, at=now)
        views.append(ChannelPriceView(channel, price, rule.reason if rule else None))
    return views


def product_rows(
    db: Session, *, query: str = "", category: str = "", offset: int = 0, limit: int = 50
) -> list[ProductRow]:
    """A page of products in SKU order with their price on each channel and units available
    on the web and in the shops."""
    products = list(
        db.scalars(
            select(Product)
            .where(*_search(query, category))
            .order_by(Product.sku)
            .offset(offset)
            .limit(limit)
        )
    )
    skus = [p.sku for p in products]
    rules = channel_prices(db, skus=skus)
    web: dict[str, int] = {}
    shops: dict[str, int] = {}
    stocking: dict[str, int] = {}
    if skus:
        for sku, store_id, on_hand, reserved in db.execute(
            select(
                StockLevel.sku, StockLevel.store_id, StockLevel.on_hand, StockLevel.reserved
            ).where(StockLevel.sku.in_(skus))
        ):
            available = available_units(on_hand, reserved)
            if store_id == WEB_LOCATION:
                web[sku] = web.get(sku, 0) + available
            else:
                shops[sku] = shops.get(sku, 0) + available
                stocking[sku] = stocking.get(sku, 0) + (1 if available > 0 else 0)
    return [
        ProductRow(
            product=p,
            prices=_prices(p, rules.get(p.sku, [])),
            web_available=web.get(p.sku),
            store_available=shops.get(p.sku),
            stores_stocking=stocking.get(p.sku, 0),
        )
        for p in products
    ]


def price_channels(db: Session) -> list[str]:
    """The channels some price rule names, for the consistency report's filter."""
    return sorted(c for c in db.scalars(select(ChannelPrice.channel).distinct()) if c)


def top_categories(db: Session) -> list[str]:
    """The first level of every category path, for the category filter."""
    paths = db.scalars(select(Product.category_path).distinct())
    return sorted({path.split(CATEGORY_SEPARATOR)[0] for path in paths if path})


def product_detail(db: Session, *, sku: str) -> ProductDetail | None:
    """One product: its price on each channel, and per location the units on hand, reserved
    and available with the store's own price where a store rule sets one."""
    product = db.get(Product, sku)
    if product is None:
        return None
    rules = channel_prices(db, skus=[sku]).get(sku, [])
    now = clock.now()
    stock = []
    for store, level in db.execute(
        select(Store, StockLevel)
        .outerjoin(StockLevel, and_(StockLevel.store_id == Store.store_id, StockLevel.sku == sku))
        .order_by(Store.store_id == WEB_LOCATION, Store.city, Store.store_id)
    ):
        store_price, rule = (None, None)
        if store.store_id != WEB_LOCATION:
            store_price, rule = price_on(
                product.price_minor, rules, channel="store", store_id=store.store_id, at=now
            )
        on_hand = level.on_hand if level else 0
        reserved = level.reserved if level else 0
        stock.append(
            StockRow(
                store_id=store.store_id,
                name=store.name,
                city=store.city,
                on_hand=on_hand,
                reserved=reserved,
                available=available_units(on_hand, reserved),
                store_price_minor=store_price,
                store_price_reason=rule.reason if rule else None,
                tracked=level is not None,
                short_by=short_by(on_hand, reserved),
            )
        )
    open_rules = frozenset(r.id for r in rules if not rule_over(r, now))
    return ProductDetail(
        product=product,
        prices=_prices(product, rules),
        stock=stock,
        rules=rules,
        open_rule_ids=open_rules,
    )


@dataclass(frozen=True)
class StockGap:
    sku: str
    name: str
    web_available: int
    store_available: int
    problem: str


def _stock_out_of_step() -> Select[Any]:
    """Each product whose stock is tracked online (the web warehouse keeps a level for it)
    with no units available there, with its units online and in the shops that track it
    altogether, summed in SQL. A location that keeps no level for a product does not track
    it (orders for it there are not limited): it counts for nothing here, and a product
    tracked nowhere is never out of step."""
    # Never below 0: a level short of its reservations has nothing to sell, not less.
    available = case(
        (StockLevel.on_hand > StockLevel.reserved, StockLevel.on_hand - StockLevel.reserved),
        else_=0,
    )
    online = func.coalesce(
        func.sum(case((StockLevel.store_id == WEB_LOCATION, available), else_=0)), 0
    )
    shops = func.coalesce(
        func.sum(case((StockLevel.store_id != WEB_LOCATION, available), else_=0)), 0
    )
    tracked_online = func.sum(case((StockLevel.store_id == WEB_LOCATION, 1), else_=0))
    return (
        select(Product.sku, Product.name, online.label("online"), shops.label("shops"))
        .join(StockLevel, StockLevel.sku == Product.sku)
        .group_by(Product.sku, Product.name)
        .having(tracked_online > 0, online <= 0)
    )


def stock_gaps(db: Session, *, offset: int = 0, limit: int = 50) -> list[StockGap]:
    """A page of the products whose stock is out of step between channels, by SKU: sold out
    online while shops hold units, or out of stock at every location that tracks it."""
    gaps = []
    for sku, name, web_units, shop_units in db.execute(
        _stock_out_of_step().order_by(Product.sku).offset(offset).limit(limit)
    ):
        problem = (
            "Out of stock everywhere" if shop_units <= 0 else "Sold out online, in stock in shops"
        )
        gaps.append(StockGap(sku, name, int(web_units), int(shop_units), problem))
    return gaps


def count_stock_gaps(db: Session) -> tuple[int, int]:
    """How many products ``stock_gaps`` lists, and how many of them are out of stock
    everywhere."""
    gaps = _stock_out_of_step().subquery()
    counted = db.execute(
        select(
            func.count(), func.coalesce(func.sum(case((gaps.c.shops <= 0, 1), else_=0)), 0)
        ).select_from(gaps)
    ).one()
    return int(counted[0]), int(counted[1])


__all__ = [
    "CHANNELS",
    "ChannelPriceView",
    "ProductDetail",
    "ProductRow",
    "RuleEnding",
    "StockGap",
    "StockRow",
    "count_price_differences",
    "count_products",
    "count_stock_gaps",
    "price_channels",
    "price_consistency_report",
    "product_detail",
    "product_rows",
    "rule_ending",
    "stock_gaps",
    "top_categories",
]
