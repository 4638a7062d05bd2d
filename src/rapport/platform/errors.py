"""RFC 9457 problem details: every error the API returns has this one shape.

Domain code raises :class:`Problem` subclasses; the handlers below turn them, FastAPI's
validation errors and plain HTTP errors into ``application/problem+json``; a person who
navigated to an admin page gets the same problem as a page they can read
(:func:`answer_problem`).
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import exc as sqlalchemy_errors
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from rapport.platform.openapi import install_openapi

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://rapport.dev/problems/"


class Problem(Exception):
    """An error a client can act on. ``field`` names the offending input when there is one."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra


class InvalidInput(Problem):
    status, slug, title = 422, "validation-error", "Invalid input"


class MalformedFile(InvalidInput):
    """The file cannot be imported as it is. ``line`` is the 1-based line in the file (the
    header is line 1) and ``column`` the header name, when the problem has one."""

    def __init__(self, reason: str, *, line: int | None = None, column: str | None = None) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        detail = f"{', '.join(where)}: {reason}" if where else reason
        # ``line`` also goes into problem+json, should an API ever take files.
        super().__init__(detail[:1].upper() + detail[1:], field=column)
        if line is not None:
            self.extra["line"] = line
        self.line = line
        self.column = column
        self.reason = reason


class MalformedBody(Problem):
    status, slug, title = 400, "malformed-body", "Malformed request body"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UpstreamFailed(Problem):
    """A server Rapport relies on (an SMTP server, a webhook endpoint) refused or could not
    be reached: nothing was wrong with the request, and it may work when sent again."""

    status, slug, title = 502, "upstream-failed", "Another server failed"


# How long a client told the database is unavailable waits before it asks again.
DATABASE_RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(Problem):
    """The database could not be reached, or did not answer within the request's time: the
    request changed nothing, and may work when sent again (with the same Idempotency-Key)."""

    status, slug, title = 503, "database-unavailable", "Database unavailable"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "The database is unavailable or did not answer in time; nothing was changed."
            " Retry shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )


# SQLite's answers that mean "not now" rather than a fault of the request or the code.
_SQLITE_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN}
)


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is down, unreachable, restarting, too busy or did
    not answer in time (a connection refused or lost, PostgreSQL shutting down, a statement
    or lock timeout, SQLite locked), rather than that the request or the code is wrong."""
    if isinstance(error, sqlalchemy_errors.TimeoutError):  # no pooled connection came free
        return True
    if isinstance(error, sqlalchemy_errors.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if isinstance(error.orig, BaseException) else error
    if isinstance(error, psycopg.OperationalError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorcode", None) in _SQLITE_UNAVAILABLE
    return False


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request timeout"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid input"),
    429: ("too-many-requests", "Too many requests"),
    500: ("internal-error", "Internal error"),
    502: ("upstream-failed", "Another server failed"),
}


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    field: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if field is not None:
        body["field"] = field
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def for_a_person(request: Request) -> bool:
    """Whether ``request`` is a browser's navigation to an admin page (not an API client, not
    an htmx swap, which shows its own message): a problem is then a page, not JSON."""
    return (
        request.url.path.startswith("/admin")
        and "text/html" in request.headers.get("accept", "")
        and "hx-request" not in request.headers
    )


# The most of a request's path a problem's ``instance`` repeats: a URL refused for its length
# (414) is not echoed back whole; the server's own protocol cuts alike (``http_protocol``).
MAX_INSTANCE_CHARS = 200


def problem_instance(path: str) -> str:
    """The ``instance`` of a problem about a request to ``path`` (never its query string):
    the path, cut to ``MAX_INSTANCE_CHARS``."""
    return path[:MAX_INSTANCE_CHARS]


def answer_problem(request: Request, **problem: Any) -> Response:
    """:func:`problem_response` for ``request``, or the same problem as an admin page when a
    person navigated there (:func:`for_a_person`): status, headers and wording kept."""
    if not for_a_person(request):
        return problem_response(instance=problem_instance(request.url.path), **problem)
    # Imported here: the admin shell's module imports this one.
    from rapport.platform.admin import problem_page

    return problem_page(
        request,
        status=problem["status"],
        title=problem["title"],
        detail=problem["detail"],
        headers=problem.get("headers"),
    )


def answer_refusal(request: Request, problem: Problem) -> Response:
    """:func:`answer_problem` for a raised :class:`Problem`, every part of it kept."""
    return answer_problem(
        request,
        status=problem.status,
        slug=problem.slug,
        title=problem.title,
        detail=problem.detail,
        field=problem.field,
        errors=problem.errors,
        headers=problem.headers,
        extra=problem.extra,
    )


class FieldInvalid(ValueError):
    """Raised by a validator that checks fields together ("bury needs factor"), naming the
    field to fix: the 422 then points at that field, as a single field's own check does."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


