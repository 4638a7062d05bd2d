"""Control characters in a request's path, query string or ``Idempotency-Key`` header are
refused before any route runs: a ``422`` problem naming the parameter, on every database.

Bodies are checked by their models (see :func:`rapport.platform.schemas.exact_input`); the
path and query parameters of FastAPI routes and of the hot routes that read their own query
string never reach a model of ours, so this ASGI middleware holds them to the same rule. The
usual request pays one regular-expression search over its path and raw query string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from rapport.platform.errors import (
    InvalidInput,
    answer_problem,
    field_error,
    for_a_person,
    problem_response,
)
from rapport.platform.openapi import refuses, repeated_query_error, takes_several
from rapport.platform.schemas import CONTROL_CHARACTER_CODE

# A control character in a raw query string: percent-encoded (``%00``…``%1F``, ``%7F``) or,
# from lenient clients, as it is. Tab, line feed and carriage return are refused here too:
# no identifier or lookup value holds them.
_RAW_QUERY_CONTROL = re.compile(rb"%(?:[01][0-9A-Fa-f]|7[Ff])|[\x00-\x1f\x7f]")
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDEMPOTENCY_HEADER = b"idempotency-key"


def _message(text: str) -> str:
    found = _PATH_CONTROL.search(text)
    position = found.start() if found else 0
    character = f"\\u{ord(text[position]):04x}" if found else "?"
    return f"Text may not contain control characters ({character} at position {position})"


class RefuseControlCharacters:
    """Answer 422 problem+json when the path, a query parameter or the ``Idempotency-Key``
    header holds a control character, naming the path parameter, query parameter or header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _refusal(scope)
            if refusal is not None:
                location, name, message = refusal
                error = field_error((location, name), message, CONTROL_CHARACTER_CODE)
                problem: dict[str, Any] = {
                    "status": InvalidInput.status,
                    "slug": InvalidInput.slug,
                    "title": InvalidInput.title,
                    "detail": f"{error['field']}: {message}",
                    "field": error["field"],
                    "errors": [error],
                }
                request = Request(scope)
                # A person who followed such an address to an admin page gets a page.
                response = (
                    answer_problem(request, **problem)
                    if for_a_person(request)
                    else problem_response(
                        instance=_printable(str(scope.get("path", ""))), **problem
                    )
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> tuple[str, str, str] | None:
    """(location, name, message) of the first control character, or None."""
    path = str(scope.get("path", ""))
    if _PATH_CONTROL.search(path):
        return "path", _path_parameter(scope, path), _message(path)
    raw_query = scope.get("query_string", b"")
    if raw_query and _RAW_QUERY_CONTROL.search(raw_query):
        for name, value in parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True):
            # Starlette decodes the query string as UTF-8; bytes below 0x80 read the same.
            for text in (name, value):
                if _PATH_CONTROL.search(text):
                    return "query", _printable(name), _message(text)
    for header, value in scope.get("headers", ()):
        if header == _IDEMPOTENCY_HEADER and _RAW_QUERY_CONTROL.search(value):
            text = value.decode("latin-1")
            if _PATH_CONTROL.search(text):
                return "header", "Idempotency-Key", _message(text)
    return None


def _path_parameter(scope: Scope, path: str) -> str:
    """The name of the documented path parameter that holds the control character (``path``
    when no documented operation has this path, or the character is in its fixed part)."""
    app = scope.get("app")
    openapi = getattr(app, "openapi", None)
    if openapi is None:
        return "path"
    for template in _templates(tuple(openapi().get("paths", {}))):
        found = template.fullmatch(path)
        if found is None:
            continue
        for name, value in found.groupdict().items():
            if _PATH_CONTROL.search(value):
                return name
    return "path"


@cache
def _templates(paths: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """The OpenAPI path templates as patterns (``/v1/customers/{customer_id}``)."""
    return tuple(
        re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))) for path in paths
    )


def _printable(text: str) -> str:
    """``text`` with control characters written as ``\\uXXXX``, for the problem's fields."""
    return _PATH_CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


