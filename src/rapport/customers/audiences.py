"""Customers as audiences: SELECTs of customer ids over profiles, traits, consent and RFM scores,
for other domains to combine in SQL (campaigns' segments). Nothing here loops over customers
in Python: each function returns a ``Select[tuple[str]]`` the caller nests as a subquery.

Distances are great-circle distances (haversine) computed in SQL, with a latitude/longitude
bounding box first so an index on the coordinates does most of the work."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    and_,
    case,
    cast,
    event,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from rapport.customers.models import Consent, Customer, CustomerTraits, RfmBoundaries
from rapport.customers.traits import monetary_metric

EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0

# Trait fields an audience may compare, by the kind of comparison they take.
NUMERIC_TRAITS = ("order_count", "spend_minor", "event_count")
DATE_TRAITS = ("last_order_at", "first_order_at", "last_seen_at", "first_seen_at")
PROFILE_TEXT_FIELDS = ("locale", "home_city", "time_zone")
Comparison = Literal["eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "contains"]
LocationSource = Literal["last_location", "home"]


CustomerIds = Select[tuple[str]]


def as_customer_ids(query: Select[Any]) -> CustomerIds:
    """A one-column SELECT of customer ids, typed as the audiences' common shape."""
    return typed(CustomerIds, query)


# --- SQLite without math functions --------------------------------------------------------
# The distance needs cos(); PostgreSQL has it and so do most SQLite builds. Where the sqlite3
# library was built without them, every new SQLite connection gets Python's.


