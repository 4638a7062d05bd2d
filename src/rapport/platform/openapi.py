"""OpenAPI documentation and input checks for the few hot routes that skip FastAPI's parameter
handling (tracking events, recommendations): for them, FastAPI's dependency solving costs
more than the work. They validate with pydantic themselves, and document what they accept
through ``openapi_extra`` with the same schemas, so the OpenAPI document stays true. And the
API reference pages (``/docs``, ``/redoc``), served from local files."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from rapport.platform.domain_events import event_classes

M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=Callable[..., Any])


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` to its own ``$defs`` replaced by the definition
    (``openapi_extra`` schemas do not reach the OpenAPI components)."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    result: dict[str, Any] = inline(schema)
    return result


def request_body_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """A required JSON request body of the adapter's type, for ``openapi_extra``."""
    return {
        "required": True,
        "content": {"application/json": {"schema": inline_refs(adapter.json_schema())}},
    }


def takes_several(annotation: Any) -> bool:
    """Whether a query parameter of this type takes several values (the key repeated): a
    list, set or tuple, optional or not."""
    return any(
        get_origin(candidate) in (list, set, tuple, frozenset)
        for candidate in (annotation, *get_args(annotation))
    )


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI query parameters (a list field is the key repeated)."""
    schema = inline_refs(model.model_json_schema())
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        field_schema = dict(field_schema)
        description = field_schema.pop("description", None)
        field_schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": field_schema,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


@cache
def _query_fields(model: type[BaseModel]) -> tuple[tuple[str, bool], ...]:
    """The model's fields, each with whether it takes several values (the key repeated)."""
    return tuple(
        (name, takes_several(field.annotation)) for name, field in model.model_fields.items()
    )


def repeated_query_error(name: str, values: list[str]) -> dict[str, Any]:
    """The validation error for ``name`` given more than once, as pydantic words its own."""
    return {
        "type": "single_value",
        "loc": ("query", name),
        "msg": f"Give {name} once: it takes one value, and {len(values)} were sent",
        "input": values,
    }


def parse_query(request: Request, model: type[M]) -> M:
    """The request's query string as ``model``; a 422 problem naming each bad parameter
    otherwise, as FastAPI's own parameters would give. Unknown parameters are ignored."""
    params = request.query_params
    values: dict[str, Any] = {}
    for name, is_list in _query_fields(model):
        if name not in params:
            continue
        given = params.getlist(name)
        if not is_list and len(given) > 1:
            raise RequestValidationError([repeated_query_error(name, given)])
        values[name] = given if is_list else given[0]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise _request_error(error, "query") from None


def validated_body(parsed: Any, model: type[M]) -> M:
    """A request body already parsed as JSON (``platform.bodies.parse_body``, the one reader
    of every body) as ``model``, answered as FastAPI's own body parameter would be when it is
    not: 422 naming each bad field."""
    try:
        return model.model_validate(parsed)
    except ValidationError as error:
        raise _request_error(error, "body") from None


def _request_error(error: ValidationError, part: str) -> RequestValidationError:
    """pydantic's errors located as FastAPI locates them (``("query", "limit")``), so the
    problem handler answers exactly as for FastAPI's own parameters."""
    return RequestValidationError(
        [{**detail, "loc": (part, *detail["loc"])} for detail in error.errors(include_url=False)]
    )


