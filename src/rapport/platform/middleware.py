"""ASGI middleware: request body size limit, request time budget, Prometheus request
metrics and the access log."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any
from urllib.parse import unquote_plus

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rapport.platform import budget
from rapport.platform.errors import answer_problem, problem_response, unexpected_problem

log = logging.getLogger(__name__)
# One line per HTTP request, written by RequestMetrics where uvicorn's own access log (which
# writes the raw path and query string, personal values included) is turned off.
ACCESS_LOG = logging.getLogger("rapport.access")
# A query parameter's name the access log writes as it is; any other name (an email sent as
# a bare ``?alice@example.com``, say) is written as "…", like every value.
_LOGGED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}")
_LOGGED_NAMES = 20

# Every metric of the application registers here. Under `rapport serve --processes N` the
# supervisor sets PROMETHEUS_MULTIPROC_DIR before the processes start, so prometheus_client
# keeps each value in a memory-mapped file of that directory instead of in this process
# alone, and /metrics answers with the sum over every process (see exposition_registry).
# A gauge added here must name its multiprocess_mode (how processes' values combine).
METRICS = CollectorRegistry(auto_describe=True)
# Read once, as prometheus_client reads it when imported (just above): the mode a process
# counts in is fixed at its start, and /metrics must read where its values are.
_SHARED_METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
REQUESTS = Counter(
    "rapport_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
    registry=METRICS,
)
LATENCY = Histogram(
    "rapport_http_request_duration_seconds",
    "Time to answer HTTP requests, by route template.",
    ["method", "route"],
    registry=METRICS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def exposition_registry() -> CollectorRegistry:
    """What ``/metrics`` serves: this process's metrics, or, when the server's processes share
    a metrics directory, every process's metrics summed (processes since replaced included)."""
    if not _SHARED_METRICS_DIR:
        return METRICS
    # A fresh registry each time: the collector reads the files as it is collected, and a
    # registry holding METRICS' own metrics too would show this process's values twice.
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=_SHARED_METRICS_DIR)  # type: ignore[no-untyped-call]
    return combined


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so that FastAPI's body parsing
    passes it on (it turns other errors into 400) and the problem handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            413, detail=f"The request body is larger than {max_bytes} bytes; split it up."
        )


class BodyTooSlow(HTTPException):
    """The body had not all arrived by the request's deadline (a client sending a byte at a
    time would hold the request for good): ``408``, and the connection is closed, since the
    rest of the body is still on its way."""

    def __init__(self) -> None:
        super().__init__(
            408,
            detail="The request body did not all arrive within the time this server gives a"
            " request; send it again, faster",
            headers={"Connection": "close"},
        )


