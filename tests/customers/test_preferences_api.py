"""Preferences over the API: checked (a real birthday, a catalogue store, no empty or repeated
names), and a field sent as null is forgotten."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.events.models import Event
from tests.conftest import auth, command


def _customer(client, writer) -> str:
    return client.post(
        "/v1/customers", json={"email": "pat@example.com"}, headers=command(writer)
    ).json()["customer_id"]


def _shared(db) -> int:
    query = select(func.count()).select_from(Event).where(Event.type == "preference_shared")
    return int(db.scalar(query) or 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"birthday": "2030-01-01"}, "birthday"),
        ({"birthday": "1800-01-01"}, "birthday"),
        ({"preferred_store_id": "NOPE-STORE"}, "preferred_store_id"),
        ({"favourite_categories": ["Shoes", "Shoes", ""]}, "favourite_categories.2"),
        ({"favourite_categories": ["  "]}, "favourite_categories.0"),
    ],
)
def test_nonsense_is_refused_naming_the_field_and_earns_nothing(
    client, api_key, db, body, field
) -> None:
    writer = api_key("write")
    customer_id = _customer(client, writer)
    refused = client.put(
        f"/v1/customers/{customer_id}/preferences", json=body, headers=auth(writer)
    )
    assert refused.status_code == 422
    problem = refused.json()
    assert (problem.get("errors") or [problem])[0]["field"] == field
    assert customers.get_preferences(db, customer_id=customer_id) == []
    assert _shared(db) == 0


def test_repeats_are_folded_and_a_catalogue_store_is_taken(client, api_key, db) -> None:
    writer = api_key("write")
    client.put(
        "/v1/stores/st-1",
        json={"name": "Paris", "city": "Paris", "address": "1 rue X", "country": "FR"},
        headers=auth(writer),
    )
    customer_id = _customer(client, writer)
    stored = client.put(
        f"/v1/customers/{customer_id}/preferences",
        json={
            "favourite_categories": ["Shoes", "shoes", " Bags "],
            "dietary": ["vegan", "vegan"],
            "preferred_store_id": "st-1",
        },
        headers=auth(writer),
    )
    assert stored.status_code == 200, stored.text
    assert {p["field"]: p["value"] for p in stored.json()} == {
        "favourite_categories": ["Shoes", "Bags"],
        "dietary": ["vegan"],
        "preferred_store_id": "st-1",
    }


def test_null_clears_a_preference(client, api_key, db) -> None:
    writer = api_key("write")
    customer_id = _customer(client, writer)
    url = f"/v1/customers/{customer_id}/preferences"
    client.put(url, json={"clothing_size": "M", "shoe_size": 40}, headers=auth(writer))
    cleared = client.put(url, json={"clothing_size": None}, headers=auth(writer))
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() == []
    held = {p.field: p.value for p in customers.get_preferences(db, customer_id=customer_id)}
    assert held == {"shoe_size": 40}
    assert _shared(db) == 2  # clearing logs nothing
    nothing = client.put(url, json={"source": "app"}, headers=auth(writer))
    assert nothing.status_code == 422
