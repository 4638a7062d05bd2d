"""Customers as audiences: the preferred store in SQL is the one the customer 360 names, and
distances hold at the edge in every direction."""

from __future__ import annotations

import math

import pytest
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import CustomerTraits
from rapport.customers.traits import trait_summary
from rapport.platform import clock
from tests.campaigns.segments.factories import make_customer, set_traits

VISITS = [
    {"st-a": 3, "st-b": 1},
    {"st-a": 2, "st-b": 2},  # a tie: the smaller id
    {"st-b": 5, "st-c": 4, "st-a": 5},
    {"st-c": 1},
    {"st-b": 10, "st-a": 9},
]


def test_the_preferred_store_in_sql_is_the_one_the_360_names(db: Session) -> None:
    people = []
    for visits in VISITS:
        person = make_customer(db, traits={"store_counts": visits})
        people.append(person)
    for store_id in ("st-a", "st-b", "st-c"):
        found = {
            str(c) for c in db.scalars(customers.preferred_store_audience(store_ids=[store_id]))
        }
        expected = {
            person
            for person in people
            if trait_summary(db.get(CustomerTraits, person), now=clock.now())["preferred_store_id"]  # type: ignore[arg-type]
            == store_id
        }
        assert found & set(people) == expected


def _point_at(lat: float, lon: float, km: float, bearing_deg: float) -> tuple[float, float]:
    d, b = km / 6371.0, math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


@pytest.mark.parametrize("centre", [(0.0, 0.0), (60.17, 24.94), (-33.87, 151.21), (89.5, 10.0)])
def test_home_distance_edges_hold_everywhere(db: Session, centre: tuple[float, float]) -> None:
    inside: list[str] = []
    outside: list[str] = []
    for bearing in range(0, 360, 45):
        for km, bucket in ((9.95, inside), (10.05, outside)):
            lat, lon = _point_at(*centre, km, bearing)
            bucket.append(
                make_customer(
                    db, consents={"location": True}, home_latitude=lat, home_longitude=lon
                )
            )
    found = {
        str(customer_id)
        for customer_id in db.scalars(
            customers.near_audience(
                latitude=centre[0], longitude=centre[1], radius_km=10, use=["home"]
            )
        )
    }
    assert set(inside) <= found
    assert not set(outside) & found


def test_last_location_needs_location_consent_now(db: Session) -> None:
    person = make_customer(db, consents={"location": True})
    set_traits(db, person, last_latitude=1.0, last_longitude=1.0, last_location_at=clock.now())
    near = customers.near_audience(latitude=1.0, longitude=1.0, radius_km=1, use=["last_location"])
    assert person in {str(c) for c in db.scalars(near)}
    customers.set_consent(db, customer_id=person, purpose="location", granted=False, source="app")
    assert person not in {str(c) for c in db.scalars(near)}


def test_the_nearest_store_by_home_counts_only_with_location_consent(db: Session) -> None:
    # given two stores and three customers living next to the first: one granted location, one
    # with no choice on record (a point kept from sign-up), one who grants and then withdraws
    stores = [("st-a", 48.85, 2.35), ("st-b", 45.76, 4.83)]
    home = {"home_latitude": 48.80, "home_longitude": 2.30}
    granted = make_customer(db, consents={"location": True}, **home)
    unasked = make_customer(db, **home)
    withdrawn = make_customer(db, consents={"location": True}, **home)
    customers.set_consent(
        db, customer_id=withdrawn, purpose="location", granted=False, source="app"
    )
    nearest_a = customers.nearest_store_audience(store_id="st-a", stores=stores)
    nearest_b = customers.nearest_store_audience(store_id="st-b", stores=stores)
    # then only the one who granted location is in the nearest store's audience, and the others
    # are in no store's
    found_a = {str(c) for c in db.scalars(nearest_a)}
    found_b = {str(c) for c in db.scalars(nearest_b)}
    assert found_a & {granted, unasked, withdrawn} == {granted}
    assert not found_b & {granted, unasked, withdrawn}
