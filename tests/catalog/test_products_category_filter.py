"""``GET /v1/products?category=``: a category names a path prefix; an empty one is refused
naming the field, as an empty cursor is, where it listed nothing."""

from __future__ import annotations

from tests.catalog.test_api import CHIANTI
from tests.conftest import auth, command


def test_an_empty_category_is_refused_naming_it_while_a_category_filters(client, api_key) -> None:
    # given two products in two categories
    writer, reader = api_key("write"), api_key("read")
    products = [
        {**CHIANTI, "sku": "W-001", "category_path": "Wine/Red"},
        {**CHIANTI, "sku": "B-001", "category_path": "Beer"},
    ]
    client.post("/v1/products/bulk", json={"products": products}, headers=command(writer))
    # when the products are listed with an empty category
    refused = client.get("/v1/products", params={"category": ""}, headers=auth(reader))
    # then it is a 422 problem naming category, not an empty page
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem.get("field", (problem.get("errors") or [{}])[0].get("field")) == "category"
    # while a category lists its products, and no category lists them all
    wine = client.get("/v1/products", params={"category": "Wine"}, headers=auth(reader)).json()
    assert [p["sku"] for p in wine["items"]] == ["W-001"]
    every = client.get("/v1/products", headers=auth(reader)).json()
    assert [p["sku"] for p in every["items"]] == ["B-001", "W-001"]