def _sqlite_has_math() -> bool:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("SELECT cos(0)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def _add_sqlite_math(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("cos", 1, math.cos, deterministic=True)


if not _sqlite_has_math():  # pragma: no cover - depends on how sqlite3 was built
    event.listen(Engine, "connect", _add_sqlite_math)


# --- the population -----------------------------------------------------------------------


def active_audience(*, excluding: Select[tuple[str]] | None = None) -> CustomerIds:
    """Every customer still in use: neither erased nor merged into another profile (and, with
    ``excluding``, not among those customer ids)."""
    query = select(Customer.customer_id).where(Customer.status == "active")
    if excluding is not None:
        query = query.where(Customer.customer_id.not_in(excluding))
    return as_customer_ids(query)


def any_of(parts: Sequence[CustomerIds]) -> CustomerIds:
    """Customers in at least one of ``parts`` (an OR of IN tests, which every database
    plans as hashed or indexed semi-joins)."""
    if not parts:
        return as_customer_ids(select(Customer.customer_id).where(false()))
    if len(parts) == 1:
        return parts[0]
    return as_customer_ids(
        select(Customer.customer_id).where(or_(*(Customer.customer_id.in_(p) for p in parts)))
    )


def is_active_customer() -> ColumnElement[bool]:
    """The condition ``active_audience`` applies, for callers filtering ``Customer`` rows."""
    return Customer.status == "active"


# --- consent ------------------------------------------------------------------------------


def consent_audience(*, purpose: str) -> CustomerIds:
    """Customers who have granted consent for ``purpose`` (and not withdrawn it)."""
    return as_customer_ids(
        select(Consent.customer_id).where(Consent.purpose == purpose, Consent.granted.is_(True))
    )


# --- traits -------------------------------------------------------------------------------


def _compare(column: Any, op: Comparison, value: Any) -> ColumnElement[bool]:
    if op == "eq":
        return column == value  # type: ignore[no-any-return]
    if op == "ne":
        return column != value  # type: ignore[no-any-return]
    if op == "lt":
        return column < value  # type: ignore[no-any-return]
    if op == "lte":
        return column <= value  # type: ignore[no-any-return]
    if op == "gt":
        return column > value  # type: ignore[no-any-return]
    if op == "gte":
        return column >= value  # type: ignore[no-any-return]
    if op == "between":
        low, high = value
        return and_(column >= low, column <= high)
    if op == "in":
        return column.in_(list(value))  # type: ignore[no-any-return]
    raise ValueError(f"comparison {op!r} does not apply here")


def _days_ago(column: Any, op: Comparison, value: Any, now: datetime) -> ColumnElement[bool]:
    """Compare whole days since ``column`` (as the 360 shows them: 3.9 days ago is 3) by
    turning each bound into a moment, so the column's index applies on every database."""
    day = timedelta(days=1)

    def at_most(days: int) -> ColumnElement[bool]:  # floor(days ago) <= days
        return column > now - (days + 1) * day  # type: ignore[no-any-return]

    def at_least(days: int) -> ColumnElement[bool]:  # floor(days ago) >= days
        return column <= now - days * day  # type: ignore[no-any-return]

    if op == "lte":
        return at_most(int(value))
    if op == "lt":
        return at_most(int(value) - 1)
    if op == "gte":
        return at_least(int(value))
    if op == "gt":
        return at_least(int(value) + 1)
    if op == "eq":
        return and_(at_least(int(value)), at_most(int(value)))
    if op == "ne":
        return or_(at_most(int(value) - 1), at_least(int(value) + 1))
    if op == "between":
        low, high = value
        return and_(at_least(int(low)), at_most(int(high)))
    raise ValueError(f"comparison {op!r} does not apply to days ago")


def _json_array_contains(db: Session, column: Any, value: str) -> ColumnElement[bool]:
    if db.get_bind().dialect.name == "postgresql":
        wanted = cast(literal(json.dumps([value])), postgresql.JSONB)
        return column.op("@>")(wanted)  # type: ignore[no-any-return]
    element = func.json_each(column).table_valued("value").alias("element")
    return select(literal(1)).select_from(element).where(element.c.value == value).exists()


def spend_in(currency: str) -> ColumnElement[int]:
    """A customer's net spend in ``currency``'s minor units, in SQL: their entry of
    ``customer_traits.spend_by_currency``, 0 without one (orders in other currencies never
    count: there is no exchange rate)."""
    return func.coalesce(CustomerTraits.spend_by_currency[currency].as_integer(), 0)


def trait_audience(
    db: Session,
    *,
    field: str,
    op: Comparison,
    value: Any,
    now: datetime,
    currency: str | None = None,
) -> CustomerIds:
    """Customers whose trait ``field`` compares to ``value`` with ``op``.

    - counts and money (``order_count``, ``spend_minor``, ``event_count``): numbers;
      ``spend_minor`` is the spend in ``currency`` (the shop's) only, which it requires;
    - moments (``last_order_at`` ...): whole days ago (``lte`` 30: in the last 30 days);
      customers without the moment never match;
    - ``channels``: ``contains`` a channel (web, app, store ...);
    - ``locale``, ``home_city``, ``time_zone``: text, ``eq``/``ne``/``in``;
    - ``attributes.<name>``: a CRM attribute or custom trait, compared by its JSON type (see
      :func:`_attribute_matches`).
    """
    traits = select(CustomerTraits.customer_id)
    profiles = select(Customer.customer_id)
    if field == "spend_minor":
        if currency is None:
            raise ValueError("spend is compared in a currency")
        return as_customer_ids(traits.where(_compare(spend_in(currency), op, value)))
    if field in NUMERIC_TRAITS:
        return as_customer_ids(traits.where(_compare(getattr(CustomerTraits, field), op, value)))
    if field in DATE_TRAITS:
        column = getattr(CustomerTraits, field)
        return as_customer_ids(traits.where(column.is_not(None), _days_ago(column, op, value, now)))
    if field == "channels":
        if op != "contains":
            raise ValueError("channels take 'contains'")
        return as_customer_ids(
            traits.where(_json_array_contains(db, CustomerTraits.channels, str(value)))
        )
    if field in PROFILE_TEXT_FIELDS:
        wanted = [str(v) for v in value] if op == "in" else str(value)
        return as_customer_ids(profiles.where(_compare(getattr(Customer, field), op, wanted)))
    if field.startswith("attributes."):
        name = field.removeprefix("attributes.")
        return as_customer_ids(profiles.where(_attribute_matches(db, name, op, value)))
    raise ValueError(f"unknown trait {field!r}")


_SQLITE_JSON_TYPES = {
    "number": ("integer", "real"),
    "string": ("text",),
    "boolean": ("true", "false"),
}


def _attribute_matches(db: Session, name: str, op: Comparison, value: Any) -> ColumnElement[bool]:
    """A custom trait or CRM attribute compared by its JSON type, alike on both databases: a
    number with a number (``eq`` ... ``between``: ``age`` ``gte`` 30), text with text, a
    boolean with a boolean (``eq``/``ne``/``in``). A profile without the attribute, or with a
    value of another type, never matches; ``ne`` matches those that have it, otherwise."""
    postgres = db.get_bind().dialect.name == "postgresql"
    item = Customer.attributes[name]
    path = '$."' + name.replace('"', '""') + '"'

    def json_type() -> ColumnElement[Any]:
        if postgres:
            return func.jsonb_typeof(item)
        return func.json_type(Customer.attributes, path)

    def of_type(kind: str) -> ColumnElement[bool]:
        if postgres:
            return json_type() == kind
        return json_type().in_(_SQLITE_JSON_TYPES[kind])

    # Inside CASE: PostgreSQL would refuse to cast 'gold' to a number.
    number = case((of_type("number"), item.as_float()), else_=None)

    def equals(wanted: Any) -> ColumnElement[bool]:
        if isinstance(wanted, bool):
            if postgres:
                return and_(of_type("boolean"), item.as_string() == str(wanted).lower())
            return json_type() == str(wanted).lower()
        if isinstance(wanted, int | float):
            return number == wanted
        text = case((of_type("string"), item.as_string()), else_=None)
        return text == str(wanted)

    if op == "eq":
        return equals(value)
    if op == "ne":
        return and_(json_type().is_not(None), ~equals(value))
    if op == "in":
        return or_(*(equals(wanted) for wanted in value))
    return _compare(number, op, value)


# --- RFM ----------------------------------------------------------------------------------


def _score(column: Any, boundaries: list[float]) -> ColumnElement[int]:
    """1 + how many boundaries the value reaches: ``bisect_right(boundaries, value) + 1``, as
    the 360's scores are computed."""
    score: ColumnElement[int] = literal(1)
    for boundary in boundaries:
        score = score + case((column >= boundary, 1), else_=0)
    return score


def rfm_audience(
    db: Session,
    *,
    recency: tuple[int, int] | None = None,
    frequency: tuple[int, int] | None = None,
    monetary: tuple[int, int] | None = None,
    now: datetime,
    currency: str,
) -> CustomerIds:
    """Customers whose RFM scores (1-5, 5 best, against the population's stored quintile
    boundaries) lie in the given inclusive ranges. Without boundaries (never computed) or an
    order, a customer has no scores and matches nothing. Monetary is the spend in
    ``currency`` (the shop's) against everyone's spend in it (``monetary.<currency>``)."""
    stored = {row.metric: list(row.boundaries) for row in db.scalars(select(RfmBoundaries))}
    query = select(CustomerTraits.customer_id).where(
        CustomerTraits.order_count > 0, CustomerTraits.last_order_at.is_not(None)
    )
    if not stored:
        return as_customer_ids(query.where(false()))
    if recency is not None:
        # recency score = 6 - (1 + boundaries reached by the days since the last order);
        # "days since >= b" is "last order at or before now - b days".
        reached: ColumnElement[int] = literal(0)
        for boundary in stored.get("recency_days", []):
            moment = now - timedelta(days=float(boundary))
            reached = reached + case((CustomerTraits.last_order_at <= moment, 1), else_=0)
        score = 5 - reached
        query = query.where(score >= recency[0], score <= recency[1])
    if frequency is not None:
        score = _score(CustomerTraits.order_count, stored.get("frequency", []))
        query = query.where(score >= frequency[0], score <= frequency[1])
    if monetary is not None:
        score = _score(spend_in(currency), stored.get(monetary_metric(currency), []))
        query = query.where(score >= monetary[0], score <= monetary[1])
    return as_customer_ids(query)


# --- stores -------------------------------------------------------------------------------


class PreferredStore(ColumnElement[str]):
    """The customer's most visited store (ties: the smaller id), as the 360 names it: the top
    key of ``customer_traits.store_counts``, a scalar subquery over the JSON object's entries
    (``jsonb_each_text`` on PostgreSQL, ``json_each`` on SQLite)."""

    inherit_cache = True
    type = String()

    def __init__(self, counts: Any) -> None:
        self.counts = counts


@compiles(PreferredStore, "postgresql")
def _preferred_store_postgresql(element: PreferredStore, compiler: Any, **kw: Any) -> str:
    counts = compiler.process(element.counts, **kw)
    return (
        f"(SELECT visit.key FROM jsonb_each_text({counts}) AS visit "
        "ORDER BY visit.value::bigint DESC, visit.key LIMIT 1)"
    )


@compiles(PreferredStore)
def _preferred_store_sqlite(element: PreferredStore, compiler: Any, **kw: Any) -> str:
    counts = compiler.process(element.counts, **kw)
    return (
        f"(SELECT visit.key FROM json_each({counts}) AS visit "
        "ORDER BY visit.value DESC, visit.key LIMIT 1)"
    )


def preferred_store_audience(*, store_ids: Sequence[str] | Select[Any]) -> CustomerIds:
    """Customers whose preferred (most visited) store is one of ``store_ids`` (a list, or a
    SELECT of store ids such as ``catalog.service.stores_within``)."""
    wanted = list(store_ids) if not isinstance(store_ids, Select) else store_ids
    if isinstance(wanted, list) and not wanted:
        return as_customer_ids(select(CustomerTraits.customer_id).where(false()))
    return as_customer_ids(
        select(CustomerTraits.customer_id).where(
            CustomerTraits.store_counts.is_not(None),
            PreferredStore(CustomerTraits.store_counts).in_(wanted),
        )
    )


def _haversine_term(
    lat_column: Any, lon_column: Any, latitude: float, longitude: float
) -> ColumnElement[Any]:
    """The haversine formula's ``a`` (0 same place .. 1 antipodes), with cos only:
    sin²(x/2) = (1 - cos x)/2. Distance grows with it, so comparing ``a`` compares distances."""
    to_rad = math.pi / 180.0
    d_lat = (lat_column - latitude) * to_rad
    d_lon = (lon_column - longitude) * to_rad
    return (1 - func.cos(d_lat)) / 2 + math.cos(latitude * to_rad) * func.cos(
        lat_column * to_rad
    ) * (1 - func.cos(d_lon)) / 2


def within_radius(
    lat_column: Any, lon_column: Any, *, latitude: float, longitude: float, radius_km: float
) -> ColumnElement[bool]:
    """Whether the point in the two columns lies within ``radius_km`` of the given point, on a
    sphere of radius 6371 km: a bounding box first (index-friendly), then the exact test
    ``a <= sin²(r / 2R)``, which needs neither asin nor sqrt."""
    if radius_km >= math.pi * EARTH_RADIUS_KM:
        return and_(lat_column.is_not(None), lon_column.is_not(None))
    angular = radius_km / EARTH_RADIUS_KM
    threshold = math.sin(angular / 2) ** 2
    d_lat = math.degrees(angular)
    conditions: list[ColumnElement[bool]] = [
        lat_column >= latitude - d_lat,
        lat_column <= latitude + d_lat,
        lon_column.is_not(None),
    ]
    if abs(latitude) + d_lat < 90:
        # The widest longitude span of a circle on a sphere (it touches no pole).
        d_lon = math.degrees(
            math.asin(min(1.0, math.sin(angular) / math.cos(math.radians(latitude))))
        )
        west, east = longitude - d_lon, longitude + d_lon
        if west < -180:
            conditions.append(or_(lon_column >= west + 360, lon_column <= east))
        elif east > 180:
            conditions.append(or_(lon_column >= west, lon_column <= east - 360))
        else:
            conditions.append(and_(lon_column >= west, lon_column <= east))
    conditions.append(_haversine_term(lat_column, lon_column, latitude, longitude) <= threshold)
    return and_(*conditions)


def near_audience(
    *,
    latitude: float,
    longitude: float,
    radius_km: float,
    use: Sequence[LocationSource] = ("last_location", "home"),
) -> CustomerIds:
    """Customers within ``radius_km`` of a point by their last known location or their home
    point, either only while they consent to ``location`` (a point is a location, however it
    was stored: no choice on record is no)."""
    parts: list[CustomerIds] = []
    if "last_location" in use:
        parts.append(
            as_customer_ids(
                select(CustomerTraits.customer_id).where(
                    within_radius(
                        CustomerTraits.last_latitude,
                        CustomerTraits.last_longitude,
                        latitude=latitude,
                        longitude=longitude,
                        radius_km=radius_km,
                    ),
                    CustomerTraits.customer_id.in_(consent_audience(purpose="location")),
                )
            )
        )
    if "home" in use:
        parts.append(
            as_customer_ids(
                select(Customer.customer_id).where(
                    within_radius(
                        Customer.home_latitude,
                        Customer.home_longitude,
                        latitude=latitude,
                        longitude=longitude,
                        radius_km=radius_km,
                    ),
                    Customer.customer_id.in_(consent_audience(purpose="location")),
                )
            )
        )
    return any_of(parts)


def nearest_store_audience(
    *, store_id: str, stores: Sequence[tuple[str, float, float]]
) -> CustomerIds:
    """Customers whose home is nearer to ``store_id`` than to any other of ``stores``
    ((id, latitude, longitude) of every store with coordinates; ties go to the smaller id),
    only while they consent to ``location``, as :func:`near_audience` (a home point is a
    location: one who refused or never chose is in no store's audience)."""
    by_id = {sid: (lat, lon) for sid, lat, lon in stores}
    if store_id not in by_id:
        return as_customer_ids(select(Customer.customer_id).where(false()))
    lat, lon = by_id[store_id]
    own = _haversine_term(Customer.home_latitude, Customer.home_longitude, lat, lon)
    conditions: list[ColumnElement[bool]] = [
        Customer.home_latitude.is_not(None),
        Customer.home_longitude.is_not(None),
        Customer.customer_id.in_(consent_audience(purpose="location")),
    ]
    for other_id, other_lat, other_lon in stores:
        if other_id == store_id:
            continue
        other = _haversine_term(
            Customer.home_latitude, Customer.home_longitude, other_lat, other_lon
        )
        conditions.append(own < other if other_id < store_id else own <= other)
    return as_customer_ids(select(Customer.customer_id).where(and_(true(), *conditions)))