UNKNOWN_FIELD = "Unknown field; remove it or check its spelling"


def pinpointed(detail: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """One pydantic error's location and message as a person reads them: the field a
    :class:`FieldInvalid` names goes on the end of the location, pydantic's "Value error, "
    before the validator's own words goes, and an unknown field says what to do about it."""
    loc = tuple(detail.get("loc", ()))
    cause = (detail.get("ctx") or {}).get("error")
    if isinstance(cause, FieldInvalid):
        loc = (*loc, cause.field)
    if detail.get("type") == "extra_forbidden":
        return loc, UNKNOWN_FIELD
    message = str(detail.get("msg", "invalid")).removeprefix("Value error, ")
    if detail.get("type") in _BOUNDS and _is_nan(detail.get("input")):
        # NaN compares as neither below nor above a bound: "should be less than or equal to
        # 1" alone reads as if it were a number too large.
        return loc, f"Input should be a number {message.removeprefix('Input should be ')}"
    return loc, message


_BOUNDS = frozenset(("greater_than", "greater_than_equal", "less_than", "less_than_equal"))


def _is_nan(value: object) -> bool:
    """Whether ``value`` (as given: a query's text, a JSON number) is NaN."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, float) and math.isnan(value)


def json_pointer(path: Sequence[str | int]) -> str:
    """A place in a JSON document as an RFC 6901 pointer, each key or index escaped ("~" as
    "~0", then "/" as "~1"): ``("attributes", "a/b")`` is ``/attributes/a~1b``, never the key
    ``b`` inside ``a``; the whole document is ``""``. Every pointer a problem carries is made
    here."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def field_error(loc: Sequence[str | int], message: str, code: str) -> dict[str, Any]:
    """One entry of a problem's ``errors``: where (dotted field and JSON pointer) and why."""
    location = str(loc[0]) if loc else "body"
    path = (
        [str(part) for part in loc[1:]]
        if location in {"body", "query", "path", "header"}
        else [str(part) for part in loc]
    )
    return {
        "field": ".".join(path) if path else location,
        "location": location,
        "pointer": json_pointer(path),
        "message": message,
        "code": code,
    }


def invalid_document(
    failure: ValidationError,
    *,
    prefix: Sequence[str | int] = (),
    locate: Callable[[tuple[str | int, ...]], tuple[str | int, ...]] = lambda loc: loc,
) -> InvalidInput:
    """A 422 problem naming each field of a JSON document (a rule set, a tier ladder) that
    failed validation; ``prefix`` is where the document sits in the request body, and
    ``locate`` may tidy pydantic's locations first."""
    errors = []
    for detail in failure.errors(include_url=False, include_input=False):
        loc, message = pinpointed(detail)
        errors.append(field_error(("body", *prefix, *locate(loc)), message, detail["type"]))
    first = errors[0]
    return InvalidInput(
        f"{first['field']}: {first['message']}", field=first["field"], errors=errors
    )


# Why pydantic refused an integer path parameter: not a whole number, or out of the ids' range.
_NOT_AN_ID = {
    "int_parsing",
    "int_from_float",
    "int_type",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
}


def no_such_id(name: str, value: object) -> NotFound:
    """The 404 for a numeric id (``campaign_id``) that names nothing: "No campaign zz1",
    naming the parameter. An id that is not a number, or out of the ids' range, cannot name
    anything either, and is answered the same as one no row has."""
    noun = name.removesuffix("_id").replace("_", " ")
    return NotFound(f"No {noun} {value}", field=name)


def _unknown_id(raw_errors: Sequence[Mapping[str, Any]]) -> NotFound | None:
    """The 404 for the first ``…_id`` path parameter refused as no integer id, if any."""
    for error in raw_errors:
        loc = tuple(error.get("loc", ()))
        if (
            len(loc) == 2
            and loc[0] == "path"
            and str(loc[1]).endswith("_id")
            and error.get("type") in _NOT_AN_ID
        ):
            return no_such_id(str(loc[1]), error.get("input"))
    return None


_ID_TEMPLATE = re.compile(r"\{([^}/]+)\}")


def _integer_id_paths(app: FastAPI) -> list[tuple[re.Pattern[str], set[str], list[str]]]:
    """Each path of the OpenAPI document with a ``…_id`` integer parameter: the path as a
    pattern that takes any segment for each parameter, its methods, and those parameters.
    Computed once per application."""
    found = getattr(app.state, "integer_id_paths", None)
    if found is None:
        found = []
        for path, operations in app.openapi().get("paths", {}).items():
            ids = {
                parameter["name"]
                for operation in operations.values()
                for parameter in operation.get("parameters", [])
                if parameter.get("in") == "path"
                and parameter["name"].endswith("_id")
                and parameter.get("schema", {}).get("type") == "integer"
            }
            if ids:
                pattern = "".join(
                    f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part)
                    for index, part in enumerate(_ID_TEMPLATE.split(path))
                )
                methods = {method.upper() for method in operations}
                found.append((re.compile(pattern), methods, sorted(ids)))
        app.state.integer_id_paths = found
    return found


