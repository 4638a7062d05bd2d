"""Stores for audiences: the SELECT of stores within a distance of a point, and every store's
coordinates, for other domains to place customers by store (campaigns' segments)."""

from __future__ import annotations

import math
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from rapport.catalog.models import Store

EARTH_RADIUS_KM = 6371.0


def stores_within(*, latitude: float, longitude: float, radius_km: float) -> Select[tuple[str]]:
    """Ids of the physical stores within ``radius_km`` of a point (great-circle distance on a
    sphere of 6371 km: the haversine ``a`` against sin²(r / 2R), with cos only). Stores are
    few, so there is no bounding box."""
    # cos() in SQL: PostgreSQL has it; SQLite builds without math functions get Python's
    # (rapport.customers.audiences registers it on every SQLite connection then).
    to_rad = math.pi / 180.0
    threshold = math.sin(min(math.pi, radius_km / EARTH_RADIUS_KM) / 2) ** 2
    a = (1 - func.cos((Store.latitude - latitude) * to_rad)) / 2 + math.cos(
        latitude * to_rad
    ) * func.cos(Store.latitude * to_rad) * (
        1 - func.cos((Store.longitude - longitude) * to_rad)
    ) / 2
    query = select(Store.store_id).where(
        Store.latitude.is_not(None), Store.longitude.is_not(None), a <= threshold
    )
    return cast("Select[tuple[str]]", query)


def store_coordinates(db: Session) -> list[tuple[str, float, float]]:
    """(store id, latitude, longitude) of every store that has coordinates, by id."""
    rows = db.execute(
        select(Store.store_id, Store.latitude, Store.longitude)
        .where(Store.latitude.is_not(None), Store.longitude.is_not(None))
        .order_by(Store.store_id)
    )
    return [(str(sid), float(lat or 0.0), float(lon or 0.0)) for sid, lat, lon in rows]
