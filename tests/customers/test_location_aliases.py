"""The last known location is read under every name a coordinate is stored under (the names
tracking strips without consent): a consented ``lng`` or ``long`` is the customer's location
as ``lon`` and ``longitude`` are."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rapport.customers import service as customers
from tests.customers.factories import T0, process, track


@pytest.mark.parametrize(
    ("where", "point"),
    [
        ("properties", {"lat": 48.85, "lng": 2.35}),
        ("properties", {"latitude": 48.85, "long": 2.35}),
        ("properties", {"Lat": 48.85, "LNG": 2.35}),
        ("context", {"location": {"lat": 48.85, "lng": 2.35}}),
        ("context", {"location": {"latitude": 48.85, "longitude": 2.35}}),
    ],
)
def test_a_consented_point_under_any_name_is_the_last_location(db, where, point) -> None:
    track(
        db,
        "consent_changed",
        user_id="C-lng",
        properties={"purpose": "location", "granted": True},
    )
    track(db, "location_updated", user_id="C-lng", at=T0 + timedelta(minutes=1), **{where: point})
    process(db)
    customer = customers.find_customer(db, kind="external_id", value="C-lng")
    traits = customers.get_traits(db, customer_id=customer.customer_id)
    assert (traits.last_latitude, traits.last_longitude) == (48.85, 2.35)