def _unmatched_id(request: Request) -> NotFound | None:
    """For a path no route took because an integer id in it is not a number (a route's
    ``{campaign_id:int}`` converter refused ``zz1``), the 404 naming that id."""
    method = "GET" if request.method == "HEAD" else request.method
    for pattern, methods, ids in _integer_id_paths(request.app):
        matched = pattern.fullmatch(request.url.path)
        if matched is None or method not in methods:
            continue
        for name in ids:
            value = matched.group(name)
            if not value.isascii() or not value.isdigit():
                return no_such_id(name, value)
    return None


def _validation_problem(request: Request, exc: RequestValidationError) -> Response:
    raw_errors = exc.errors()
    unknown = _unknown_id(raw_errors)
    if unknown is not None:
        return answer_refusal(request, unknown)
    malformed = [e for e in raw_errors if e.get("type") == "json_invalid"]
    if malformed:
        # Worded by the parser every body meets (the tracking endpoints' too), which says
        # where: line, column and character.
        from rapport.platform.bodies import json_problem  # it imports this module

        raw = exc.body.encode() if isinstance(exc.body, str) else exc.body
        problem = json_problem(raw) if isinstance(raw, bytes) else None
        ctx = malformed[0].get("ctx") or {}
        reason = ctx.get("error", "invalid JSON")
        return problem_response(
            status=400,
            slug=MalformedBody.slug,
            title=MalformedBody.title,
            detail=problem.detail if problem else f"The request body is not valid JSON: {reason}",
            instance=problem_instance(request.url.path),
            field="body",
        )
    declared = request.headers.get("content-type", "").split(";")[0].strip()
    if "json" not in declared.lower() and any(
        tuple(e.get("loc", ())) == ("body",) and e.get("type") != "missing" for e in raw_errors
    ):
        # FastAPI reads a body not declared as JSON as bytes, which no model takes: say what
        # to send rather than "Input should be a valid dictionary".
        from rapport.platform.bodies import not_json  # it imports this module

        return answer_refusal(request, not_json(declared))
    errors = []
    for error in raw_errors:
        loc, message = pinpointed(error)
        errors.append(field_error(loc, message, str(error.get("type", "invalid"))))
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return answer_problem(
        request,
        status=422,
        slug=InvalidInput.slug,
        title=InvalidInput.title,
        detail=f"{first['field']}: {first['message']}{more}",
        field=first["field"],
        errors=errors,
    )


