"""GET /v1/recommendations after the catalogue changed since training and a rule value no
product has, over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import auth, command

from . import test_api

shop = test_api.shop  # the trained shop (a fixture)


def test_a_product_changed_since_training_is_served_and_ruled_as_it_is(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    writer, reader = api_key("write"), api_key("read")
    changed = {
        "name": "Chablis Premier Cru",
        "category_path": "Kitchen/Tools",
        "brand": "Domaine Clair",
        "price_minor": 1234,
        "cost_minor": 800,
        "currency": "EUR",
        "country_of_origin": "FR",
    }
    assert (
        client.put("/v1/products/W-CHABLIS", json=changed, headers=auth(writer)).status_code == 200
    )

    def home() -> dict[str, dict[str, object]]:
        response = client.get(
            "/v1/recommendations", params={"placement": "home", "limit": 20}, headers=auth(reader)
        )
        assert response.status_code == 200
        return {item["sku"]: item for item in response.json()["items"]}

    chablis = home()["W-CHABLIS"]
    assert (chablis["name"], chablis["category"], chablis["price_minor"]) == (
        "Chablis Premier Cru",
        "Kitchen/Tools",
        1234,
    )
    rule = {"name": "No kitchen", "action": "exclude", "attribute": "category", "value": "Kitchen"}
    created = client.post("/v1/recommendations/rules", json=rule, headers=command(writer))
    assert created.status_code == 201
    assert "W-CHABLIS" not in home()


def test_a_rule_value_no_product_has_is_422_naming_value(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    rule = {"name": "Wine only", "action": "filter", "attribute": "category", "value": "wine"}
    response = client.post(
        "/v1/recommendations/rules", json=rule, headers=command(api_key("write"))
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == "value"
    assert "use 'Wine'" in response.json()["detail"]


def test_each_served_price_names_its_currency_from_the_catalogue(
    client: TestClient, api_key, shop: dict[str, str]
) -> None:
    # given a product now priced in yen, the rest in euros
    writer, reader = api_key("write"), api_key("read")
    in_yen = {
        "name": "Chablis",
        "category_path": "Wine/White",
        "brand": "Domaine Clair",
        "price_minor": 2100,
        "cost_minor": 800,
        "currency": "JPY",
        "country_of_origin": "FR",
    }
    assert (
        client.put("/v1/products/W-CHABLIS", json=in_yen, headers=auth(writer)).status_code == 200
    )
    # when the home placement is served
    response = client.get(
        "/v1/recommendations", params={"placement": "home", "limit": 20}, headers=auth(reader)
    )
    # then every price carries the catalogue product's currency beside it
    assert response.status_code == 200
    served = {
        item["sku"]: (item["price_minor"], item["currency"]) for item in response.json()["items"]
    }
    assert served["W-CHABLIS"] == (2100, "JPY")
    assert {currency for sku, (_, currency) in served.items() if sku != "W-CHABLIS"} == {"EUR"}
