"""Hot routes check their own query strings and document them: the checks answer like
FastAPI's parameters, and the OpenAPI document says what they accept."""

from __future__ import annotations

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
