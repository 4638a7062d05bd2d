"""Catalogue endpoints."""

from __future__ import annotations

from rapport.catalog import service as catalog
from tests.conftest import auth

CHIANTI = {
    "name": "Chianti Classico 2021",
    "category_path": "Wine/Red",
    "brand": "Castello",
    "price_minor": 1200,
    "cost_minor": 700,
    "currency": "EUR",
    "country_of_origin": "IT",
    "attributes": {"grape": "Sangiovese", "volume_ml": 750},
}


def test_put_then_get_product(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    put = client.put("/v1/products/W-CHI-21", json=CHIANTI, headers=auth(writer))
    assert put.status_code == 200
    got = client.get("/v1/products/W-CHI-21", headers=auth(reader)).json()
    assert {k: got[k] for k in CHIANTI} == CHIANTI
    assert got["sku"] == "W-CHI-21"


def test_bulk_upsert_and_paginate(client, api_key, db) -> None:
    writer, reader = api_key("write"), api_key("read")
    products = [{**CHIANTI, "sku": f"W-{n:03d}"} for n in range(5)]
    response = client.post("/v1/products/bulk", json={"products": products}, headers=auth(writer))
    assert response.json() == {"upserted": 5}
    assert catalog.count_products(db) == 5
    page = client.get("/v1/products?limit=3", headers=auth(reader)).json()
    assert [p["sku"] for p in page["items"]] == ["W-000", "W-001", "W-002"]
    assert page["next_cursor"] == "W-002"
    rest = client.get(
        f"/v1/products?limit=3&cursor={page['next_cursor']}", headers=auth(reader)
    ).json()
    assert [p["sku"] for p in rest["items"]] == ["W-003", "W-004"]
    assert rest["next_cursor"] is None


def test_negative_price_is_refused(client, api_key, db) -> None:
    response = client.put(
        "/v1/products/W-1", json={**CHIANTI, "price_minor": -1}, headers=auth(api_key("write"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "price_minor"
    assert catalog.count_products(db) == 0


def test_store_with_impossible_latitude_is_refused(client, api_key) -> None:
    body = {"name": "X", "city": "Y", "address": "Z", "country": "FR", "latitude": 123.0}
    response = client.put("/v1/stores/st-1", json=body, headers=auth(api_key("write")))
    assert response.status_code == 422
    assert response.json()["field"] == "latitude"
