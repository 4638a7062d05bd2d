"""Recommendation verbs: train a model version, serve recommendations, manage merchandising
rules. The only functions other code calls.

Trained models live as files under ``<data_dir>/models/recommend/``: one ``.npz`` per version
and a ``CURRENT`` file naming the one to serve. Training writes the new file, records the
version, then replaces ``CURRENT`` in one atomic rename; every serving process notices within a
second and swaps to the new model between requests, never in the middle of one.
"""

from __future__ import annotations

import difflib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events import service as events
from rapport.loyalty.service import member_tier, tier_policy, tiers_by_customer
from rapport.orders import service as orders
from rapport.platform import clock, jobs
from rapport.platform.db import read_only
from rapport.platform.errors import Conflict, InvalidInput, NotFound, field_error
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.models import Job
from rapport.platform.privacy import PrivacySubject
from rapport.recommend.models import MerchRule, MerchRuleChange, ModelVersion
from rapport.recommend.ranking import (
    BROWSING_PLACEMENTS,
    DEVICE_CHANNELS,
    Context,
    Ranked,
    Rule,
    rank,
)
from rapport.recommend.schemas import NOT_TAKEN, Attribute, RuleIn, factor_problem, rule_value
from rapport.recommend.trained_model import Bundle, ProductFacts, Purchase, build

__all__ = [
    "BROWSING_DAYS",
    "CHECK_EVERY_S",
    "DEFAULT_BLEND",
    "MAX_ACTIVE_RULES",
    "POINTER",
    "PRIVACY_TABLES",
    "RECENT_PURCHASE_DAYS",
    "RULES_CACHE_S",
    "RULE_SETTINGS",
    "TRAIN_JOB",
    "VERDICT_CUSTOMERS",
    "Answer",
    "BeforeCommit",
    "Measured",
    "MerchRule",
    "MerchRuleChange",
    "ModelHolder",
    "ModelVersion",
    "NothingToLearn",
    "Request",
    "RuleIn",
    "active_version",
    "count_rules",
    "create_rule",
    "delete_rule",
    "erase_customer_data",
    "export_customer_data",
    "get_rule",
    "holder",
    "list_rules",
    "list_versions",
    "make_current",
    "measured",
    "models_directory",
    "queue_training",
    "recently_browsed",
    "recommend",
    "recommend_now",
    "rule_changes",
    "rule_cursor",
    "stored_rule_problems",
    "target_problems",
    "train_model",
    "trained_since",
    "unmeasured_reason",
    "update_rule",
    "warm",
]

log = logging.getLogger(__name__)

POINTER = "CURRENT"
CHECK_EVERY_S = 1.0
RULES_CACHE_S = 2.0
RECENT_PURCHASE_DAYS = 30
# Browsing as a serving signal: a consenting customer's newest events (at most this many, one
# indexed read), of these types, in these days.
BROWSING_EVENTS = 50
BROWSING_DAYS = 7
BROWSING_TYPES = {"product_viewed": "viewed", "product_added": "added", "cart_viewed": "added"}
TRAIN_JOB = "recommend.train"
# Where each training's weight search starts, and the weights served when the history is too
# short to measure (rapport.recommend.tuning): near what tuning chooses on Ta-Feng and Online
# Retail with repeats allowed (docs/benchmarks.md).
DEFAULT_BLEND: dict[str, Any] = {
    "own": 1.0,
    "knn": 0.1,
    "ease": 0.1,
    "als": 0.1,
    "popular": 0.1,
    "repeat_power": 0.5,
}


def models_directory(data_dir: Path) -> Path:
    return data_dir / "models" / "recommend"


# ------------------------------------------------------------------------------ serving