class BodySizeLimit:
    """Answer 413 problem+json to bodies over ``max_bytes``, declared or streamed, and 408 to
    a body still arriving at the request's deadline (``budget``; inside ``RequestBudget``'s
    request, as this wraps what the application reads)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            remaining = None if complete else budget.remaining()
            if remaining is None:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout(max(remaining, 0)):
                        message = await receive()
                except TimeoutError:
                    raise BodyTooSlow() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            status=413,
            slug="payload-too-large",
            title="Request body too large",
            detail=f"The request body is larger than {self.max_bytes} bytes; split it up.",
            instance=scope.get("path"),
            field="body",
        )
        await response(scope, receive, send)


# The longest request target (path and query string) and header block Rapport reads. Below
# what the HTTP server refuses on its own, before Rapport sees the request, with a plain-text
# "400 Invalid HTTP request received." (uvicorn with httptools: a target over 65,535 bytes;
# with h11: 16 KiB of request line and headers together), so that a request growing too long
# meets these problem+json answers first.
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024


class RequestHeadLimit:
    """Answer ``414`` problem+json to a request target (path and query string) over
    ``MAX_URL_BYTES``, naming the query parameter (or the path) that makes it so long, and
    ``431`` to headers over ``MAX_HEADER_BYTES`` together, naming the longest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _head_refusal(scope)
            if refusal is not None:
                await answer_problem(Request(scope), **refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _head_refusal(scope: Scope) -> dict[str, Any] | None:
    path: bytes = scope.get("raw_path") or str(scope.get("path", "")).encode()
    query: bytes = scope.get("query_string", b"")
    length = len(path) + (len(query) + 1 if query else 0)
    if length > MAX_URL_BYTES:
        room: dict[bytes, int] = {}  # each query parameter's bytes, over its repeats
        for pair in query.split(b"&"):
            name = pair.partition(b"=")[0]
            room[name] = room.get(name, 0) + len(pair) + 1
        field, longest = "path", len(path)
        for name, taken in room.items():
            if taken > longest:
                field, longest = unquote_plus(name.decode("latin-1")), taken
        return {
            "status": 414,
            "slug": "uri-too-long",
            "title": "URI too long",
            "detail": (
                f"The URL is {length:,} bytes long; Rapport reads at most {MAX_URL_BYTES:,} "
                f"(path and query string). {field} takes {longest:,} of them: send fewer or "
                "shorter values"
            ),
            "field": field[:100],
        }
    headers = scope.get("headers", ())
    total = sum(len(name) + len(value) + 4 for name, value in headers)
    if total > MAX_HEADER_BYTES:
        name, value = max(headers, key=lambda header: len(header[0]) + len(header[1]))
        field = name.decode("latin-1").title()
        return {
            "status": 431,
            "slug": "request-header-fields-too-large",
            "title": "Request headers too large",
            "detail": (
                f"The request's headers are {total:,} bytes long; Rapport reads at most "
                f"{MAX_HEADER_BYTES:,}. {field} takes {len(value):,} of them"
            ),
            "field": field[:100],
        }
    return None


class AnswerUnhandled:
    """Answer an error that no exception handler took, once, and keep the connection: ``503``
    ``database-unavailable`` with Retry-After when the database is down or did not answer in
    time, else ``500`` ``internal-error`` with one log entry and its traceback
    (:func:`~rapport.platform.errors.unexpected_problem`). Starlette's own error middleware
    (outside this one) answers and then raises the error again, which uvicorn logs a second
    time before resetting the keep-alive connection under the client's next request.

    An error after the answer has begun cannot be answered: it is logged, and the server
    closes the connection on the unfinished answer. A client that left while its body was
    read (``ClientDisconnect``) is nobody to answer: that is one line at INFO."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except ClientDisconnect:
            log.info("client left during %s %s", scope.get("method"), scope.get("path"))
        except Exception as error:
            request = Request(scope)
            if started:
                log.error(
                    "error after the answer to %s %s had begun",
                    request.method,
                    request.url.path,
                    exc_info=error,
                )
                return
            await unexpected_problem(request, error)(scope, receive, send)


class RequestMetrics:
    """Count and time every HTTP request by its route template (not its raw path); with
    ``access_log``, write a line for it to the ``rapport.access`` logger (see logged_target)."""

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def capture(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            elapsed = time.perf_counter() - started
            REQUESTS.labels(method, template, str(status_code)).inc()
            LATENCY.labels(method, template).observe(elapsed)
            if self.access_log and ACCESS_LOG.isEnabledFor(logging.INFO):
                ACCESS_LOG.info(
                    '"%s %s HTTP/%s" %d %.1f ms',
                    method,
                    logged_target(scope, template),
                    scope.get("http_version", "1.1"),
                    status_code,
                    elapsed * 1000,
                )


def logged_target(scope: Scope, template: str) -> str:
    """What the access log writes for a request's path and query: the route's template
    (``/v1/customers/{customer_id}``) where a route matched; where none did, the template of
    the route the path would match whatever its method and trailing slash (a ``HEAD``, a
    ``/…/`` redirected), else the path's first two segments and ``…`` (each segment only when
    it is a word of some route's template, else ``…``); and the query's parameter names with
    every value left out (``?kind=…&value=…``; a bare word, no ``=``, is ``…``). So an email or
    phone number in a path or query never reaches the log, where erasure cannot reach it."""
    path = template if template != "unmatched" else _unmatched_path(scope)
    query: Any = scope.get("query_string")
    if not query:
        return path
    shown: list[str] = []
    for pair in query.decode("latin-1").split("&"):
        if not pair:
            continue
        if len(shown) == _LOGGED_NAMES:
            shown.append("…")
            break
        name, equals, _ = pair.partition("=")
        name = unquote_plus(name)
        if not equals:
            shown.append("…")
        else:
            shown.append(f"{name if _LOGGED_NAME.fullmatch(name) else '…'}=…")
    return f"{path}?{'&'.join(shown) or '…'}"


class _KnownRoutes:
    """The application's route templates as the access log matches a path no route answered
    against: each template's pattern, the methods it answers and, per segment position, the
    literal words templates have there."""

    def __init__(self, routes: list[Any]) -> None:
        self.patterns: list[tuple[re.Pattern[str], str, frozenset[str]]] = []
        self.words: list[set[str]] = [set(), set()]
        for context in iter_route_contexts(routes):
            template = context.path_format
            if not template:
                continue
            if isinstance(context.original_route, Mount):
                prefix = context.path or ""
                pattern, logged = f"{prefix}/{{path:path}}", f"{prefix}/…"
                methods: frozenset[str] = frozenset()
            else:
                pattern, logged = template, template
                methods = frozenset(getattr(context.original_route, "methods", None) or ())
            self.patterns.append((compile_path(pattern)[0], logged, methods))
            for position, word in enumerate(template.split("/")[1:3]):
                if word and "{" not in word:
                    self.words[position].add(word)

    def template(self, path: str, method: str) -> str | None:
        """The template of the route ``path`` matches, ignoring a trailing slash; one that
        answers ``method`` (a ``HEAD``: ``GET``) first, as the router would choose it."""
        trimmed = path.rstrip("/") or "/"
        wanted = "GET" if method == "HEAD" else method
        found = None
        for pattern, logged, methods in self.patterns:
            if pattern.match(path) or pattern.match(trimmed) or pattern.match(f"{trimmed}/"):
                if not methods or wanted in methods:
                    return logged
                found = found or logged
        return found

    def start(self, path: str) -> str:
        """The path's first two segments, each only when it is a word of some template."""
        shown: list[str] = []
        for position, segment in enumerate(path.split("/")[1:3]):
            if segment not in self.words[position]:
                break
            shown.append(segment)
        return "/" + "".join(f"{segment}/" for segment in shown) + "…"


def _unmatched_path(scope: Scope) -> str:
    """What the access log writes for a path no route answered (see logged_target)."""
    router: Any = getattr(scope.get("app"), "router", None)
    if router is None:
        return "/…"
    known = getattr(router, "_rapport_known_routes", None)  # read once per application
    if not isinstance(known, _KnownRoutes):
        known = _KnownRoutes(list(router.routes))
        router._rapport_known_routes = known
    path = str(scope.get("path", "/"))
    # A mount the path went into set root_path to its own prefix; app_root_path keeps the first.
    root = str(scope.get("app_root_path", scope.get("root_path", "")))
    if root and path.startswith(f"{root}/"):
        path = path[len(root) :]
    return known.template(path, str(scope.get("method", "GET"))) or known.start(path)


def route_template(scope: Scope) -> str:
    """The full path template of the route that answered (``/v1/orders/{order_id}``), never
    the raw path; ``unmatched`` when none did.

    FastAPI includes routers without copying their routes: ``scope["route"]`` is the route as
    its own router declared it (``/{order_id}``, without the prefixes it was included under),
    while the full template is on the match FastAPI records in its part of the scope."""
    recorded: Any = scope.get("fastapi")
    matched = recorded.get("effective_route_context") if isinstance(recorded, dict) else None
    template = getattr(matched, "path_format", None)
    if isinstance(template, str) and template:
        return template
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestBudget:
    """Give every HTTP request ``seconds`` to answer (see :mod:`rapport.platform.budget`).

    Loops that may run long stop themselves through ``budget.check()`` (503). A read that has
    not begun its answer by then is answered 503 here at once and its handler is cancelled
    (work in a worker thread stops at its next check; its answer is dropped). Commands
    (``POST`` and the like) are never cut off from outside: a 503 sent while their transaction
    commits would call a done command failed."""

    READS = frozenset({"GET", "HEAD"})

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = budget.start(self.seconds)
        try:
            if scope.get("method") in self.READS:
                await self._bounded(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            budget.finish(token)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        answered_here = False

        async def guarded_send(message: Message) -> None:
            if answered_here:
                return  # the client has its 503 already
            if message["type"] == "http.response.start" and not started.done():
                started.set_result(None)
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            await asyncio.wait(
                (handler, started), timeout=self.seconds, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            handler.cancel()  # the server is going away or the client left
            raise
        if handler.done() or started.done():
            await handler  # its answer (a streamed body is not cut short) or its error
            return
        answered_here = True
        handler.cancel()
        handler.add_done_callback(_forget)
        error = budget.OutOfTime()
        response = answer_problem(
            Request(scope),
            status=error.status,
            slug=error.slug,
            title=error.title,
            detail=error.detail,
            headers=error.headers,
        )
        await response(scope, receive, send)


def _forget(task: asyncio.Future[None]) -> None:
    """Collect what a cancelled handler ended with, so that asyncio does not log it."""
    if not task.cancelled():
        task.exception()


class HeadAsGet:
    """A ``HEAD`` is answered as the ``GET`` of the same URL would be, without its body (RFC
    9110, 9.3.2): FastAPI routes only the methods a route declares, so every read answered
    ``405`` to ``HEAD``, which clients and monitors use to check a resource cheaply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_MARK: True}, receive, headers_only)


# Set in the scope of a HEAD that HeadAsGet hands on as a GET (see :func:`is_head`).
HEAD_MARK = "rapport.head"


def is_head(request: Request) -> bool:
    """Whether the client sent ``HEAD`` (which :class:`HeadAsGet` routes as ``GET``): a route
    whose ``GET`` records something (a customer's export) answers a ``HEAD`` without it."""
    return bool(request.scope.get(HEAD_MARK))