# What FastAPI says when reading a JSON body failed for a reason other than its syntax (the
# bytes are not UTF-8, the nesting exhausts Python's recursion limit) or its reading raised.
_UNPARSED_BODY = "There was an error parsing the body"


async def _unparsed_body(request: Request, cause: BaseException | None) -> Problem:
    """The problem with a body FastAPI could not read, as ``platform.bodies`` words it for
    every endpoint (``request`` is the one that read the body, which it keeps)."""
    from rapport.platform.bodies import unreadable_body  # it imports this module

    if isinstance(cause, Problem):
        return cause
    return unreadable_body(await request.body(), cause)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _methods_taken(request: Request) -> list[str]:
    """Every method some route of the application takes at the request's path (``HEAD``
    wherever ``GET`` is: it is answered as one)."""
    taken = []
    for method in _METHODS:
        scope = {**request.scope, "method": "GET" if method == "HEAD" else method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            taken.append(method)
    return taken


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem+json, and say so in the OpenAPI document."""
    install_openapi(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return answer_refusal(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _validation_problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == _UNPARSED_BODY:
            return await _problem(request, await _unparsed_body(request, exc.__cause__))
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("error", "Error"))
        detail = str(exc.detail)
        # Starlette's own words when no route matched the path or the method.
        on_api = request.url.path.startswith("/v1/")  # admin pages word their own
        unmatched = (
            _unmatched_id(request)
            if on_api and exc.status_code == 404 and detail == "Not Found"
            else None
        )
        if unmatched is not None:
            return await _problem(request, unmatched)
        if on_api and exc.status_code == 404 and detail == "Not Found":
            detail = (
                f"No such path: {request.method} {request.url.path}. The API's paths are "
                "listed at /docs"
            )
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405 and detail == "Method Not Allowed":
            # Starlette names only the methods of the first route that matched the path;
            # another route may take the same path with other methods.
            allowed = _methods_taken(request)
            headers["Allow"] = ", ".join(allowed)
            if on_api:
                detail = f"{request.method} is not taken here; this path takes " + (
                    " and ".join(", ".join(allowed).rsplit(", ", 1))
                )
        return answer_problem(
            request,
            status=exc.status_code,
            slug=slug,
            title=title,
            detail=detail,
            field="body" if exc.status_code == 413 else None,
            headers=headers or None,
        )

    # An error no handler above takes is answered by ``unexpected_problem`` from the
    # ``middleware.AnswerUnhandled`` the application wraps itself in: Starlette's own error
    # middleware raises it again once answered, and the server then logs it a second time
    # and resets the connection.


def unexpected_problem(request: Request, error: BaseException) -> Response:
    """The answer to an error no handler took: ``503`` with Retry-After when the database is
    unavailable (:func:`database_unavailable`), ``500`` otherwise. Logs it once: one line
    for an unavailable database, one line and its traceback for anything else."""
    # The path as the access log writes it (its route's template, the query's names only):
    # a raw path holds customer ids, emails and phone numbers erasure cannot reach in a log.
    from rapport.platform.middleware import logged_target, route_template  # imports us

    path = logged_target(request.scope, route_template(request.scope))
    if database_unavailable(error):
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            path,
            str(error).splitlines()[0] if str(error) else type(error).__name__,
        )
        return answer_refusal(request, DatabaseUnavailable())
    log.error(
        "unhandled error on %s %s: %s: %s",
        request.method,
        path,
        type(error).__name__,
        error,
        exc_info=error,
    )
    return answer_problem(
        request,
        status=500,
        slug="internal-error",
        title="Internal error",
        detail="Something went wrong on our side; nothing was changed. The error is logged.",
    )
