"""Catalogue endpoints."""

from __future__ import annotations

import pytest

from rapport.catalog import service as catalog
from tests.conftest import auth, command

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
    response = client.post(
        "/v1/products/bulk", json={"products": products}, headers=command(writer)
    )
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
    # a last page that is full says it is the last, rather than sending the client on to an
    # empty one
    whole = client.get("/v1/products?limit=5", headers=auth(reader)).json()
    assert (len(whole["items"]), whole["next_cursor"]) == (5, None)


def test_a_product_without_a_category_is_filed_as_uncategorised(client, api_key) -> None:
    # a shop without a taxonomy puts a product with no category_path
    body = {key: value for key, value in CHIANTI.items() if key != "category_path"}
    put = client.put("/v1/products/MUG-1", json=body, headers=auth(api_key("write")))
    assert put.status_code == 200
    assert put.json()["category_path"] == catalog.UNCATEGORISED
    # but an empty one is a mistake, named
    empty = client.put(
        "/v1/products/MUG-2", json={**body, "category_path": ""}, headers=auth(api_key("write"))
    )
    assert empty.status_code == 422
    assert empty.json()["field"] == "category_path"


def test_negative_price_is_refused(client, api_key, db) -> None:
    response = client.put(
        "/v1/products/W-1", json={**CHIANTI, "price_minor": -1}, headers=auth(api_key("write"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "price_minor"
    assert catalog.count_products(db) == 0


def test_a_price_in_a_currency_nobody_uses_is_refused(client, api_key, db) -> None:
    response = client.put(
        "/v1/products/W-1", json={**CHIANTI, "currency": "ZZZ"}, headers=auth(api_key("write"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "currency"
    assert catalog.count_products(db) == 0


def test_store_with_impossible_latitude_is_refused(client, api_key) -> None:
    body = {"name": "X", "city": "Y", "address": "Z", "country": "FR", "latitude": 123.0}
    response = client.put("/v1/stores/st-1", json=body, headers=auth(api_key("write")))
    assert response.status_code == 422
    assert response.json()["field"] == "latitude"


def test_bulk_stores_stock_and_nearest_availability(client, api_key, db) -> None:
    writer, reader = api_key("write"), api_key("read")
    stores = [
        {
            "store_id": "st-par",
            "name": "Paris",
            "city": "Paris",
            "address": "1 rue",
            "country": "FR",
            "latitude": 48.857,
            "longitude": 2.352,
        },
        {
            "store_id": "st-lyo",
            "name": "Lyon",
            "city": "Lyon",
            "address": "2 place",
            "country": "FR",
            "latitude": 45.757,
            "longitude": 4.832,
        },
        {"store_id": "web", "name": "Web", "city": "Online", "address": "Lille", "country": "FR"},
    ]
    assert client.post(
        "/v1/stores/bulk", json={"stores": stores}, headers=command(writer)
    ).json() == {"upserted": 3}
    client.put("/v1/products/W-1", json=CHIANTI, headers=auth(writer))
    levels = [
        {"sku": "W-1", "store_id": "st-par", "on_hand": 2},
        {"sku": "W-1", "store_id": "st-lyo", "on_hand": 7},
        {"sku": "W-1", "store_id": "web", "on_hand": 90},
    ]
    assert client.put("/v1/stock", json={"levels": levels}, headers=auth(writer)).json() == {
        "upserted": 3
    }
    # seen from Lyon's Part-Dieu station: Lyon first, then Paris, then the web warehouse
    view = client.get("/v1/stock/W-1?lat=45.760&lon=4.859", headers=auth(reader)).json()
    assert [(v["store_id"], v["available"]) for v in view] == [
        ("st-lyo", 7),
        ("st-par", 2),
        ("web", 90),
    ]
    assert view[0]["distance_km"] == 2.1
    assert view[2]["distance_km"] is None
    unknown = client.put(
        "/v1/stock",
        json={"levels": [{"sku": "W-1", "store_id": "st-nowhere", "on_hand": 1}]},
        headers=auth(writer),
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "levels.0.store_id"


def test_stock_at_a_location_that_keeps_no_level_is_not_tracked_rather_than_sold_out(
    client, api_key
) -> None:
    writer, reader = api_key("write"), api_key("read")
    for store_id in ("st-par", "st-lyo", "web"):
        store = {"name": store_id, "city": "Paris", "address": "1 rue", "country": "FR"}
        client.put(f"/v1/stores/{store_id}", json=store, headers=auth(writer))
    client.put("/v1/products/W-1", json=CHIANTI, headers=auth(writer))
    levels = [
        {"sku": "W-1", "store_id": "st-par", "on_hand": 3},
        {"sku": "W-1", "store_id": "web", "on_hand": 0},
    ]
    client.put("/v1/stock", json={"levels": levels}, headers=auth(writer))
    view = client.get("/v1/stock/W-1", headers=auth(reader)).json()
    by_store = {v.pop("store_id"): v for v in view}
    # Lyon keeps no level: the till sells there without limit, so not "0 available"
    assert by_store["st-lyo"] == {
        "name": "st-lyo",
        "city": "Paris",
        "tracked": False,
        "on_hand": None,
        "reserved": None,
        "available": None,
        "distance_km": None,
        "short_by": None,
    }
    assert {k: by_store["st-par"][k] for k in ("tracked", "on_hand", "reserved", "available")} == {
        "tracked": True,
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
    }
    # a level of 0 is tracked and sold out
    assert (by_store["web"]["tracked"], by_store["web"]["available"]) == (True, 0)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AvailabilityOut"]
    assert {e["tracked"] for e in schema["examples"]} == {True, False}


def test_price_consistency_report_lists_deliberate_exceptions(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    client.put("/v1/products/W-1", json=CHIANTI, headers=auth(writer))
    client.put("/v1/products/W-2", json={**CHIANTI, "name": "Barolo"}, headers=auth(writer))
    empty = client.get("/v1/prices/consistency", headers=auth(reader)).json()
    assert empty == {"items": [], "next_cursor": None}
    rule = {"sku": "W-1", "channel": "app", "price_minor": 1100, "reason": "app launch offer"}
    assert client.post("/v1/prices/channel", json=rule, headers=command(writer)).status_code == 201
    same = {"sku": "W-2", "channel": "store", "price_minor": 1200, "reason": "no change"}
    client.post("/v1/prices/channel", json=same, headers=command(writer))
    report = client.get("/v1/prices/consistency", headers=auth(reader)).json()
    assert report == {
        "items": [
            {
                "sku": "W-1",
                "name": "Chianti Classico 2021",
                "catalogue_price_minor": 1200,
                "channel": "app",
                "store_id": None,
                "price_minor": 1100,
                "reason": "app launch offer",
                "rule_id": report["items"][0]["rule_id"],
            }
        ],
        "next_cursor": None,
    }


@pytest.mark.parametrize("cursor", ["NOPE", "W-0000", "", " W-001", "x" * 64])
def test_a_products_cursor_we_did_not_give_out_is_refused_naming_it(
    client, api_key, db, cursor: str
) -> None:
    writer, reader = api_key("write"), api_key("read")
    products = [{**CHIANTI, "sku": f"W-{n:03d}"} for n in range(3)]
    client.post("/v1/products/bulk", json={"products": products}, headers=command(writer))

    refused = client.get("/v1/products", params={"cursor": cursor}, headers=auth(reader))

    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem.get("field", (problem.get("errors") or [{}])[0].get("field")) == "cursor"
    # while one a page gave goes on after it
    rest = client.get("/v1/products", params={"cursor": "W-000"}, headers=auth(reader)).json()
    assert [p["sku"] for p in rest["items"]] == ["W-001", "W-002"]


STORE = {"name": "Clapham", "city": "London", "address": "1 High St", "country": "GB"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 51.46}, "longitude"),
        ({"longitude": -0.14}, "latitude"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "utc"}, "timezone"),
        ({"opening_hours": {"mon": "25:00-26:00"}}, "opening_hours.mon"),
        ({"opening_hours": {"mon": "09:00-20:00", "xyz": "hello"}}, "opening_hours.xyz"),
        ({"opening_hours": {"tue": "20:00-09:00"}}, "opening_hours.tue"),
        ({"opening_hours": {"wed": "09:00-13:00, 12:00-18:00"}}, "opening_hours.wed"),
        ({"opening_hours": {"thu": 9}}, "opening_hours.thu"),
        ({"opening_hours": {"fri": "open"}}, "opening_hours.fri"),
    ],
)
def test_a_store_with_half_a_position_an_unknown_zone_or_hours_that_are_none_is_refused(
    client, api_key, db, change: dict, field: str
) -> None:
    response = client.put(
        "/v1/stores/st-t-a", json={**STORE, **change}, headers=auth(api_key("write"))
    )

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert catalog.get_store(db, store_id="st-t-a") is None


def test_a_store_with_a_position_a_zone_and_opening_hours_is_stored(client, api_key, db) -> None:
    hours = {"mon": "09:00-20:00", "sat": "09:00-12:30, 14:00-19:00", "sun": "closed",
             "fri": "00:00-24:00"}  # fmt: skip
    body = {**STORE, "latitude": 51.46, "longitude": -0.14, "timezone": "Europe/London",
            "opening_hours": hours}  # fmt: skip
    response = client.put("/v1/stores/st-t-a", json=body, headers=auth(api_key("write")))
    assert response.status_code == 200, response.text
    assert response.json()["opening_hours"] == hours
    # and a bulk put naming one store twice is refused, naming the second
    stores = [{**STORE, "store_id": "st-1"}, {**STORE, "store_id": "st-2"},
              {**STORE, "store_id": "st-1", "name": "Other"}]  # fmt: skip
    twice = client.post(
        "/v1/stores/bulk", json={"stores": stores}, headers=command(api_key("write"))
    )
    assert twice.status_code == 422, twice.text
    assert twice.json()["field"] == "stores.2.store_id"
    assert twice.json()["errors"][0]["pointer"] == "/stores/2/store_id"
    assert catalog.get_store(db, store_id="st-1") is None


def test_stock_errors_name_the_level_and_field_and_a_level_given_twice_is_refused(
    client, api_key, db
) -> None:
    writer = auth(api_key("write"))
    client.put("/v1/products/W-1", json=CHIANTI, headers=writer)
    client.put("/v1/stores/st-par", json={**STORE, "city": "Paris"}, headers=writer)
    client.put("/v1/stores/web", json={**STORE, "city": "Online"}, headers=writer)
    client.put("/v1/stock", json={"levels": [{"sku": "W-1", "store_id": "st-par", "on_hand": 3}]},
               headers=writer)  # fmt: skip
    assert catalog.reserve_stock(db, sku="W-1", store_id="st-par", quantity=2)
    db.commit()

    def put(*levels: tuple[str, str, int]):  # type: ignore[no-untyped-def]
        body = {"levels": [{"sku": k, "store_id": s, "on_hand": n} for k, s, n in levels]}
        return client.put("/v1/stock", json=body, headers=writer)

    # an unknown store, the same SKU and location twice
    unknown = put(("W-1", "web", 5), ("W-1", "st-nope", 1))
    twice = put(("W-1", "web", 5), ("W-1", "st-par", 4), ("W-1", "web", 6))

    assert (unknown.status_code, unknown.json()["field"]) == (422, "levels.1.store_id")
    assert (twice.status_code, twice.json()["field"]) == (422, "levels.2.store_id")
    assert "levels.0" in twice.json()["detail"]
    # and nothing changed
    db.expire_all()
    assert catalog.get_stock(db, sku="W-1", store_id="web") is None
    level = catalog.get_stock(db, sku="W-1", store_id="st-par")
    assert level is not None
    assert (level.on_hand, level.reserved) == (3, 2)
    # a count below what is reserved is the truth, and recorded (tests/catalog/
    # test_stock_below_reserved.py)
    assert put(("W-1", "st-par", 1)).status_code == 200
    db.expire_all()
    level = catalog.get_stock(db, sku="W-1", store_id="st-par")
    assert level is not None
    assert (level.on_hand, level.reserved) == (1, 2)


def test_a_bulk_put_naming_a_product_twice_is_refused_naming_the_second(
    client, api_key, db
) -> None:
    products = [{**CHIANTI, "sku": sku} for sku in ("W-1", "W-2", "W-3", "W-2")]
    response = client.post(
        "/v1/products/bulk", json={"products": products}, headers=command(api_key("write"))
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "products.3.sku"
    assert response.json()["errors"][0]["pointer"] == "/products/3/sku"
    assert catalog.count_products(db) == 0


@pytest.mark.parametrize(("query", "field"), [("lat=50", "lon"), ("lon=4.8", "lat")])
def test_stock_near_half_a_point_is_refused_naming_the_other_half(
    client, api_key, query: str, field: str
) -> None:
    client.put("/v1/products/W-1", json=CHIANTI, headers=auth(api_key("write")))
    response = client.get(f"/v1/stock/W-1?{query}", headers=auth(api_key("read")))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_stock_near_nan_says_a_number_is_expected(client, api_key) -> None:
    # given NaN for a point's latitude (FastAPI's own query parameter, bounded -90 to 90)
    client.put("/v1/products/W-1", json=CHIANTI, headers=auth(api_key("write")))
    response = client.get("/v1/stock/W-1?lat=nan&lon=4.8", headers=auth(api_key("read")))
    # then the problem says a number is expected, not that NaN is too large
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "lat"
    assert response.json()["detail"] == "lat: Input should be a number less than or equal to 90"
