"""Stores for audiences: which stores lie within a distance of a point, exactly at the edge."""

from __future__ import annotations

import math

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from tests.campaigns.segments.factories import make_stores


def _north_of(lat: float, lon: float, km: float) -> tuple[float, float]:
    return lat + math.degrees(km / 6371.0), lon


def test_stores_within_a_radius_and_their_coordinates(db: Session) -> None:
    centre = (48.8566, 2.3522)
    make_stores(db, {"st-in": _north_of(*centre, 49.9), "st-out": _north_of(*centre, 50.1)})
    within = catalog.stores_within(latitude=centre[0], longitude=centre[1], radius_km=50)
    assert {str(store_id) for store_id in db.scalars(within)} == {"st-in"}
    coordinates = {sid: (lat, lon) for sid, lat, lon in catalog.store_coordinates(db)}
    assert set(coordinates) == {"st-in", "st-out"}