# The problem+json answers every operation may give, documented once (see errors.py).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: what went wrong and, for input, which field.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["https://rapport.dev/problems/validation-error"]},
        "title": {"type": "string", "examples": ["Invalid input"]},
        "status": {"type": "integer", "examples": [422]},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request's path."},
        "field": {"type": "string", "description": "The offending input, when there is one."},
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            "description": "Each invalid field (validation errors).",
        },
    },
    # Some problems add members of their own (``required_scope``, ``line``).
    "additionalProperties": True,
}
PROBLEM_FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["field", "location", "pointer", "message", "code"],
    "properties": {
        "field": {"type": "string", "examples": ["lines.0.quantity"]},
        "location": {"type": "string", "enum": ["body", "query", "path", "header"]},
        "pointer": {"type": "string", "examples": ["/lines/0/quantity"]},
        "message": {"type": "string"},
        "code": {"type": "string", "examples": ["int_type", "control_character"]},
    },
}
PROBLEM_DESCRIPTIONS = {
    "400": "The body is not JSON, or a required header (Idempotency-Key) is missing",
    "401": "No API key, or an unknown or revoked key",
    "403": "The key lacks the scope this operation needs (`required_scope`)",
    "404": "No such resource (`field` names the identifier)",
    "409": "The request clashes with existing data or with a command still running",
    "410": "A retry under an Idempotency-Key whose answer named a person since erased "
    "(`erased`, `Idempotent-Replayed: true`): nothing is applied again or revealed",
    "413": "The body is over the configured limit",
    "414": "The URL (path and query string) is over 8 KiB (`field` names the parameter, or "
    "the path, taking the most of it)",
    "415": "The body is not sent as JSON (`Content-Type: application/json`), or in a "
    "`Content-Encoding` Rapport does not read (`field` names the header)",
    "422": "Invalid input: wrong types, missing or unknown fields, values out of range, control "
    "characters, a query parameter the operation does not take (`field` names it)",
    "429": "Over the key's rate limit (see `Retry-After`)",
    "502": "A server Rapport relies on (an SMTP server, a webhook endpoint) refused or could "
    "not be reached (`upstream-failed`): the request may work when sent again",
    "503": "The request ran out of its time budget; nothing was changed, try again",
}
_COMMAND_METHODS = frozenset(("post", "put", "patch", "delete"))
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    """The problem answers an API operation may give, from what it takes: a JSON body may
    come as something else (415), an Idempotency-Key's answer may have been erased since
    (410), a path or query parameter may make the URL too long (414)."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    json_body = "application/json" in operation.get("requestBody", {}).get("content", {})
    needs_key = any(
        parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key"
        for parameter in parameters
    )
    statuses = ["401", "403", "429", "503"]
    if has_body or needs_key:
        statuses.append("400")
    if needs_key:
        statuses.append("410")
    if any(parameter.get("in") in ("path", "query") for parameter in parameters):
        statuses.append("414")
    if json_body:
        statuses.append("415")
    if parameters or has_body or method in _COMMAND_METHODS:
        # Paths, queries, bodies and commands name resources (a customer, a product, an order).
        statuses.append("404")
    if method in _COMMAND_METHODS:
        statuses.append("409")
    if has_body:
        statuses.append("413")
    if parameters or has_body:
        statuses.append("422")
    return sorted(statuses)


@dataclass(frozen=True)
class Refusals:
    """The problem answers an application-wide dependency may give on every operation under
    ``under`` (of ``methods``, or any), whatever the operation declares: the document lists
    them there (see :func:`refuses`)."""

    statuses: tuple[str, ...]
    under: str
    methods: frozenset[str] | None = None

    def cover(self, path: str, method: str) -> bool:
        return path.startswith(self.under) and (self.methods is None or method in self.methods)


_REFUSALS = "rapport_refusals"


def refuses(*statuses: str, under: str, methods: Iterable[str] | None = None) -> Callable[[C], C]:
    """Mark an application-wide dependency with the problem answers it may give on every
    operation under ``under`` (a query parameter no operation declares, refused everywhere):
    :func:`install_openapi` lists them on each, as no operation's own signature says so."""
    refusals = Refusals(statuses, under, frozenset(m.lower() for m in methods) if methods else None)

    def mark(check: C) -> C:
        setattr(check, _REFUSALS, refusals)
        return check

    return mark


def app_wide_refusals(app: FastAPI) -> list[Refusals]:
    """What the application's own dependencies (``FastAPI(dependencies=...)``, every route's)
    may refuse, as :func:`refuses` marked them."""
    found = (getattr(d.dependency, _REFUSALS, None) for d in app.router.dependencies)
    return [refusals for refusals in found if refusals is not None]


