"""Strict input, on both databases: integers are JSON integers (no strings, booleans or
floats for points, money or quantities), and no field, path segment, query parameter or
Idempotency-Key holds a NUL or another control character. Each refusal is a 422 problem
naming the field, and changes nothing."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.platform.db import Base
from rapport.platform.schemas import StrictModel
from tests.app_routes import every_route
from tests.conftest import auth
from tests.loyalty.factories import make_customer
from tests.orders.factories import order_body, seed_catalog


@pytest.fixture
def admin(api_key):  # type: ignore[no-untyped-def]
    return auth(api_key("admin"))


def _row_counts(db: Session) -> dict[str, int]:
    """Rows in every table: a refused request leaves every one as it was."""
    return {
        table.name: db.execute(select(func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }


def _assert_refused(response: Any, field: str, code: str, location: str = "body") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field
    assert problem["errors"][0]["field"] == field
    assert problem["errors"][0]["location"] == location
    assert problem["errors"][0]["code"] == code


GOOD_STORE = {"name": "Paris Rivoli", "city": "Paris", "address": "1 rue", "country": "FR"}
GOOD_PRODUCT = {
    "name": "Chianti",
    "category_path": "Wine/Red",
    "price_minor": 1200,
    "cost_minor": 700,
    "currency": "EUR",
}

# (method, path, body, the field named); every body is valid but for that one field.
CONTROL_CHARACTER_BODIES = [
    pytest.param("POST", "/v1/customers", {"first_name": "a\u0000b"}, "first_name", id="customer"),
    pytest.param(
        "POST", "/v1/customers", {"last_name": "bell\u0007"}, "last_name", id="customer-bell"
    ),
    pytest.param(
        "POST", "/v1/customers", {"email": "a\u0000@example.com"}, "email", id="customer-email"
    ),
    pytest.param("POST", "/v1/orders", order_body(carrier="DH\u0000L"), "carrier", id="order"),
    pytest.param(
        "POST",
        "/v1/orders",
        order_body(lines=[{"sku": "W-\u0000", "quantity": 1, "unit_price_minor": 1200}]),
        "lines.0.sku",
        id="order-line",
    ),
    pytest.param(
        "POST",
        "/v1/feedback/reviews",
        {"sku": "W-CHIANTI", "rating": 5, "text": "Lovely\u0000"},
        "text",
        id="review",
    ),
    pytest.param(
        "POST",
        "/v1/feedback/tickets",
        {"kind": "question", "channel": "web", "subject": "Where\u0000"},
        "subject",
        id="ticket",
    ),
    pytest.param(
        "POST",
        "/v1/feedback/surveys",
        {"survey_id": "nps-x", "name": "N\u0000PS", "kind": "nps", "trigger": "manual"},
        "name",
        id="survey",
    ),
    pytest.param(
        "PUT", "/v1/stores/st-1", {**GOOD_STORE, "city": "Pa\u0000ris"}, "city", id="store"
    ),
    pytest.param(
        "PUT",
        "/v1/products/SKU-1",
        {**GOOD_PRODUCT, "attributes": {"colour": ["red\u0000"]}},
        "attributes.colour",
        id="product-free-form-attributes",
    ),
    pytest.param(
        "POST", "/v1/keys", {"name": "shop\u0000", "scopes": ["read"]}, "name", id="api-key"
    ),
    pytest.param(
        "POST",
        "/v1/webhook-endpoints",
        {"name": "ep\u001b[31mred", "url": "https://example.com/hook"},
        "name",
        id="webhook-endpoint",
    ),
    pytest.param("POST", "/v1/campaigns", {"name": "tab\u0001ctl"}, "name", id="campaign"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), CONTROL_CHARACTER_BODIES)
def test_a_control_character_in_a_body_field_is_refused_naming_it(
    client, db, admin, method, path, body, field
) -> None:
    # given a catalogue and the row counts of every table
    seed_catalog(db)
    before = _row_counts(db)
    # when a body holds a NUL (or another control character) in one field
    response = client.request(
        method, path, json=body, headers={**admin, "Idempotency-Key": "strict-1"}
    )
    # then it is a 422 naming that field, and nothing changed
    _assert_refused(response, field, "control_character")
    assert "control characters" in response.json()["detail"]
    assert _row_counts(db) == before


def test_a_campaign_named_only_blanks_is_refused(client, db, admin) -> None:
    before = _row_counts(db)
    response = client.post(
        "/v1/campaigns", json={"name": " \t "}, headers={**admin, "Idempotency-Key": "blank-1"}
    )
    _assert_refused(response, "name", "string_too_short")
    assert _row_counts(db) == before


def test_tab_and_line_breaks_stay_allowed_in_text(client, db, admin) -> None:
    # when a ticket's body has lines and a tab
    response = client.post(
        "/v1/feedback/tickets",
        json={"kind": "question", "channel": "web", "subject": "Hi", "body": "a\r\nb\tc"},
        headers={**admin, "Idempotency-Key": "strict-2"},
    )
    # then it is stored as sent
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "field", "location"),
    [
        pytest.param("/v1/customers/cus_a%00b", "customer_id", "path", id="path-segment"),
        pytest.param("/v1/stores/st%07", "store_id", "path", id="path-bell"),
        pytest.param(
            "/v1/customers/lookup?kind=email&value=a%00b", "value", "query", id="lookup-query"
        ),
        pytest.param(
            "/v1/recommendations?placement=home&customer_id=c%00", "customer_id", "query", id="hot"
        ),
        pytest.param("/v1/orders?customer_id=C-1%0A", "customer_id", "query", id="query-newline"),
    ],
)
def test_a_control_character_in_the_path_or_query_is_refused_naming_it(
    client, db, admin, path, field, location
) -> None:
    # when a path segment or a query parameter holds a control character
    response = client.get(path, headers=admin)
    # then it is a 422 naming the parameter (not a database error on PostgreSQL)
    _assert_refused(response, field, "control_character", location)


@pytest.mark.parametrize(
    ("path", "again"),
    [
        pytest.param("/admin/orders/list?q=%00", '<a href="/admin/orders/list">', id="query"),
        pytest.param("/admin/catalog/products/%00", None, id="admin-path"),
    ],
)
def test_a_person_following_such_an_address_to_an_admin_page_gets_a_page(
    client, db, path, again
) -> None:
    # when a browser navigates to an admin address holding a control character
    response = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    # then it is the same 422, as a page that says what is wrong (not raw JSON); "Try again"
    # leads to the page without the bad query, and there is none for a bad path
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "Text may not contain control characters" in response.text
    if again is None:
        assert "Try again" not in response.text
    else:
        assert f"{again}Try again</a>" in response.text


def test_a_control_character_in_the_idempotency_key_is_refused(client, db, admin) -> None:
    # given a member
    customer_id = make_customer(db)
    before = _row_counts(db)
    # when an earn command's Idempotency-Key holds a control character
    response = client.post(
        f"/v1/loyalty/members/{customer_id}/earn",
        json={"points": 10, "reason": "Order O-1"},
        headers={**admin, "Idempotency-Key": "key\x01"},
    )
    # then it is refused naming the header, and nothing changed
    _assert_refused(response, "Idempotency-Key", "control_character", "header")
    assert _row_counts(db) == before


@pytest.mark.parametrize(
    "points", ["10", True, 10.0, "ten"], ids=["string", "bool", "float", "word"]
)
@pytest.mark.parametrize("verb", ["earn", "redeem", "adjust"])
def test_points_must_be_a_json_integer(client, db, admin, verb, points) -> None:
    # given a member with 100 points
    customer_id = make_customer(db)
    loyalty.earn(db, customer_id=customer_id, points=100, reason="Welcome")
    before = _row_counts(db)
    # when a command sends its points as a string, a boolean or a float
    response = client.post(
        f"/v1/loyalty/members/{customer_id}/{verb}",
        json={"points": points, "reason": "Typed loosely"},
        headers={**admin, "Idempotency-Key": f"loose-{verb}"},
    )
    # then it is refused naming points, and the balance is unchanged
    _assert_refused(response, "points", "int_type")
    assert _row_counts(db) == before
    assert loyalty.balance(db, customer_id=customer_id) == 100


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param(
            {
                "lines": [
                    {"sku": "W-CHIANTI", "quantity": "2", "unit_price_minor": 1200},
                    {"sku": "K-CORK", "quantity": 1, "unit_price_minor": 900},
                ]
            },
            "lines.0.quantity",
            id="quantity-string",
        ),
        pytest.param(
            {
                "lines": [
                    {"sku": "W-CHIANTI", "quantity": 2, "unit_price_minor": 1200},
                    {"sku": "K-CORK", "quantity": True, "unit_price_minor": 900},
                ]
            },
            "lines.1.quantity",
            id="quantity-bool",
        ),
        pytest.param({"total_minor": 3490.0}, "total_minor", id="money-float"),
        pytest.param({"shipping_minor": "490"}, "shipping_minor", id="money-string"),
        pytest.param(
            {"payments": [{"method": "card", "amount_minor": "3490"}]},
            "payments.0.amount_minor",
            id="payment-string",
        ),
    ],
)
def test_money_and_quantities_must_be_json_integers(client, db, admin, overrides, field) -> None:
    # given a catalogue and an order that is right but for one loosely typed number
    seed_catalog(db)
    before = _row_counts(db)
    # when it is sent
    response = client.post(
        "/v1/orders", json=order_body(**overrides), headers={**admin, "Idempotency-Key": "o-1"}
    )
    # then it is refused naming that number, and nothing changed
    _assert_refused(response, field, "int_type")
    assert _row_counts(db) == before


@pytest.mark.parametrize("when", [1733565600, 1733565600.5])
def test_a_time_must_be_iso_text_not_a_number(client, db, admin, when) -> None:
    """Pydantic would read a number as seconds since 1970 (found by the API fuzz test on
    POST /v1/loyalty/coupons/validate)."""
    seed_catalog(db)
    before = _row_counts(db)
    response = client.post(
        "/v1/orders",
        json=order_body(placed_at=when),
        headers={**admin, "Idempotency-Key": "o-when"},
    )
    _assert_refused(response, "placed_at", "datetime_type")
    assert "ISO 8601" in response.json()["detail"]
    assert _row_counts(db) == before


def test_the_same_order_with_integers_is_accepted(client, db, admin) -> None:
    # given a catalogue
    seed_catalog(db)
    # when the order's numbers are integers
    response = client.post(
        "/v1/orders", json=order_body(), headers={**admin, "Idempotency-Key": "o-2"}
    )
    # then it is created
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "parameter", "iso"),
    [
        ("/v1/orders/reports/promise-kept?since={}", "since", "2026-12-01"),
        ("/v1/feedback/scores?since={}", "since", "2026-12-01"),
        ("/v1/deliveries?until={}", "until", "2026-12-01T00:00:00Z"),
    ],
)
def test_a_date_in_a_query_must_be_iso_text_not_a_number(
    client, db, admin, path, parameter, iso
) -> None:
    # Pydantic alone reads "2.5e-111" as seconds since 1970: a report for 1970 is no answer.
    refused = client.get(path.format("2.5e-111"), headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == parameter
    accepted = client.get(path.format(iso), headers=admin)
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        # a FastAPI query parameter (FastAPI alone would use the last value)
        ("/v1/products?category=Shoes&category=Socks", "category"),
        ("/v1/products?limit=5&limit=500", "limit"),
        # one the route reads through its own query model
        ("/v1/recommendations?placement=home&placement=discover&customer_id=C-1", "placement"),
    ],
)
def test_a_query_parameter_that_takes_one_value_is_refused_given_twice(
    client, db, admin, path, parameter
) -> None:
    # when a parameter that takes one value is sent twice
    refused = client.get(path, headers=admin)
    # then the request is refused naming it, in the query, rather than answered for one of them
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["field"] == parameter
    assert problem["errors"][0]["location"] == "query"
    assert "once" in problem["errors"][0]["message"]


def test_a_query_parameter_that_takes_several_values_may_repeat(client, db, admin) -> None:
    # when the cart is sent as the key repeated, as documented
    answer = client.get(
        "/v1/recommendations?placement=cart&cart=A-1&cart=B-2&limit=3", headers=admin
    )
    # then it is read as a cart (no model yet: an empty list, not a refusal)
    assert answer.status_code == 200, answer.text


def test_the_openapi_document_states_problems_and_required_idempotency_keys(client) -> None:
    # when the OpenAPI document is read
    document = client.get("/openapi.json").json()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    # then every Idempotency-Key it takes is required (a command without one is refused)
    keyed = [
        (label, parameter)
        for label, operation in operations
        for parameter in operation.get("parameters", [])
        if parameter["name"] == "Idempotency-Key"
    ]
    assert len(keyed) >= 10
    assert all(parameter["required"] for _, parameter in keyed), keyed
    # and every API operation documents its problem+json answers with the Problem schema
    for label, operation in operations:
        if not operation.get("security"):
            continue
        responses = operation["responses"]
        assert {"401", "403", "429"} <= set(responses), label
        errors = [status for status in responses if status >= "400"]
        for status in errors:
            content = responses[status]["content"]
            assert content == {"application/problem+json": {"schema": problem_ref}}, label
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), label
    # and FastAPI's validation error shape, never sent, is gone
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    # and text fields say that control characters are refused
    name = document["components"]["schemas"]["CustomerIn"]["properties"]["first_name"]
    assert name["anyOf"][0]["pattern"] == "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]*$"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model an annotation names (``X | None``, ``list[X]``, ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def test_every_api_request_body_is_a_strict_model(app: FastAPI) -> None:
    """The rules above hold by construction: an API body model that is a plain ``BaseModel``
    would take control characters, untrimmed blank names and ``"10"`` for 10 (a webhook
    endpoint's name and a campaign's did)."""
    loose = sorted(
        f"{sorted(route.methods)[0]} {path}: {model.__name__}"
        for path, route in every_route(app.routes)
        if path.startswith("/v1") and isinstance(route, APIRoute) and route.body_field
        for model in _models_in(route.body_field.field_info.annotation)
        if not issubclass(model, StrictModel)
    )
    assert loose == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        pytest.param("/v1/feedback/tickets?customer_id=cus_1", "customer_id", id="tickets"),
        pytest.param("/v1/products?limt=5", "limt", id="misspelt-limit"),
        pytest.param("/v1/recommendations?placement=home&colour=red", "colour", id="own-query"),
    ],
)
def test_a_query_parameter_the_endpoint_does_not_take_is_refused_naming_it(
    client, admin, path, name
) -> None:
    """FastAPI ignores what a route does not declare: an unsupported filter would answer for
    everyone, a misspelt limit would quietly page by the default."""
    response = client.get(path, headers=admin)
    _assert_refused(response, name, "unknown_query_parameter", location="query")
    assert "this endpoint takes:" in response.json()["detail"]


def _bodiless_commands(app: FastAPI) -> list[tuple[str, str]]:
    """Every /v1 command that takes no body (nor reads its own)."""
    return sorted(
        (method, path)
        for path, route in every_route(app.routes)
        if path.startswith("/v1/")
        and isinstance(route, APIRoute)
        and route.body_field is None
        and "requestBody" not in (route.openapi_extra or {})
        for method in route.methods & {"POST", "PUT", "PATCH", "DELETE"}
    )


def test_a_command_that_takes_no_body_refuses_one_with_fields(client, app: FastAPI) -> None:
    """FastAPI ignores a body a route does not declare: {"at": "2027-01-01"} sent to a cancel
    would look taken. Each such command refuses it naming body; none, or {}, are taken."""
    commands = _bodiless_commands(app)
    assert ("POST", "/v1/campaigns/{campaign_id:int}/pause") in commands
    assert ("POST", "/v1/loyalty/members/{customer_id}/membership/cancel") in commands
    for method, path in commands:
        url = re.sub(r"\{[^}]+\}", "1", path)
        refused = client.request(method, url, json={"at": "2027-01-01"})
        _assert_refused(refused, "body", "body_not_taken")
        assert "takes no body" in refused.json()["errors"][0]["message"], (method, path)
        for empty in (None, {}):
            taken = client.request(method, url, json=empty)
            # no key was sent: the body passed, and the key check answers
            assert taken.status_code == 401, (method, path, empty, taken.text)