# --- A query parameter that takes one value, given twice ---------------------------------------


@refuses("422", under="/v1/")
async def refuse_unknown_and_repeated_query_parameters(request: Request) -> None:
    """Application-wide dependency. On the API (``/v1``), a query parameter the endpoint does
    not take is a 422 naming it and listing those it takes: FastAPI would ignore it, and a
    misspelt or unsupported filter (``GET /v1/feedback/tickets?customer_id=…``) would quietly
    answer for everyone. Anywhere, a parameter that takes one value given more than once
    (``?category=a&category=b``) is a 422 naming it; FastAPI would quietly use the last.
    Requests without a query string pay one check."""
    params = request.query_params
    if not params:
        return
    taken = _query_parameters(request.scope.get("route"))
    if request.url.path.startswith("/v1/"):
        for name in params:
            if name not in taken.every:
                raise RequestValidationError([_unknown_query_error(name, taken.every)])
    if len(params.multi_items()) == len(params):
        return
    for name in params:
        given = params.getlist(name)
        if name in taken.single and len(given) > 1:
            raise RequestValidationError([repeated_query_error(name, given)])


def _unknown_query_error(name: str, taken: frozenset[str]) -> dict[str, Any]:
    listed = ", ".join(sorted(taken)) if taken else "none"
    return {
        "type": "unknown_query_parameter",
        "loc": ("query", name),
        "msg": f"Unknown query parameter; this endpoint takes: {listed}",
        "input": name,
    }


@dataclass(frozen=True)
class _Taken:
    every: frozenset[str]
    single: frozenset[str]  # those that take one value


_TAKEN = "rapport_query_parameters"


def _query_parameters(route: Any) -> _Taken:
    """The query parameters ``route`` takes (its handler's, its dependencies' and those it
    reads itself and documents in ``openapi_extra``), worked out once per route and kept on
    it (routes are not hashable)."""
    known: _Taken | None = getattr(route, _TAKEN, None)
    if known is None:
        every, single = _declared(getattr(route, "dependant", None))
        # A route that reads its own query (``openapi.parse_query``) also checks repeats.
        for parameter in (getattr(route, "openapi_extra", None) or {}).get("parameters", []):
            if parameter.get("in") == "query":
                every.add(parameter["name"])
        known = _Taken(frozenset(every), frozenset(single))
        if route is not None:
            setattr(route, _TAKEN, known)
    return known


def _declared(dependant: Any) -> tuple[set[str], set[str]]:
    every: set[str] = set()
    single: set[str] = set()
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        for field in current.query_params:
            every.add(field.alias)
            if not takes_several(field.field_info.annotation):
                single.add(field.alias)
        pending.extend(current.dependencies)
    return every, single


# --- A body sent to a command that takes none ------------------------------------------------

_COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_NO_BODY = (b"", b"{}")


@refuses("422", under="/v1/", methods=_COMMAND_METHODS)
async def refuse_a_body_where_none_is_taken(request: Request) -> None:
    """Application-wide dependency. On the API (``/v1``), a command that takes no body (pause
    a campaign, cancel a membership, train a model) answers a body with fields by a ``422``
    naming ``body``, as a command with a body refuses a field it does not take: FastAPI would
    ignore it, and ``{"at": "2027-01-01"}`` sent to a cancel would look accepted. No body,
    and ``{}``, are taken. Routes that read their own body (the hot ledger commands, tracking)
    say so in their OpenAPI ``requestBody`` and are left to it."""
    if request.method not in _COMMAND_METHODS or not request.url.path.startswith("/v1/"):
        return
    route = request.scope.get("route")
    if route is None or getattr(route, "body_field", None) is not None:
        return
    if "requestBody" in (getattr(route, "openapi_extra", None) or {}):
        return
    body = (await request.body()).strip()
    if body.replace(b" ", b"") in _NO_BODY:
        return
    raise RequestValidationError(
        [
            {
                "type": "body_not_taken",
                "loc": ("body",),
                "msg": "This endpoint takes no body: send none (or {})",
                "input": None,
            }
        ]
    )
