"""The OpenAPI document lists the problem answers the API really gives, declared once where
the document's responses are assembled: 415 on every operation that takes a JSON body, 410
``erased`` on every command that takes an Idempotency-Key, 414 wherever a path or query
parameter may make the URL too long (a long cart to ``GET /v1/recommendations``), and 502
``upstream-failed`` where a test send meets another server. Each with the Problem schema."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def operations(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    document = client.get("/openapi.json").json()
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete") and operation.get("security")
    ]


def lists(operation: dict[str, Any], status: str) -> bool:
    response = operation["responses"].get(status, {})
    return response.get("content") == PROBLEM and bool(response.get("description"))


def test_every_json_body_operation_lists_415(client) -> None:
    found = [
        (name, operation)
        for name, operation in operations(client)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(found) > 50
    assert [name for name, operation in found if not lists(operation, "415")] == []


def test_every_idempotent_command_lists_410(client) -> None:
    found = [
        (name, operation)
        for name, operation in operations(client)
        if any(
            parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key"
            for parameter in operation.get("parameters", [])
        )
    ]
    assert len(found) > 20
    assert [name for name, operation in found if not lists(operation, "410")] == []
    assert "erased" in found[0][1]["responses"]["410"]["description"]


def test_a_test_send_lists_502_and_recommendations_414(client) -> None:
    documented = dict(operations(client))
    assert lists(documented["POST /v1/campaigns/{campaign_id}/test-send"], "502")
    assert lists(documented["GET /v1/recommendations"], "414")


def test_the_listed_answers_are_the_ones_given(client, api_key) -> None:
    headers = auth(api_key("admin"))
    # a cart too long for a URL is the 414 the document lists
    cart = "&".join(f"cart=SKU-{index:06d}" for index in range(900))
    long = client.get(f"/v1/recommendations?placement=home&{cart}", headers=headers)
    assert long.status_code == 414, long.text
    assert long.headers["content-type"] == "application/problem+json"
    # a JSON body sent as something else is the 415 the document lists
    text = client.post(
        "/v1/orders",
        content=b'{"a": 1}',
        headers={**headers, "Idempotency-Key": "k-415", "Content-Type": "text/plain"},
    )
    assert text.status_code == 415, text.text
    assert text.headers["content-type"] == "application/problem+json"
