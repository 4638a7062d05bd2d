"""Every bad request gets the right problem+json and changes nothing; a person who opened an
admin page gets the same problem as a page."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from rapport.catalog import service as catalog
from rapport.main import create_app
from rapport.platform import budget
from rapport.platform.http_protocol import ProblemHttpProtocol
from rapport.platform.middleware import RequestBudget
from tests.conftest import app_committing_to, auth, command, free_port, migrated_sqlite

GOOD_PRODUCT = {
    "name": "Corkscrew",
    "category_path": "Kitchen/Tools",
    "price_minor": 900,
    "cost_minor": 300,
    "currency": "EUR",
}


@pytest.fixture
def writer(api_key) -> dict[str, str]:
    return {**auth(api_key("write")), "Content-Type": "application/json"}


def test_malformed_json_is_400(client, db, writer) -> None:
    response = client.put("/v1/products/SKU-1", content=b'{"name": "Cork', headers=writer)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/malformed-body")
    assert problem["field"] == "body"
    assert problem["instance"] == "/v1/products/SKU-1"
    assert catalog.count_products(db) == 0


@pytest.mark.parametrize("declared", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_declared_as_something_else_is_415_saying_what_to_send(
    client, db, writer, declared
) -> None:
    import json

    response = client.put(
        "/v1/products/SKU-1",
        content=json.dumps(GOOD_PRODUCT).encode(),
        headers={**writer, "Content-Type": f"{declared}; charset=utf-8"},
    )
    assert response.status_code == 415
    problem = response.json()
    assert problem["type"].endswith("/unsupported-media-type")
    assert problem["field"] == "Content-Type"
    assert problem["detail"] == (
        "The body must be JSON sent with Content-Type: application/json;"
        f" this request said '{declared}'"
    )
    assert catalog.count_products(db) == 0


def test_a_json_body_without_a_content_type_is_415_saying_what_to_send(client, db, writer) -> None:
    import json

    headers = {k: v for k, v in writer.items() if k != "Content-Type"}
    response = client.put(
        "/v1/products/SKU-1", content=json.dumps(GOOD_PRODUCT).encode(), headers=headers
    )
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "The body must be JSON sent with Content-Type: application/json; this request sent none"
    )


def test_wrong_type_is_422_naming_the_field(client, db, writer) -> None:
    response = client.put(
        "/v1/products/SKU-1", json={**GOOD_PRODUCT, "price_minor": "nine"}, headers=writer
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert problem["field"] == "price_minor"
    assert problem["errors"][0]["pointer"] == "/price_minor"
    assert problem["errors"][0]["code"] == "int_type"  # a string is not a number, however it reads
    assert catalog.count_products(db) == 0


def _resolved(document: Any, pointer: str) -> Any:
    """What an RFC 6901 pointer names in the document, read as any client reads it."""
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def test_a_key_holding_a_slash_or_a_tilde_is_pointed_at_whole(client, db, writer) -> None:
    # given a product whose attribute keys hold "/" and "~" (one "~1" as typed), each value bad
    attributes = {"a/b": "bell\u0007", "x~y": "bell\u0007", "z~1": "bell\u0007", "a": "fine"}
    body = {**GOOD_PRODUCT, "attributes": attributes}
    # when it is sent
    response = client.put("/v1/products/SKU-1", json=body, headers=writer)
    # then each error's pointer is escaped (RFC 6901) and names that very key, not another
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(error["field"], error["pointer"]) for error in errors} == {
        ("attributes.a/b", "/attributes/a~1b"),
        ("attributes.x~y", "/attributes/x~0y"),
        ("attributes.z~1", "/attributes/z~01"),
    }
    assert all(_resolved(body, error["pointer"]) == "bell\u0007" for error in errors)
    # and nothing was written
    assert catalog.count_products(db) == 0


def test_the_whole_body_is_the_empty_pointer(client, db, writer) -> None:
    response = client.put("/v1/products/SKU-1", json=["not", "an", "object"], headers=writer)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == ""
    assert catalog.count_products(db) == 0


def test_unknown_field_is_rejected_by_name(client, db, writer) -> None:
    response = client.put(
        "/v1/products/SKU-1", json={**GOOD_PRODUCT, "colour": "red"}, headers=writer
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "colour"
    assert problem["errors"][0]["code"] == "extra_forbidden"
    assert catalog.count_products(db) == 0


def test_nested_error_names_the_full_path(client, db, writer) -> None:
    body = {
        "products": [
            {**GOOD_PRODUCT, "sku": "A1"},
            {**GOOD_PRODUCT, "sku": "A2", "currency": "euro"},
        ]
    }
    response = client.post("/v1/products/bulk", json=body, headers=command(writer))
    assert response.status_code == 422
    assert response.json()["field"] == "products.1.currency"
    # and the valid first product was not written either: a bulk call is all or nothing
    assert catalog.count_products(db) == 0


def test_missing_field_is_named(client, writer) -> None:
    body = {k: v for k, v in GOOD_PRODUCT.items() if k != "currency"}
    response = client.put("/v1/products/SKU-1", json=body, headers=writer)
    assert response.status_code == 422
    assert response.json()["field"] == "currency"
    assert response.json()["errors"][0]["code"] == "missing"


def test_declared_oversize_body_is_413(client, db, writer) -> None:
    # the test app allows 64 KiB
    body = {**GOOD_PRODUCT, "name": "x" * 70_000}
    response = client.put("/v1/products/SKU-1", json=body, headers=writer)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "body"
    assert catalog.count_products(db) == 0


def test_streamed_oversize_body_without_length_is_413(client, db, writer) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    response = client.put("/v1/products/SKU-1", content=chunks(), headers=writer)
    assert response.status_code == 413
    assert catalog.count_products(db) == 0


def test_bad_path_parameter_is_422(client, writer) -> None:
    response = client.put("/v1/products/bad sku!", json=GOOD_PRODUCT, headers=writer)
    assert response.status_code == 422
    assert response.json()["field"] == "sku"
    assert response.json()["errors"][0]["location"] == "path"


def test_unknown_route_is_404_problem(client) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        "No such path: GET /v1/nothing-here. The API's paths are listed at /docs"
    )
    # a method the path does not take says which it does
    wrong = client.put("/v1/products")
    assert wrong.status_code == 405
    assert wrong.json()["detail"] == "PUT is not taken here; this path takes GET and HEAD"
    assert wrong.headers["Allow"] == "GET, HEAD"


def test_a_method_not_taken_names_every_method_the_path_takes(client) -> None:
    # two routes share each of these paths with different methods; the answer names them all
    for method, path, taken in (
        ("PATCH", "/v1/recommendations/rules/1", "PUT, DELETE"),
        ("DELETE", "/v1/recommendations/rules", "GET, HEAD, POST"),
        ("PUT", "/v1/loyalty/members/C-1/membership", "GET, HEAD, POST"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == taken, (method, path)
        assert response.json()["detail"].endswith(" and ".join(taken.rsplit(", ", 1))), (
            response.json()
        )


def test_missing_resource_is_404_naming_the_field(client, api_key) -> None:
    response = client.get("/v1/products/NOPE", headers=auth(api_key("read")))
    assert response.status_code == 404
    assert response.json()["field"] == "sku"


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_person_who_opens_a_missing_admin_page_reads_the_problem(client) -> None:
    # a browser navigating to an admin address that does not exist
    response = client.get("/admin/no-such-page", headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text
    assert "There is no admin page at this address." in response.text
    assert 'href="/admin/no-such-page">Try again</a>' in response.text
    assert 'href="/admin">Admin home</a>' in response.text
    # the same address asked for by a program, or by an htmx swap, stays problem+json
    for headers in ({}, {**BROWSER, "HX-Request": "true"}):
        machine = client.get("/admin/no-such-page", headers=headers)
        assert machine.status_code == 404
        assert machine.headers["content-type"] == "application/problem+json"


def test_an_expired_admin_form_says_so_in_a_page(client) -> None:
    # a form sent without its security token (a tab left open past its session)
    response = client.post(
        "/admin/login", data={"email": "a@example.com", "password": "x"}, headers=BROWSER
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Form expired</h1>" in response.text
    assert "reload the page and try again" in response.text
    # a form is not sent again by a link: no "Try again" that would GET the form's address
    assert "Try again" not in response.text


def test_a_problem_page_escapes_what_it_quotes(client) -> None:
    response = client.get("/admin/<script>alert(1)</script>", headers=BROWSER)
    assert response.status_code == 404
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text


def test_the_api_never_answers_with_a_page(client) -> None:
    response = client.get("/v1/no-such-route", headers=BROWSER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_admin_page_past_its_budget_is_a_page_saying_when_to_retry() -> None:
    # a page whose handler takes longer than the request budget (the budget answers before
    # the admin session is read, so the page must need none)
    async def slow(request: Request) -> PlainTextResponse:
        await asyncio.sleep(5)
        return PlainTextResponse("too late")

    app = RequestBudget(Starlette(routes=[Route("/admin/slow", slow)]), seconds=0.2)
    with TestClient(app) as browser:
        response = browser.get("/admin/slow", headers=BROWSER)
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(budget.RETRY_AFTER_SECONDS)
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Request took too long</h1>" in response.text
    assert 'href="/admin/slow">Try again</a>' in response.text


def test_an_unexpected_error_is_a_500_problem_logged_once_with_its_traceback(
    settings, caplog
) -> None:
    # given a route that fails in a way nobody foresaw (on an app of its own: the app fixture's
    # routes are shared)
    def fails() -> None:
        raise ZeroDivisionError("division by zero")

    app = create_app(settings, run_worker=False)
    app.add_api_route("/v1/failing-on-purpose", fails)
    client = TestClient(app, raise_server_exceptions=True)
    # when it is asked (the error is not raised again to the server: TestClient would raise it)
    with caplog.at_level("ERROR"):
        response = client.get("/v1/failing-on-purpose")
    # then the caller gets a problem that changes nothing and leaks nothing
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("Something went wrong on our side")
    assert "division" not in response.text
    # and the log says once which request failed and how, with the one traceback
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "unhandled error on GET /v1/failing-on-purpose: ZeroDivisionError: division by zero"
    ]
    assert caplog.records[-1].exc_info is not None


def test_after_a_500_the_keep_alive_connection_answers_the_next_request(tmp_path) -> None:
    # given a real server whose one route fails, and a client keeping its connection
    application = app_committing_to(
        migrated_sqlite(tmp_path / "errors.db"), tmp_path, secret_key="errors-test-secret"
    )

    def fails() -> None:
        raise ZeroDivisionError("division by zero")

    application.add_api_route("/v1/failing-on-purpose", fails)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, http=ProblemHttpProtocol)
    )
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger().addHandler(handler)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            # when the failing route is asked, then the health check, on one connection
            failed = client.get("/v1/failing-on-purpose")
            after = client.get("/healthz")
            again = client.get("/v1/failing-on-purpose")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        logging.getLogger().removeHandler(handler)
    # then the failure is one 500 problem, and the connection answers what follows
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert after.status_code == 200
    assert again.status_code == 500
    # and each failure is logged once, with one traceback, never by the server again
    text = logged.getvalue()
    assert "Exception in ASGI application" not in text
    assert text.count("Traceback (most recent call last)") == 2
    assert text.count("unhandled error on GET /v1/failing-on-purpose") == 2


@pytest.mark.parametrize(
    ("method", "path", "field", "detail"),
    [
        ("GET", "/v1/campaigns/zz1", "campaign_id", "No campaign zz1"),
        (
            "GET",
            "/v1/campaigns/99999999999999999999",
            "campaign_id",
            "No campaign 99999999999999999999",
        ),
        ("GET", "/v1/campaigns/0/results", "campaign_id", "No campaign 0"),
        ("POST", "/v1/campaigns/zz1/pause", "campaign_id", "No campaign zz1"),
        # a row looked up and not found (its field is the campaigns' own to name)
        ("GET", "/v1/campaigns/12345", None, "No campaign 12345"),
        ("GET", "/v1/segments/zz1", "segment_id", "No segment zz1"),
        ("GET", "/v1/segments/99999999999", "segment_id", "No segment 99999999999"),
        ("GET", "/v1/deliveries/-3", "delivery_id", "No delivery -3"),
        ("DELETE", "/v1/webhooks/subscriptions/x", "subscription_id", "No subscription x"),
        ("DELETE", "/v1/recommendations/rules/1.5", "rule_id", "No rule 1.5"),
    ],
)
def test_an_id_that_cannot_exist_is_404_naming_it_like_one_that_does_not(
    client, api_key, method: str, path: str, field: str | None, detail: str
) -> None:
    # when a numeric id in a path is no number, out of the ids' range, or names no row
    response = client.request(method, path, headers=command(api_key("admin")))

    # then each is the same 404, naming the parameter and what was looked for
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://rapport.dev/problems/not-found"
    assert problem.get("field") == field
    assert problem["detail"] == detail