def document_problems(
    document: dict[str, Any], everywhere: Iterable[Refusals] = ()
) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI) saying what the API does: every authenticated operation
    lists its problem+json answers with the ``Problem`` schema (instead of FastAPI's
    ``HTTPValidationError``, which it never sends), every operation those of ``everywhere``
    that cover it, and ``Idempotency-Key`` is required wherever it is taken (a command without
    one is refused)."""
    everywhere = list(everywhere)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemFieldError"] = PROBLEM_FIELD_ERROR_SCHEMA
    for name in _VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
                    parameter["required"] = True
            responses = operation.setdefault("responses", {})
            statuses = _problem_statuses(method, operation) if operation.get("security") else []
            if operation.get("security"):
                # A status a route declares itself (a 404 for "not fitted yet") is a problem too.
                statuses = sorted({*statuses, *(code for code in responses if code >= "400")})
            if "422" in responses:
                statuses = sorted({*statuses, "422"})
            for refusals in everywhere:
                if refusals.cover(path, method):
                    statuses = sorted({*statuses, *refusals.statuses})
            for status in statuses:
                response = responses.setdefault(status, {})
                response["description"] = (
                    response.get("description")
                    if status in responses
                    and response.get("description")
                    and response.get("description") != "Validation Error"
                    else PROBLEM_DESCRIPTIONS.get(status, "A problem (see `title` and `detail`)")
                )
                response["content"] = problem_content
    return document


EVENT_SCHEMA_PREFIX = "event."


def document_event_types(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with each typed event (:mod:`rapport.platform.domain_events`) a domain
    appends to the log, as the schema ``event.<type>`` of its ``properties``: what a processor,
    an export or a stream consumer reads."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for event_type, event in event_classes().items():
        schema = inline_refs(event.model_json_schema())
        schema["title"] = event.__name__
        schema["description"] = inspect.cleandoc(event.__doc__ or "")
        schema["x-event-type"] = event_type
        schema["x-domain"] = event.domain
        schemas[f"{EVENT_SCHEMA_PREFIX}{event_type}"] = schema
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document as :func:`document_problems` and
    :func:`document_event_types` complete it (once per build: FastAPI rebuilds it only when
    routes change)."""
    build = app.openapi
    completed: list[int] = []

    def openapi() -> dict[str, Any]:
        document = build()
        if not completed or completed[-1] != id(document):
            document_problems(document, app_wide_refusals(app))
            document_event_types(document)
            completed.append(id(document))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def install_webhooks(app: FastAPI, event_types: Mapping[str, str]) -> None:
    """Add OpenAPI 3.1 ``webhooks`` to the document: for each event type a subscriber may
    receive (``event_types``: type → what it says), the POST Rapport sends, its signed
    headers and its body, whose ``data`` is the event's published ``event.<type>`` schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        document.setdefault("webhooks", _webhooks(event_types))
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _webhooks(event_types: Mapping[str, str]) -> dict[str, Any]:
    headers = [
        {
            "name": "Rapport-Signature",
            "in": "header",
            "required": True,
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>' with the"
            " subscription's secret>: check it, and that t is recent (docs/webhooks.md).",
            "schema": {"type": "string"},
        },
        {
            "name": "Rapport-Delivery-Id",
            "in": "header",
            "required": True,
            "description": "The same on every try of one delivery: drop a repeat.",
            "schema": {"type": "string"},
        },
    ]
    hooks: dict[str, Any] = {}
    for event_type, meaning in event_types.items():
        body = {
            "type": "object",
            "required": ["id", "type", "occurred_at", "customer_id", "data"],
            "properties": {
                "id": {"type": "string", "description": "The event's id in Rapport's log"},
                "type": {"const": event_type},
                "occurred_at": {"type": "string", "format": "date-time"},
                "customer_id": {"type": ["string", "null"]},
                "external_id": {
                    "type": "string",
                    "description": "The shop's own customer number, when the customer has one",
                },
                "data": {"$ref": f"#/components/schemas/{EVENT_SCHEMA_PREFIX}{event_type}"},
            },
        }
        hooks[event_type] = {
            "post": {
                "summary": meaning,
                "description": f"Sent to each active subscription to `{event_type}` "
                "(POST /v1/webhooks/subscriptions). A 2xx answer delivers it; a 5xx, 408 or "
                "429 answer, a timeout or a connection error is retried with backoff up to the "
                "subscription's max_attempts; any other 4xx answer is final. Either way an "
                "undelivered event is held as dead for replay.",
                "parameters": headers,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
                "responses": {
                    "2XX": {"description": "Received"},
                    "default": {
                        "description": "Not received: 5xx, 408 and 429 are retried, any "
                        "other answer is final (dead, replayable)"
                    },
                },
            }
        }
    return hooks


# --- The API reference pages, from the npm packages installed at set-up ----------------------

VENDOR_URL = "/static/vendor"
SWAGGER_UI_FILES = ("swagger-ui-dist/swagger-ui-bundle.js", "swagger-ui-dist/swagger-ui.css")
REDOC_FILES = ("redoc/bundles/redoc.standalone.js",)
FAVICON = "swagger-ui-dist/favicon-32x32.png"
# The browser itself keeps the pages on this server: ReDoc's sidebar shows a logo from
# cdn.redoc.ly (no option turns it off), which this refuses before any request is made. The
# pages' own start-up script and the viewers' injected styles are inline; ReDoc searches in
# a worker made from a blob.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:;"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)

MISSING_ASSETS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Rapport API reference: not installed</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The API reference is not installed</h1>
<p>This page shows the API with {viewer}, which is served from this machine (nothing is loaded
from the internet). Its files come from npm and are missing here{where}.</p>
<p>Install them with <code>./scripts/setup.sh</code> in Rapport's checkout (it needs
<code>npm</code>; it runs <code>npm ci</code>), or point <code>RAPPORT_VENDOR_STATIC_DIR</code>
at a <code>node_modules</code> folder holding <code>swagger-ui-dist</code> and
<code>redoc</code>; then restart <code>rapport serve</code>.</p>
<p>Meanwhile the machine-readable description is at <a href="{openapi_url}">{openapi_url}</a>.</p>
</body>
</html>
"""


