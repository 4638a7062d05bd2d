"""Hot routes check their own query strings and document them: the checks answer like
FastAPI's parameters, and the OpenAPI document says what they accept."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from rapport.platform.errors import install_problem_handlers
from rapport.platform.openapi import parse_query, query_parameters
from tests.conftest import auth


class Search(BaseModel):
    text: str = Field(min_length=2, description="What to look for")
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    tags: Annotated[list[str] | None, Field(max_length=3)] = None


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/search", openapi_extra={"parameters": query_parameters(Search)})
    async def search(request: Request) -> dict[str, object]:
        return parse_query(request, Search).model_dump()

    return app


def test_the_query_string_is_parsed_with_repeated_keys_as_lists() -> None:
    with TestClient(_app()) as client:
        response = client.get("/search?text=red+wine&tags=a&tags=b&limit=5&unknown=1")
    assert response.status_code == 200
    assert response.json() == {"text": "red wine", "limit": 5, "tags": ["a", "b"]}


def test_bad_parameters_are_problems_naming_each_one() -> None:
    with TestClient(_app()) as client:
        response = client.get("/search?limit=0&tags=a&tags=b&tags=c&tags=d")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "text"
    assert {(e["field"], e["location"]) for e in problem["errors"]} == {
        ("text", "query"),
        ("limit", "query"),
        ("tags", "query"),
    }


def test_the_parameters_are_documented_with_their_constraints() -> None:
    documented = {p["name"]: p for p in _app().openapi()["paths"]["/search"]["get"]["parameters"]}
    assert documented["text"]["required"] is True
    assert documented["text"]["in"] == "query"
    assert documented["text"]["description"] == "What to look for"
    assert documented["text"]["schema"]["minLength"] == 2
    assert documented["limit"]["required"] is False
    assert documented["limit"]["schema"]["maximum"] == 50
    tags = documented["tags"]["schema"]["anyOf"][0]
    assert tags["type"] == "array"
    assert tags["maxItems"] == 3


def test_recommendations_document_their_parameters_and_key(client, api_key) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/recommendations"]["get"]
    names = [p["name"] for p in operation["parameters"]]
    assert names[0] == "placement"
    assert {"customer_id", "cart", "limit", "store_id", "lat", "lon", "at"} <= set(names)
    assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    # and the key is checked before anything else
    response = client.get("/v1/recommendations?placement=nowhere")
    assert response.status_code == 401
    response = client.get("/v1/recommendations?placement=nowhere", headers=auth(api_key("ingest")))
    assert response.status_code == 403
    response = client.get("/v1/recommendations?placement=nowhere", headers=auth(api_key("read")))
    assert response.status_code == 422
    assert response.json()["field"] == "placement"


def test_every_operation_that_refuses_a_query_parameter_it_does_not_take_documents_422(
    client, api_key
) -> None:
    """Found by asking, not from a list: each operation of the document is sent a query
    parameter none takes, and each that refuses it (GET /v1/stores, which takes none, too)
    lists the 422 it answers, with the Problem schema."""
    document = client.get("/openapi.json").json()
    headers = auth(api_key("admin"))
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    refused, undocumented = [], []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            # when the operation is asked with a parameter it does not take
            url = re.sub(r"\{[^}]+\}", "1", path) + "?not_a_parameter=1"
            response = client.request(method.upper(), url, headers=headers)
            codes = (
                [error["code"] for error in response.json().get("errors", [])]
                if response.headers["content-type"] == "application/problem+json"
                else []
            )
            if response.status_code != 422 or "unknown_query_parameter" not in codes:
                continue
            # then, as it refuses it, its document says so
            refused.append(f"{method.upper()} {path}")
            if operation["responses"].get("422", {}).get("content") != problem:
                undocumented.append(f"{method.upper()} {path}")
    assert {"GET /v1/stores", "GET /v1/webhook-endpoints", "POST /v1/orders"} <= set(refused)
    assert len(refused) > 100
    assert undocumented == []
