"""A segment as SQL: each condition becomes a SELECT of customer ids built by the domain that
owns the data (``customers``, ``orders``, ``loyalty``, ``events``, ``catalog`` faces), and the
segment is one statement over the active customers with an IN (or NOT IN) test per condition,
joined by AND (match all) or OR (match any). Nothing loops over customers in Python."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from rapport.campaigns.segments.conditions import (
    PROFILING_PURPOSE,
    BoughtCategoryCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    MembershipCondition,
    NearCondition,
    PAliveCondition,
    PredictedValueCondition,
    RfmCondition,
    SegmentDefinition,
    SpentMoreThanCondition,
    StoreCondition,
    TierCondition,
    TraitCondition,
    ValueTierCondition,
    is_behavioural,
)
from rapport.catalog import service as catalog
from rapport.customers import service as customers
from rapport.events import service as events
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import InvalidInput

CustomerIds = customers.CustomerIds
LOCATION_SOURCES = ("last_location", "home", "home_store")
SAMPLE_LIMIT = 50


@dataclass(frozen=True)
class _Part:
    """One condition as SQL: the customer ids it names, and whether the segment wants them
    (``exclude`` false) or everyone else (``exclude`` true: "did not", "has not granted").
    ``alternatives`` are ORed on the segment's own scan of customers (a distance by last
    location or by home), so no extra pass over customers unites them first."""

    ids: CustomerIds
    exclude: bool = False
    alternatives: tuple[CustomerIds, ...] = ()

    def test(
        self, column: ColumnElement[str], *, among: Sequence[str] | None = None
    ) -> ColumnElement[bool]:
        """The condition on the segment's customer id column; with ``among``, each inner
        SELECT is cut to those ids first (the processor's batch), so it reads a few rows
        through its indexes instead of its whole set."""

        def cut(ids: CustomerIds) -> CustomerIds:
            if among is None:
                return ids
            inner = ids.subquery()
            return customers.as_customer_ids(select(inner.c[0]).where(inner.c[0].in_(list(among))))

        if self.alternatives:
            return or_(*(column.in_(cut(ids)) for ids in self.alternatives))
        return column.not_in(cut(self.ids)) if self.exclude else column.in_(cut(self.ids))


def near_point_query(
    *,
    latitude: float,
    longitude: float,
    radius_km: float,
    use: Sequence[str] = LOCATION_SOURCES,
) -> CustomerIds:
    """Customers within ``radius_km`` of a point (great-circle distance) by their last known
    location (only with location consent), their home address, and/or their home store (the
    store they visit most) — each source named in ``use``. Active customers only."""
    query = customers.active_audience()
    column = query.selected_columns[0]
    parts = _near_parts(latitude=latitude, longitude=longitude, radius_km=radius_km, use=use)
    return query.where(or_(*(column.in_(part) for part in parts)))


def _near_parts(
    *, latitude: float, longitude: float, radius_km: float, use: Sequence[str]
) -> list[CustomerIds]:
    """One SELECT of customer ids per location source in ``use``."""
    unknown = [source for source in use if source not in LOCATION_SOURCES]
    if unknown:
        raise InvalidInput(
            f"Unknown location source {unknown[0]!r}; known: {', '.join(LOCATION_SOURCES)}",
            field="use",
        )
    parts: list[CustomerIds] = []
    for source in ("last_location", "home"):
        if source in use:
            parts.append(
                customers.near_audience(
                    latitude=latitude,
                    longitude=longitude,
                    radius_km=radius_km,
                    use=[source],
                )
            )
    if "home_store" in use:
        nearby_stores = catalog.stores_within(
            latitude=latitude, longitude=longitude, radius_km=radius_km
        )
        # The store they visit most is read from their history: with personalization only.
        home_store = customers.preferred_store_audience(store_ids=nearby_stores)
        parts.append(profiling_allowed(home_store))
    return parts


def profiling_allowed(ids: CustomerIds) -> CustomerIds:
    """``ids`` cut to the customers who have granted ``personalization``: only they may be
    picked by what they bought, browsed or visited."""
    inner = ids.subquery()
    column = inner.c[0]
    return customers.as_customer_ids(
        select(column).where(column.in_(customers.consent_audience(purpose=PROFILING_PURPOSE)))
    )


def _days_back(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


def _condition_part(db: Session, condition: Condition, *, now: datetime, index: int) -> _Part:
    if isinstance(condition, TraitCondition):
        if condition.field == "points_balance":
            return _Part(_points_part(condition, index))
        value = condition.value
        op = condition.op
        try:
            return _Part(
                customers.trait_audience(
                    db,
                    field=condition.field,
                    op=op,
                    value=value,
                    now=now,
                    # spend in the program's currency, as the builder types it
                    currency=loyalty.get_program(db).currency,
                )
            )
        except ValueError as error:
            raise InvalidInput(str(error), field=f"conditions.{index}.op") from None
    if isinstance(condition, ConsentCondition):
        return _Part(
            customers.consent_audience(purpose=condition.purpose), exclude=not condition.granted
        )
    if isinstance(condition, TierCondition):
        return _Part(loyalty.tier_audience(db, tier_ids=condition.tiers))
    if isinstance(condition, MembershipCondition):
        return _Part(
            loyalty.membership_audience(now=now, plan_ids=condition.plans),
            exclude=not condition.member,
        )
    if isinstance(condition, RfmCondition):
        return _Part(
            customers.rfm_audience(
                db,
                recency=condition.recency,
                frequency=condition.frequency,
                monetary=condition.monetary,
                now=now,
                currency=loyalty.get_program(db).currency,
            )
        )
    if isinstance(condition, PredictedValueCondition):
        return _Part(
            orders.value_audience(
                min_predicted_value_minor=condition.min_minor,
                max_predicted_value_minor=condition.max_minor,
            )
        )
    if isinstance(condition, ValueTierCondition):
        return _Part(orders.value_audience(value_tiers=list(condition.tiers)))
    if isinstance(condition, PAliveCondition):
        return _Part(orders.value_audience(min_p_alive=condition.min, max_p_alive=condition.max))
    if isinstance(condition, BoughtCategoryCondition):
        return _Part(
            orders.bought_in_categories(
                categories=[condition.category], since=_days_back(now, condition.days)
            )
        )
    if isinstance(condition, SpentMoreThanCondition):
        return _Part(
            orders.spent_audience(
                more_than_minor=condition.amount_minor,
                since=_days_back(now, condition.days),
                category=condition.category,
            )
        )
    if isinstance(condition, EventCondition):
        return _Part(
            events.did_event_audience(
                event_type=condition.type,
                since=_days_back(now, condition.days),
                at_least=condition.min_count,
            ),
            exclude=not condition.did,
        )
    if isinstance(condition, StoreCondition):
        if condition.by == "preferred":
            return _Part(customers.preferred_store_audience(store_ids=[condition.store_id]))
        stores = catalog.store_coordinates(db)
        if condition.store_id not in {store_id for store_id, _, _ in stores}:
            raise InvalidInput(
                f"No store {condition.store_id!r} with coordinates",
                field=f"conditions.{index}.store_id",
            )
        return _Part(customers.nearest_store_audience(store_id=condition.store_id, stores=stores))
    if isinstance(condition, NearCondition):
        latitude, longitude = condition.latitude, condition.longitude
        if condition.store_id is not None:
            store = catalog.get_store(db, store_id=condition.store_id)
            if store is None or store.latitude is None or store.longitude is None:
                raise InvalidInput(
                    f"No store {condition.store_id!r} with coordinates",
                    field=f"conditions.{index}.store_id",
                )
            latitude, longitude = store.latitude, store.longitude
        assert latitude is not None
        assert longitude is not None
        parts = _near_parts(
            latitude=latitude, longitude=longitude, radius_km=condition.radius_km, use=condition.use
        )
        return _Part(parts[0], alternatives=tuple(parts))
    raise InvalidInput(f"Unknown condition {condition!r}", field=f"conditions.{index}")


def _points_part(condition: TraitCondition, index: int) -> CustomerIds:
    value, op = condition.value, condition.op
    if op == "between" and isinstance(value, list):
        return loyalty.points_audience(at_least=int(value[0]), at_most=int(value[1]))
    if isinstance(value, list | str):
        raise InvalidInput("points_balance compares with a number", field=f"conditions.{index}")
    number = int(value)
    bounds: dict[str, tuple[int | None, int | None]] = {
        "eq": (number, number),
        "gte": (number, None),
        "gt": (number + 1, None),
        "lte": (None, number),
        "lt": (None, number - 1),
    }
    if op not in bounds:
        raise InvalidInput(
            "points_balance takes eq, lt, lte, gt, gte or between",
            field=f"conditions.{index}.op",
        )
    low, high = bounds[op]
    return loyalty.points_audience(at_least=low, at_most=high)


def segment_query(
    db: Session,
    definition: SegmentDefinition,
    *,
    now: datetime | None = None,
    customer_ids: Sequence[str] | None = None,
) -> CustomerIds:
    """The segment's customers as one SELECT of distinct active customer ids (neither erased
    nor merged), evaluated at ``now``; with ``customer_ids``, only among those (the event
    processor's batch). A behavioural condition (``conditions.is_behavioural``) holds only
    for customers who have granted ``personalization``: every count, member list, launch and
    trigger reads this one statement."""
    moment = now or clock.now()
    query = customers.active_audience()
    column = query.selected_columns[0]
    tests: list[ColumnElement[bool]] = []
    profiling: ColumnElement[bool] | None = None
    for index, condition in enumerate(definition.conditions):
        part = _condition_part(db, condition, now=moment, index=index)
        test = part.test(column, among=customer_ids)
        if is_behavioural(condition):
            # A behavioural condition (its "did not" too) never picks a customer without
            # personalization consent: it is false for them, whatever their history.
            if profiling is None:
                consent = _Part(customers.consent_audience(purpose=PROFILING_PURPOSE))
                profiling = consent.test(column, among=customer_ids)
            test = and_(profiling, test)
        tests.append(test)
    if tests:
        query = query.where(and_(*tests) if definition.match == "all" else or_(*tests))
    if customer_ids is not None:
        query = query.where(column.in_(list(customer_ids)))
    return query


@dataclass(frozen=True)
class SegmentPreview:
    """How many customers the segment holds now, and a few of them (names and addresses
    masked: enough to recognise the audience, not to copy it)."""

    count: int
    sample: list[dict[str, Any]]


def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` -> ``j•••@example.com``."""
    if not email:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return local[:1] + "•••"
    return f"{local[:1]}•••@{domain}"


def mask_name(first: str | None, last: str | None) -> str:
    """First name and the last name's initial: ``Jane D.``."""
    parts = [first or ""]
    if last:
        parts.append(f"{last[:1]}.")
    return " ".join(part for part in parts if part) or "—"


def customer_sample(db: Session, customer_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Masked name, masked email and loyalty tier of each of ``customer_ids``, in order."""
    sample: list[dict[str, Any]] = []
    for customer_id in customer_ids:
        customer = customers.get_customer(db, customer_id=customer_id)
        if customer is None:
            continue
        tier = loyalty.member_tier(db, customer_id=customer_id)
        sample.append(
            {
                "customer_id": customer_id,
                "name": mask_name(customer.first_name, customer.last_name),
                "email": mask_email(customer.email),
                "tier": tier.tier_name,
            }
        )
    return sample


def preview_segment(
    db: Session, definition: SegmentDefinition, *, sample: int = 10
) -> SegmentPreview:
    """The segment's live count and its first ``sample`` members (by customer id), without
    saving anything."""
    query = segment_query(db, definition).subquery()
    wanted = max(0, min(sample, SAMPLE_LIMIT))
    if wanted == 0:
        count = int(db.scalar(select(func.count()).select_from(query)) or 0)
        return SegmentPreview(count=count, sample=[])
    # One evaluation for both: the count over every row rides along the first few ids.
    rows = db.execute(
        select(query.c[0], func.count().over()).order_by(query.c[0]).limit(wanted)
    ).all()
    count = int(rows[0][1]) if rows else 0
    return SegmentPreview(count=count, sample=customer_sample(db, [str(r[0]) for r in rows]))


def keyset_batches(db: Session, query: CustomerIds, *, batch: int) -> Iterator[list[str]]:
    """``query``'s customer ids in id order, ``batch`` per round trip."""
    audience = query.subquery()
    column = audience.c[0]
    after: str | None = None
    while True:
        page = select(column).order_by(column).limit(batch)
        if after is not None:
            page = page.where(column > after)
        ids = [str(customer_id) for customer_id in db.scalars(page)]
        if not ids:
            return
        yield ids
        after = ids[-1]