def install_docs_pages(app: FastAPI, vendor_dir: Path | None) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from ``vendor_dir`` (served under
    ``/static/vendor``), never from a CDN: an installation may have no internet access, and
    its API reference should not tell a third party who reads it. Where the files are
    missing, each page says how to install them."""
    openapi_url = app.openapi_url or "/openapi.json"

    def missing(viewer: str, files: tuple[str, ...]) -> HTMLResponse | None:
        absent = [name for name in files if vendor_dir is None or not (vendor_dir / name).is_file()]
        if not absent:
            return None
        where = f" (looked for {absent[0]} in {vendor_dir})" if vendor_dir else ""
        page = MISSING_ASSETS_PAGE.format(viewer=viewer, where=where, openapi_url=openapi_url)
        return HTMLResponse(page, status_code=503)

    def local_only(page: HTMLResponse) -> HTMLResponse:
        page.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return page

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return missing("Swagger UI", SWAGGER_UI_FILES) or local_only(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} API reference",
                swagger_js_url=f"{VENDOR_URL}/{SWAGGER_UI_FILES[0]}",
                swagger_css_url=f"{VENDOR_URL}/{SWAGGER_UI_FILES[1]}",
                swagger_favicon_url=f"{VENDOR_URL}/{FAVICON}",
                # No validator badge: it would send the document's address to swagger.io.
                swagger_ui_parameters={**swagger_ui_default_parameters, "validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return missing("ReDoc", REDOC_FILES) or local_only(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} API reference",
                redoc_js_url=f"{VENDOR_URL}/{REDOC_FILES[0]}",
                redoc_favicon_url=f"{VENDOR_URL}/{FAVICON}",
                with_google_fonts=False,
            )
        )