class ModelHolder:
    """The model a serving process answers with. ``current()`` looks at ``CURRENT`` at most
    once a second and loads a new version beside the old one; the swap is one reference
    assignment, so a request that took the old model finishes with it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._bundle: Bundle | None = None
        self._checked = -float("inf")
        self._loading = threading.Lock()

    def current(self) -> Bundle | None:
        now = time.monotonic()
        # Until a model is loaded every request looks (and waits for the first load).
        if self._bundle is None or now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self._refresh()
        return self._bundle

    def ready(self) -> bool:
        """Whether :meth:`current` will answer without loading a model file (seconds)."""
        if self._bundle is not None and time.monotonic() - self._checked < CHECK_EVERY_S:
            return True
        version = self._pointer()
        return version is None or (self._bundle is not None and self._bundle.version == version)

    def swap(self, bundle: Bundle) -> None:
        self._bundle = bundle
        self._checked = time.monotonic()

    def _pointer(self) -> str | None:
        try:
            return (self.directory / POINTER).read_text().strip()
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        version = self._pointer()
        if version is None:
            return
        if self._bundle is not None and self._bundle.version == version:
            return
        # One loader at a time; the others keep answering with the model they have.
        if not self._loading.acquire(blocking=self._bundle is None):
            return
        try:
            if self._bundle is None or self._bundle.version != version:
                bundle = Bundle.load(self.directory / f"{version}.npz")
                warm(bundle)
                self._bundle = bundle
                log.info("recommendation model %s loaded", version)
        finally:
            self._loading.release()


def warm(bundle: Bundle) -> None:
    """Compute what every request needs once, so the first requests after a swap are not
    slow (a second for UP-CF's recent baskets on Ta-Feng) and concurrent ones do not each
    compute it: the history matrices each part reads, and the links that explain picks."""
    bundle.blend.prepare(bundle.data)
    bundle.data.binary()
    bundle.data.counts()
    _ = bundle.neighbour_links


_holders: dict[Path, ModelHolder] = {}
_holders_lock = threading.Lock()


def holder(data_dir: Path) -> ModelHolder:
    found = _holders.get(data_dir)  # every request asks: no path built, no lock taken
    if found is not None:
        return found
    with _holders_lock:
        if data_dir not in _holders:
            _holders[data_dir] = ModelHolder(models_directory(data_dir))
        return _holders[data_dir]


def active_version(data_dir: Path) -> str | None:
    try:
        return (models_directory(data_dir) / POINTER).read_text().strip() or None
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Request:
    placement: str
    customer_id: str | None = None
    anonymous_id: str | None = None
    item_id: str | None = None
    cart: Sequence[str] = ()
    limit: int = 10
    store_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    device: str | None = None
    at: datetime | None = None
    margin_weight: float = 0.0
    exclude_purchased: bool = False


@dataclass(frozen=True)
class Answer:
    placement: str
    model_version: str | None
    personalized: bool
    store_id: str | None
    items: list[Ranked]


def recommend_now(db: Session, *, request: Request, data_dir: Path) -> Answer | None:
    """:func:`recommend` if it can answer without waiting on anything: on SQLite (whose
    readers never wait for a lock in WAL mode) with the current model in memory. ``None``
    otherwise (PostgreSQL's round trips, a model file still to load): call :func:`recommend`
    from a worker thread then.

    For the event loop: an answer is a few milliseconds of Python, and the trips to a worker
    thread and back cost a millisecond or more each, mostly in waiting for the GIL."""
    if db.get_bind().dialect.name != "sqlite" or not holder(data_dir).ready():
        return None
    return recommend(db, request=request, data_dir=data_dir)


def recommend(db: Session, *, request: Request, data_dir: Path) -> Answer:
    """Recommendations for one placement, in context, with rules applied and each item
    explained. Without ``personalization`` consent the answer uses no personal data."""
    read_only(db)
    _refuse_ignored(request)
    if request.placement in ITEM_PLACEMENTS and not request.item_id:
        raise InvalidInput(f"{request.placement} needs item_id", field="item_id")
    if request.placement == "cart" and not request.cart:
        raise InvalidInput("the cart placement needs at least one cart item", field="cart")
    if request.device is not None and request.device.lower() not in DEVICE_CHANNELS:
        raise InvalidInput(
            f"Unknown device {request.device!r}: use {', '.join(DEVICE_CHANNELS)}", field="device"
        )
    if (request.latitude is None) != (request.longitude is None):
        missing = "lat" if request.latitude is None else "lon"
        raise InvalidInput("lat and lon go together: give both, or neither", field=missing)
    consent = _customer(db, request)
    customer_id = consent.customer_id if consent is not None else None
    personal = consent is not None and "personalization" in consent.granted
    store_id, store_name = _store(db, request, consent)
    bundle = holder(data_dir).current()
    if bundle is None:
        # Nothing learnt yet (a new installation): an empty answer, not an error, so that
        # storefronts show their own default; training is one command away.
        return Answer(request.placement, None, personal, store_id, [])
    at = request.at or clock.now()
    item_name = item_category = None
    if request.item_id and request.item_id not in bundle.item_index:
        product = catalog.get_product(db, sku=request.item_id)
        if product is None:
            raise NotFound(f"product {request.item_id} not found", field="item_id")
        item_name, item_category = product.name, product.category_path
    unseen = [sku for sku in request.cart if sku not in bundle.item_index]
    # Cart items added to the catalogue after training still get complements through their
    # category; SKUs the catalogue does not know either are left out.
    cart_categories = {
        sku: product.category_path
        for sku, product in (catalog.get_products(db, skus=unseen) if unseen else {}).items()
        if product.category_path
    }
    recent: frozenset[str] = frozenset()
    discover = request.placement == "discover" or request.exclude_purchased
    if personal and customer_id is not None:
        # Leaving out everything bought means everything since the model learnt the rest.
        since = (
            clock.as_utc(bundle.trained_at)
            if discover
            else clock.now() - timedelta(days=RECENT_PURCHASE_DAYS)
        )
        since = min(since, clock.now() - timedelta(days=RECENT_PURCHASE_DAYS))
        recent = frozenset(orders.recently_bought(db, customer_id=customer_id, since=since))
    browsed: tuple[tuple[str, str], ...] = ()
    if personal and customer_id is not None and request.placement in BROWSING_PLACEMENTS:
        browsed = recently_browsed(db, customer_id=customer_id, at=at)
    customer_row = bundle.user_index.get(customer_id or "") if personal else None
    segment = None
    if personal and customer_row is None and customer_id is not None and bundle.segments:
        # The entry tier is everyone: its popularity is no different from the overall one.
        tier = member_tier(db, customer_id=customer_id)
        if tier.tier_id != tier_policy(db).tier(None).id:
            segment = (tier.tier_id, tier.tier_name)
    context = Context(
        placement=request.placement,
        limit=request.limit,
        customer=customer_row,
        segment=segment,
        item=request.item_id,
        cart=tuple(request.cart),
        store_id=store_id,
        store_name=store_name,
        at=at,
        device=request.device,
        margin_weight=request.margin_weight,
        recently_bought=recent,
        exclude_purchased=discover and personal,
        item_category=item_category,
        item_name=item_name,
        cart_categories=cart_categories,
        browsed=browsed,
    )
    # Without consent, no loyalty tier: the rules for everyone and for customers only.
    rules = _rules_for(
        db, request.placement, lambda: _segments(db, customer_id, personal=personal), at
    )

    def available(skus: list[str]) -> set[str]:
        assert store_id is not None
        # A SKU the store keeps no stock level for is not tracked there: not limited.
        stock = catalog.available_at(db, store_id=store_id, skus=skus)
        return {sku for sku, units in stock.items() if units is None or units > 0}

    # The catalogue's facts now for what may be served, in one query.
    items = rank(
        bundle,
        context,
        rules,
        available=available,
        facts=lambda skus: catalog.product_facts(db, skus=skus),
    )
    return Answer(
        placement=request.placement,
        model_version=bundle.version,
        personalized=personal,
        store_id=store_id,
        items=items,
    )


# The placements about one product (``item_id``).
ITEM_PLACEMENTS = ("product_similar", "product_complements")


def _refuse_ignored(request: Request) -> None:
    """A parameter the answer would not read is refused, naming it and what to send: a
    developer must not believe it does something."""
    if request.customer_id is not None and request.anonymous_id is not None:
        raise InvalidInput(
            "Send customer_id or anonymous_id, not both: customer_id for a signed-in customer "
            "(anonymous_id is then not read), anonymous_id for a visitor not signed in",
            field="anonymous_id",
        )
    if request.item_id is not None and request.placement not in ITEM_PLACEMENTS:
        raise InvalidInput(
            f"{request.placement} takes no item_id: only product_similar and "
            "product_complements are about one product (to keep a product off this list, send "
            "it in cart)",
            field="item_id",
        )
    if request.store_id is not None and request.latitude is not None:
        raise InvalidInput(
            "Send store_id or lat and lon, not both: store_id binds the request to that store "
            "(lat and lon are then not read), lat and lon to the nearest one",
            field="lat",
        )


# The earliest moment whose browsing window can be computed (``at`` in year 1).
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def recently_browsed(db: Session, *, customer_id: str, at: datetime) -> tuple[tuple[str, str], ...]:
    """What the customer looked at or put in their basket in the last ``BROWSING_DAYS``, newest
    first, from their last ``BROWSING_EVENTS`` events (Segment's "Product Viewed", "Product
    Added", "Cart Viewed"): ``(sku, "viewed" | "added")``, each SKU once. A product is named
    by ``sku``, else ``product_id``, as the shop sent it."""
    window = timedelta(days=BROWSING_DAYS)
    since = at - window if at - _EARLIEST > window else _EARLIEST
    found: dict[str, str] = {}
    for event in events.customer_timeline(db, customer_id=customer_id, limit=BROWSING_EVENTS):
        kind = BROWSING_TYPES.get(event.type)
        if kind is None or not since <= event.occurred_at <= at:
            continue
        properties = event.properties or {}
        products = properties.get("products") if event.type == "cart_viewed" else [properties]
        for product in products if isinstance(products, list) else []:
            sku = _product_sku(product)
            if sku is not None and sku not in found:
                found[sku] = kind
    return tuple(found.items())


def _product_sku(product: Any) -> str | None:
    if not isinstance(product, dict):
        return None
    for key in ("sku", "product_id"):
        value = product.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:64]
    return None


def _customer(db: Session, request: Request) -> customers.ConsentState | None:
    if request.customer_id is not None:
        # Rapport's id first, in one round trip (the usual case on this hot path); then the
        # shop's own customer number, resolved the one way every endpoint does.
        state = customers.consent_state(db, customer_id=request.customer_id)
        if state is None:
            state = customers.consent_state(
                db, customer_id=customers.resolve_customer_ref(db, ref=request.customer_id)
            )
        if state is None:
            raise NotFound(f"customer {request.customer_id} not found", field="customer_id")
        if state.erased:
            raise customers.was_erased(request.customer_id)
        return state
    if request.anonymous_id is not None:
        found = customers.find_customer(db, kind="anonymous_id", value=request.anonymous_id)
        if found is not None:
            return customers.consent_state(db, customer_id=found.customer_id)
    return None


def _store(
    db: Session, request: Request, consent: customers.ConsentState | None
) -> tuple[str | None, str | None]:
    """The store a request is bound to: the one named, or the nearest to the point given
    (a known customer's point only with ``location`` consent)."""
    if request.store_id is not None:
        store = catalog.get_store(db, store_id=request.store_id)
        if store is None:
            raise NotFound(f"store {request.store_id} not found", field="store_id")
        return store.store_id, store.name
    if request.latitude is None or request.longitude is None:
        return None, None
    if consent is not None and "location" not in consent.granted:
        return None, None
    nearest = catalog.nearest_store(db, latitude=request.latitude, longitude=request.longitude)
    return (nearest.store_id, nearest.name) if nearest is not None else (None, None)


# The segments a rule may name besides a loyalty tier id.
ANONYMOUS, CUSTOMERS = "anonymous", "customers"


def _segments(db: Session, customer_id: str | None, *, personal: bool) -> set[str]:
    """The segments rules see a request in. A customer's loyalty tier is personal data: without
    ``personalization`` consent they are in ``customers`` only (no tier's rules, not even the
    entry tier's)."""
    if customer_id is None:
        return {ANONYMOUS}
    if not personal:
        return {CUSTOMERS}
    return {CUSTOMERS, member_tier(db, customer_id=customer_id).tier_id}


# -------------------------------------------------------------------------------- rules


_rules_cache: dict[str, tuple[float, list[MerchRule]]] = {}


def _active_rules(db: Session) -> list[MerchRule]:
    """Active rules, remembered for two seconds per process (rule changes in this process
    clear it at once)."""
    key = str(db.get_bind().engine.url)
    cached = _rules_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < RULES_CACHE_S:
        return cached[1]
    rules = list(db.scalars(select(MerchRule).where(MerchRule.active.is_(True))))
    for rule in rules:
        db.expunge(rule)
    _rules_cache[key] = (time.monotonic(), rules)
    return rules


def _rules_for(
    db: Session, placement: str, segments_of: Callable[[], set[str]], at: datetime
) -> list[Rule]:
    """The rules in force for this placement, segment and moment (the customer's segments
    are looked up only when some rule needs them)."""
    active = _active_rules(db)
    segments = segments_of() if any(r.segment is not None for r in active) else set()
    return [
        Rule(
            name=r.name,
            action=r.action,
            sku=r.sku,
            attribute=r.attribute,
            value=r.value,
            position=r.position,
            factor=r.factor,
            placement=r.placement,
            segment=r.segment,
            starts_at=clock.as_utc(r.starts_at) if r.starts_at is not None else None,
            rule_id=r.id,
        )
        for r in sorted(active, key=lambda r: r.id)
        if (r.placement is None or r.placement == placement)
        and (r.segment is None or r.segment in segments)
        and (r.starts_at is None or clock.as_utc(r.starts_at) <= at)
        and (r.ends_at is None or clock.as_utc(r.ends_at) > at)
    ]


# Every setting of a merchandising rule: what its history records and its form shows.
RULE_SETTINGS = (
    "name",
    "action",
    "placement",
    "segment",
    "sku",
    "attribute",
    "value",
    "position",
    "factor",
    "starts_at",
    "ends_at",
    "active",
)


def _snapshot(rule: MerchRule) -> dict[str, Any]:
    # Moments in UTC: one instant reads the same whatever offset it was given with.
    snapshot: dict[str, Any] = {}
    for name in RULE_SETTINGS:
        value = getattr(rule, name)
        snapshot[name] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
    return snapshot


def _record_change(
    db: Session, rule: MerchRule, change: str, by: str, before: dict[str, Any] | None
) -> None:
    db.add(
        MerchRuleChange(
            rule_id=rule.id,
            change=change,
            changed_by=by,
            changed_at=clock.now(),
            before=before,
            after=_snapshot(rule) if change != "deleted" else None,
        )
    )
    _rules_cache.clear()


# At most this many rules are on at once: every request reads and weighs each of them, about
# 0.03 ms a rule (docs/recommendations.md, "How many rules": the median answer on the test
# shop took 2.1 ms with none, 6.2 ms with 50, 6.6 ms with 100, 8.2 ms with 200, 60 ms with
# 2,000).
MAX_ACTIVE_RULES = 100


def list_rules(
    db: Session, *, after_id: int | None = None, offset: int = 0, limit: int | None = None
) -> list[MerchRule]:
    """Rules in the order they were made: all of them, or a page (``after_id``, the last id
    of the previous page, or ``offset``; at most ``limit``)."""
    query = select(MerchRule).order_by(MerchRule.id)
    if after_id is not None:
        query = query.where(MerchRule.id > after_id)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(db.scalars(query))


def rule_cursor(rule: MerchRule) -> str:
    """The ``next_cursor`` after ``rule`` in :func:`list_rules`' order."""
    return str(rule.id)


def count_rules(db: Session) -> tuple[int, int]:
    """How many rules there are, and how many of them are on."""
    total, on = db.execute(
        select(func.count(MerchRule.id), func.count(MerchRule.id).filter(MerchRule.active))
    ).one()
    return int(total), int(on)


# The PostgreSQL advisory lock under which a rule is switched on ("MerchOn" in ASCII).
_SWITCHING_ON_LOCK = 0x4D65_7263_684F_6E00


def _switching_on_one_at_a_time(db: Session) -> None:
    """Hold, until the transaction ends, the lock under which rules are switched on, so two
    switched on at the same moment cannot both count 99 and make 101: the second waits for
    the first's commit and then counts it. SQLite's transactions already take the database's
    one writer turn (``BEGIN IMMEDIATE``) before they read."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SWITCHING_ON_LOCK})


def _check_room(db: Session, rule: RuleIn, was_active: bool = False) -> None:
    """A rule switched on beyond :data:`MAX_ACTIVE_RULES` is refused, saying what to do;
    counted under the switching-on lock, held until the caller's commit."""
    if not rule.active or was_active:
        return
    _switching_on_one_at_a_time(db)
    on = count_rules(db)[1]
    if on >= MAX_ACTIVE_RULES:
        db.rollback()  # the lock goes with it
        raise Conflict(
            f"{on} rules are on, the most there may be ({MAX_ACTIVE_RULES}): every request "
            "weighs each one. Switch off (active false) or delete rules no longer needed, "
            "ended ones first, or merge rules that do one thing into one (one boost of a "
            "category rather than one per product), then save this one again; or save it "
            "with active false",
            field="active",
        )


def stored_rule_problems(db: Session, rule: MerchRule) -> list[str]:
    """What a stored rule holds that a rule saved now is refused for (it may have been saved
    before the check existed): a boost's or bury's factor out of range, a value, SKU or
    segment that names nothing. Empty for a rule that is fine."""
    problems = []
    factor = factor_problem(rule.action, rule.factor)
    if factor is not None:
        problems.append(factor)
    settings = {name: getattr(rule, name) for name in RULE_SETTINGS}
    problems.extend(why for _, why in target_problems(db, settings))
    return problems


def get_rule(db: Session, *, rule_id: int) -> MerchRule:
    rule = db.get(MerchRule, rule_id)
    if rule is None:
        raise _no_rule(db, rule_id)
    return rule


def _no_rule(db: Session, rule_id: int) -> NotFound:
    """404 for a rule that is not there: one deleted says so (its changes stay readable)."""
    deleted = db.scalar(
        select(MerchRuleChange.id).where(
            MerchRuleChange.rule_id == rule_id, MerchRuleChange.change == "deleted"
        )
    )
    if deleted is not None:
        return NotFound(
            f"rule {rule_id} was deleted; its changes are still listed", field="rule_id"
        )
    return NotFound(f"rule {rule_id} not found", field="rule_id")


def _check_targets(db: Session, rule: RuleIn) -> None:
    """A rule naming a product, an attribute value or a segment that does not exist would
    never apply, silently (a mistyped SKU pins nothing, a mistyped filter value empties every
    shelf): refused, naming the field, every such field in the problem's ``errors``."""
    problems = target_problems(db, rule.model_dump())
    if problems:
        field, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InvalidInput(
            f"{message}{more}",
            field=field,
            errors=[field_error(("body", name), why, "not_found") for name, why in problems],
        )


def target_problems(db: Session, settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each setting of a rule that names what does not exist, as ``(field, why)``: a
    ``value`` no product has for its ``attribute``, a ``sku`` not in the catalogue, a
    ``segment`` that is none. ``settings`` may be a rule still being written (a form's text,
    a setting missing or one its action refuses): what is not there, or refused, is not
    looked up, so a form can say these beside the rule's own problems in one go."""
    refused = NOT_TAKEN.get(str(settings.get("action")), {})

    def given(name: str) -> str | None:
        value = settings.get(name)
        return value if isinstance(value, str) and value.strip() and name not in refused else None

    problems: list[tuple[str, str]] = []
    attribute, value, sku, segment = (
        given(name) for name in ("attribute", "value", "sku", "segment")
    )
    if attribute is not None and attribute in get_args(Attribute) and value is not None:
        wrong = _value_problem(db, attribute, rule_value(attribute, value))
        if wrong is not None:
            problems.append(("value", wrong))
    if sku is not None and not catalog.get_products(db, skus=[sku.strip()]):
        problems.append(
            ("sku", f"No product {sku!r} in the catalogue: check the SKU, or add the product first")
        )
    if segment is not None:
        tiers = [tier.id for tier in tier_policy(db).tiers]
        if segment.strip() not in {CUSTOMERS, ANONYMOUS, *tiers}:
            problems.append(
                (
                    "segment",
                    f"No segment {segment!r}: use {CUSTOMERS}, {ANONYMOUS} or a loyalty tier id "
                    f"({', '.join(tiers)})",
                )
            )
    return problems


def _value_problem(db: Session, attribute: str, value: str) -> str | None:
    """Why an attribute value no product has is refused, naming the closest that some do
    (values are compared as written: case counts, as it does when rules are applied); None
    when some product has it."""
    if not value or catalog.has_attribute_value(db, attribute=attribute, value=value):
        return None
    known = catalog.attribute_values(db, attribute=attribute)
    same_case = [v for v in known if v.casefold() == value.strip().casefold()]
    close = same_case or difflib.get_close_matches(value, known, n=3, cutoff=0.6)
    named = attribute.replace("_", " ")
    if same_case:
        hint = f"values are compared as written (case counts): use {same_case[0]!r}"
    elif close:
        hint = "closest: " + ", ".join(repr(v) for v in close)
    elif known:
        hint = "some that exist: " + ", ".join(repr(v) for v in known[:5])
    else:
        hint = f"no product has a {named} yet"
    return (
        f"No product in the catalogue has {named} {value!r}, so the rule would match nothing; "
        f"{hint}"
    )


def create_rule(
    db: Session, *, rule: RuleIn, by: str, before_commit: BeforeCommit | None = None
) -> MerchRule:
    _check_targets(db, rule)
    _check_room(db, rule)
    now = clock.now()
    row = MerchRule(
        **rule.model_dump(), created_by=by, created_at=now, updated_by=by, updated_at=now
    )
    db.add(row)
    db.flush()
    _record_change(db, row, "created", by, None)
    if before_commit is not None:
        before_commit(db, row)
    db.commit()
    return row


def update_rule(
    db: Session,
    *,
    rule_id: int,
    rule: RuleIn,
    by: str,
    before_commit: BeforeCommit | None = None,
) -> MerchRule:
    row = get_rule(db, rule_id=rule_id)
    _check_targets(db, rule)
    _check_room(db, rule, was_active=row.active)
    before = _snapshot(row)
    for name, value in rule.model_dump().items():
        if getattr(row, name) != value:  # the same instant at another offset is no change
            setattr(row, name, value)
    # A save that changes nothing is no change: no audit entry, and who changed the rule last
    # stays who did.
    if _snapshot(row) != before:
        row.updated_by, row.updated_at = by, clock.now()
        db.flush()
        _record_change(db, row, "updated", by, before)
    if before_commit is not None:
        before_commit(db, row)
    db.commit()
    return row


def delete_rule(db: Session, *, rule_id: int, by: str) -> None:
    row = get_rule(db, rule_id=rule_id)
    before = _snapshot(row)
    _record_change(db, row, "deleted", by, before)
    db.execute(delete(MerchRule).where(MerchRule.id == rule_id))
    db.commit()


def rule_changes(
    db: Session, *, rule_id: int | None = None, limit: int = 100
) -> list[MerchRuleChange]:
    """The newest changes first, of one rule or of all. A rule's changes outlive it (the
    audit keeps a deleted rule's); a rule that never existed is 404 naming ``rule_id``."""
    query = select(MerchRuleChange).order_by(MerchRuleChange.id.desc()).limit(limit)
    if rule_id is not None:
        query = query.where(MerchRuleChange.rule_id == rule_id)
    changes = list(db.scalars(query))
    if rule_id is not None and not changes and db.get(MerchRule, rule_id) is None:
        raise NotFound(f"rule {rule_id} not found", field="rule_id")
    return changes


# ------------------------------------------------------------------------------ training


class NothingToLearn(Exception):
    """:func:`train_model` found no purchase to learn from (no orders yet, or every one
    cancelled or returned): it recorded nothing, and the model served (or none:
    ``model_version: null``) stays."""


def _training_data(db: Session, until: datetime) -> tuple[list[Purchase], list[ProductFacts]]:
    purchases = [
        Purchase(
            basket=line.order_id,
            customer_id=line.customer_id,
            sku=line.sku,
            at=line.placed_at,
            store_id=line.store_id,
            channel=line.channel,
        )
        for line in orders.purchase_lines(db, until=until)
    ]
    if not purchases:
        raise NothingToLearn(
            "no purchases to learn from (no orders yet, or every one cancelled or returned)"
        )
    products: list[ProductFacts] = []
    after: str | None = None
    while page := catalog.list_products(db, after_sku=after, limit=1000):
        products.extend(
            ProductFacts(
                sku=p.sku,
                name=p.name,
                category_path=p.category_path,
                brand=p.brand,
                price_minor=p.price_minor,
                cost_minor=p.cost_minor,
                country=p.country_of_origin,
            )
            for p in page
        )
        after = page[-1].sku
    return purchases, products


def _segments_of_customers(db: Session, purchases: Sequence[Purchase]) -> dict[str, str]:
    """Each buying customer's loyalty tier (the base tier without a standing)."""
    standings = tiers_by_customer(db)
    base = tier_policy(db).tier(None).id
    return {
        p.customer_id: standings.get(p.customer_id, base)
        for p in purchases
        if p.customer_id is not None
    }


def train_model(
    db: Session, *, data_dir: Path, trained_by: str, now: datetime | None = None
) -> ModelVersion:
    """Learn a new model version from every purchase so far, with the blend's weights chosen
    and measured on the history's last weeks (``metrics``: per protocol, each part's and the
    served blend's Recall@20), save it, and make it the one served. With no purchase to learn
    from it raises :class:`NothingToLearn` and records nothing: an empty model would answer a
    version with no items, where storefronts wait for ``model_version: null``."""
    started = time.perf_counter()
    moment = now or clock.now()
    # Read without SQLite's write lock (training takes seconds to minutes), then end that
    # read before recording the version.
    read_only(db)
    try:
        purchases, products = _training_data(db, moment)
    except NothingToLearn:
        db.rollback()
        raise
    segments = _segments_of_customers(db, purchases)
    db.rollback()
    version = f"{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    bundle = build(
        purchases,
        products,
        version=version,
        now=moment,
        blend_params=DEFAULT_BLEND,
        segments=segments,
    )
    directory = models_directory(data_dir)
    bundle.save(directory / f"{version}.npz")
    row = ModelVersion(
        version=version,
        trained_at=moment,
        file_name=f"{version}.npz",
        customers=len(bundle.data.users),
        items=len(bundle.data.items),
        purchases=len(purchases),
        train_seconds=round(time.perf_counter() - started, 3),
        params=dict(bundle.blend.params),
        metrics=bundle.metrics,
        trained_by=trained_by,
    )
    db.add(row)
    db.commit()
    make_current(directory, version)
    holder(data_dir).swap(bundle)
    return row


# How people are shown the blend's parts and the two protocols (admin pages, command line).
PART_LABELS = {
    "own": "Own purchases",
    "knn": "Item-kNN",
    "ease": "EASE",
    "als": "ALS",
    "popular": "Popular",
    "upcf": "Customers like them",
}
PROTOCOL_LABELS = {"repeat": "repeats allowed", "discover": "new items only"}


def part_label(part: str) -> str:
    """A part's label; versions trained before the blend had parts name the customer's own
    items ``top_frequency``."""
    return PART_LABELS.get("own" if part == "top_frequency" else part, part)


# Fewer validation customers than this tell nothing of whether the blend finds more than its
# best part: a Recall@20 on n customers is uncertain by up to 1.96 x 0.5 / sqrt(n), 4.4 points
# at 500, and the weights were chosen on those same customers (the gain is in-sample).
VERDICT_CUSTOMERS = 500


@dataclass(frozen=True)
class Measured:
    """One protocol's figures for a model version, on its validation window."""

    protocol: str
    served: float | None  # the blend served, Recall@20
    best_part: str | None
    best_part_recall: float | None
    weights: dict[str, float]
    parts: dict[str, float]
    customers: int | None


def measured(version: ModelVersion) -> dict[str, Measured]:
    """What a version's metrics say per protocol (``repeat``, ``discover``). Versions trained
    before the weights were tuned at training recorded the blend with repeats only."""
    metrics = version.metrics or {}
    found: dict[str, Measured] = {}
    for protocol in ("repeat", "discover"):
        figures = metrics.get(protocol)
        if isinstance(figures, dict):
            parts = {k: float(v) for k, v in (figures.get("parts") or {}).items()}
            best = figures.get("best_part")
            found[protocol] = Measured(
                protocol=protocol,
                served=figures.get("served"),
                best_part=best,
                best_part_recall=parts.get(best) if best else None,
                weights=dict(figures.get("weights") or {}),
                parts=parts,
                customers=figures.get("users"),
            )
    legacy = metrics.get("rapport")
    if "repeat" not in found and isinstance(legacy, dict):
        baseline = metrics.get("top_frequency", {})
        found["repeat"] = Measured(
            protocol="repeat",
            served=legacy.get("recall@20"),
            best_part="top_frequency" if baseline else None,
            best_part_recall=baseline.get("recall@20"),
            weights={},
            parts={},
            customers=None,
        )
    return found


def unmeasured_reason(version: ModelVersion) -> str | None:
    """Why training could not measure ``version`` on the history's last weeks (it then serves
    the default weights), or ``None`` when it did (or the version predates the check)."""
    metrics = version.metrics or {}
    if metrics.get("measured") is not False:
        return None
    return str(metrics.get("reason") or "the history was too short")


def queue_training(db: Session, *, by: str, before_commit: BeforeCommit | None = None) -> Job:
    """Queue a training run for the worker, unless one is already queued or running.
    ``before_commit`` runs last in the transaction, with the job."""
    job = jobs.pending(db, kind=TRAIN_JOB) or jobs.enqueue(db, kind=TRAIN_JOB, payload={"by": by})
    if before_commit is not None:
        before_commit(db, job)
    db.commit()
    return job


def make_current(directory: Path, version: str) -> None:
    """Name ``version`` in ``CURRENT`` with one atomic rename: serving processes switch to it
    within a second."""
    partial = directory / f".{POINTER}.partial"
    partial.write_text(version + "\n")
    os.replace(partial, directory / POINTER)


def trained_since(db: Session, *, since: datetime) -> bool:
    """Whether some model version was trained at or after ``since``."""
    found = db.scalar(select(ModelVersion.version).where(ModelVersion.trained_at >= since).limit(1))
    return found is not None


def list_versions(db: Session, *, limit: int = 50) -> list[ModelVersion]:
    return list(
        db.scalars(select(ModelVersion).order_by(ModelVersion.trained_at.desc()).limit(limit))
    )


# ------------------------------------------------------------------------------ privacy
# The recommendations domain's part of export and erasure (rapport.flows.privacy). It keeps no
# table about a customer: models are trained from orders (kept under the random customer id)
# into files that name customers by that id only, and an erased customer has no consent, so
# they are only ever served the non-personal ranking.

PRIVACY_TABLES: tuple[str, ...] = ()


def export_customer_data(db: Session, *, subject: PrivacySubject) -> dict[str, Any]:
    """Whether recommendations are personal for the customer, and the segments that the
    merchandising rules see them in."""
    personal = customers.has_consent(db, customer_id=subject.customer_id, purpose="personalization")
    return {
        "recommendations": {
            "personalized": personal,
            "segments": sorted(_segments(db, subject.customer_id, personal=personal)),
        }
    }


def erase_customer_data(db: Session, *, subject: PrivacySubject) -> None:
    return None
