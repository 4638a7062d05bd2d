"""The one rule for what is a person's coordinate in traits and the attributes they became
(events.without_coordinate_traits): a ``lat``, ``lng``, ``lon``, ``long``, ``latitude`` or
``longitude`` key in any case, at any depth; an object left with anything else stays, one
left empty goes; traits holding none come back as they were."""

from __future__ import annotations

from rapport.events.service import without_coordinate_traits


def test_coordinate_keys_go_in_any_case_and_at_any_depth() -> None:
    traits = {
        "lng": 1.0,
        "Latitude": 2.0,
        " LON ": 3.0,
        "geo": {"latitude": 1.0, "Longitude": 2.0},
        "home": {"lat": 1.0, "long": 2.0, "city": "Madrid"},
        "deep": {"a": {"b": {"lat": 1.0, "lng": 2.0}, "c": 1}},
        "places": [{"lat": 1.0, "lon": 2.0}, {"lat": 2.0, "name": "work"}, "x"],
        "empty": {},
        "nothing": None,
        "latency": 12,
        "longing": "yes",
    }
    assert without_coordinate_traits(traits) == {
        "home": {"city": "Madrid"},
        "deep": {"a": {"c": 1}},
        "places": [{"name": "work"}, "x"],
        "empty": {},
        "nothing": None,
        "latency": 12,
        "longing": "yes",
    }


def test_traits_holding_no_coordinate_come_back_as_they_were() -> None:
    traits = {"hobby": "golf", "home": {"city": "Madrid"}, "tags": [{"a": None}], "e": {}}
    assert without_coordinate_traits(traits) is traits
    assert without_coordinate_traits({"lat": None, "geo": {"LAT": None}}) == {}
