"""Catalogue rows that today's checks would refuse but an earlier version saved, and that
nothing rewrites: price rules for a place that is no store (an unknown store, the web
warehouse, a store on another channel than ``store``), several rules live at once for one
place, and stores with half a position, an unknown time zone or unreadable opening hours.
Each is listed with what is wrong and how to fix it; nothing here changes a row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from rapport.catalog.models import ChannelPrice, Store
from rapport.catalog.precedence import rule_recency
from rapport.catalog.schemas import WEEKDAYS, hours_problem
from rapport.platform import clock


@dataclass(frozen=True)
class CatalogProblem:
    """One stored row to fix: a price rule (``rule_id``, with its ``sku``) or a store."""

    kind: str  # "price rule" or "store"
    subject: str  # "rule 12 of W-1" or "store st-par-01"
    problem: str
    fix: str
    sku: str | None = None
    rule_id: int | None = None
    store_id: str | None = None


def _live_now() -> list[Any]:
    now = clock.now()
    return [
        or_(ChannelPrice.valid_from.is_(None), ChannelPrice.valid_from <= now),
        or_(ChannelPrice.valid_to.is_(None), ChannelPrice.valid_to > now),
    ]


def _place(rule: ChannelPrice) -> str:
    if rule.store_id is None:
        return f"on {rule.channel}"
    return f"in store {rule.store_id} on {rule.channel}"


def _rule_problem(rule: ChannelPrice, problem: str, fix: str) -> CatalogProblem:
    return CatalogProblem(
        kind="price rule",
        subject=f"rule {rule.id} of {rule.sku} ({rule.reason})",
        problem=problem,
        fix=fix,
        sku=rule.sku,
        rule_id=rule.id,
        store_id=rule.store_id,
    )


def _rules_for_no_store(db: Session) -> list[CatalogProblem]:
    """Live rules naming a store as today's rules would not: one the catalogue lacks, the
    web warehouse, or a store on another channel than ``store``."""
    found = []
    rows = db.execute(
        select(ChannelPrice, Store.store_id)
        .outerjoin(Store, Store.store_id == ChannelPrice.store_id)
        .where(ChannelPrice.store_id.is_not(None), *_live_now())
        .order_by(ChannelPrice.sku, ChannelPrice.id)
    ).all()
    for rule, known in rows:
        again = "record it again for a store of the catalogue on channel store if it is wanted"
        if rule.store_id == "web":
            problem = "names 'web', the online warehouse, as a store"
        elif known is None:
            problem = (
                f"names store {rule.store_id!r}, which is not in the catalogue: no order can "
                "be placed there"
            )
        elif rule.channel != "store":
            problem = (
                f"prices {rule.channel} orders at one store: a price for one store is on "
                "channel 'store' only"
            )
        else:
            continue
        found.append(_rule_problem(rule, problem, f"End the rule; {again}"))
    return found


def _rules_live_together(db: Session) -> list[CatalogProblem]:
    """Every live rule of a place where another live rule sets the price instead."""
    place = (ChannelPrice.sku, ChannelPrice.channel, func.coalesce(ChannelPrice.store_id, ""))
    live = _live_now()  # one moment for the places and their rules
    crowded = select(*place).where(*live).group_by(*place).having(func.count() > 1).subquery()
    rules = db.scalars(
        select(ChannelPrice)
        .where(tuple_(*place).in_(select(crowded.c[0], crowded.c[1], crowded.c[2])), *live)
        .order_by(ChannelPrice.sku, ChannelPrice.id)
    ).all()
    deciding: dict[tuple[str, str, str | None], ChannelPrice] = {}
    for rule in rules:  # as the price is decided: the rule that began last, then made last
        key = (rule.sku, rule.channel, rule.store_id)
        newest = deciding.setdefault(key, rule)
        if rule_recency(rule.valid_from, rule.id) > rule_recency(newest.valid_from, newest.id):
            deciding[key] = rule
    found = []
    for rule in rules:
        decides = deciding[(rule.sku, rule.channel, rule.store_id)]
        if decides.id == rule.id:
            continue
        found.append(
            _rule_problem(
                rule,
                f"is live {_place(rule)} together with rule {decides.id} "
                f"({decides.reason}), which sets the price there",
                f"End this rule: the price stays rule {decides.id}'s",
            )
        )
    return found


def store_problems(store: Store) -> list[str]:
    """What is wrong with a stored store, as ``PUT /v1/stores/{store_id}`` would refuse it."""
    problems = []
    if (store.latitude is None) != (store.longitude is None):
        missing = "longitude" if store.longitude is None else "latitude"
        problems.append(
            f"has half a position (no {missing}): it is left out of the nearest store "
            "and of distances"
        )
    try:
        ZoneInfo(store.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"has time zone {store.timezone!r}, which is not an IANA time zone")
    hours = store.opening_hours
    if not isinstance(hours, dict):
        problems.append("has opening hours that are not a list of weekdays")
    else:
        for day, value in hours.items():
            if day not in WEEKDAYS:
                problems.append(f"has opening hours for {day!r}, which is not a weekday")
                continue
            problem = hours_problem(value)
            if problem:
                problems.append(f"has opening hours on {day}: {problem}")
    return problems


def _stores(db: Session) -> list[CatalogProblem]:
    found = []
    for store in db.scalars(select(Store).order_by(Store.store_id)):
        for problem in store_problems(store):
            found.append(
                CatalogProblem(
                    kind="store",
                    subject=f"store {store.store_id} ({store.name})",
                    problem=problem,
                    fix=(
                        f"Send the store again with PUT /v1/stores/{store.store_id}: "
                        "both coordinates or neither, an IANA time zone such as "
                        "Europe/Paris, hours such as '09:00-20:00' or 'closed'"
                    ),
                    store_id=store.store_id,
                )
            )
    return found


def catalog_problems(db: Session) -> list[CatalogProblem]:
    """Every stored price rule and store to fix: rules first (by SKU, then rule), then
    stores (by id)."""
    rules = _rules_for_no_store(db) + _rules_live_together(db)
    rules.sort(key=lambda p: (p.sku or "", p.rule_id or 0))
    return rules + _stores(db)
