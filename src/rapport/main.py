"""The ASGI application: API routers, admin pages, middleware and the embedded worker."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from rapport import __version__
from rapport.campaigns import service as campaigns
from rapport.domains import admin_pages, load_event_types, load_models, load_tasks, routers
from rapport.flows.currency import shown_currency
from rapport.orders import service as orders
from rapport.platform import admin as admin_shell
from rapport.platform import settings_admin
from rapport.platform.api import ops_router
from rapport.platform.bodies import UndoContentEncoding
from rapport.platform.db import Checkpointer, open_session
from rapport.platform.errors import answer_problem, install_problem_handlers, problem_response
from rapport.platform.jobs import Worker, claim_embedded_worker
from rapport.platform.middleware import (
    AnswerUnhandled,
    BodySizeLimit,
    HeadAsGet,
    RequestBudget,
    RequestHeadLimit,
    RequestMetrics,
)
from rapport.platform.openapi import install_docs_pages, install_webhooks
from rapport.platform.ratelimit import RateLimitHeaders
from rapport.platform.ratelimit import from_settings as rate_limits_from_settings
from rapport.platform.settings import Settings, get_settings
from rapport.platform.statements import StatementPool
from rapport.platform.strict_input import (
    RefuseControlCharacters,
    refuse_a_body_where_none_is_taken,
    refuse_unknown_and_repeated_query_parameters,
)
from rapport.recommend import service as recommend

log = logging.getLogger(__name__)

PACKAGE_STATIC = Path(__file__).parent / "platform" / "static"
REPO_NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"

API_DESCRIPTION = """
Rapport's HTTP API. Authenticate with an API key: `Authorization: Bearer rk_...` or
`X-API-Key: rk_...`. Keys carry scopes (`ingest`, `read`, `write`, `admin`).
Every error is RFC 9457 `application/problem+json` naming the offending field.

The facts that commands append to the event log (an order placed, points earned, a consent
changed...) are typed: each one's `properties` are published below as the schema
`event.<type>`, with the domain that appends it (`x-domain`).
"""


class AdminOnly:
    """Run ``middleware`` for admin pages only: the API never uses the session cookie, and
    skipping it saves every API request the cookie parsing and signing."""

    prefixes: tuple[str, ...] = ("/admin",)

    def __init__(self, app: ASGIApp, /, *, middleware: Any, **options: Any) -> None:
        self.app = app
        self.wrapped = middleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.prefixes):
            await self.wrapped(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class PublicPagesOnly(AdminOnly):
    """Run ``middleware`` for the HTML pages customers open from a message without signing
    in: a survey (feedback) and an unsubscribe confirmation (campaigns)."""

    prefixes = ("/s/", "/u/")


class BrowserCors:
    """CORS for the routes a shop's pages call from the browser (a domain router's
    ``BROWSER_PATHS``: tracking), from ``RAPPORT_TRACKING_ALLOWED_ORIGINS``: a preflight
    (``OPTIONS``) is answered for them, and their answers say which page may read them. Every
    other path (the admin pages, the rest of the API) gets no CORS allowance. Never with
    credentials: the key travels in a header or the body, never a cookie."""

    def __init__(self, app: ASGIApp, /, *, paths: frozenset[str], origins: list[str]) -> None:
        self.app = app
        self.paths = paths
        self.cors = _ProblemCors(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            # SDKs add their own headers (RudderStack's AnonymousId): any is fine without
            # credentials.
            allow_headers=["*"],
            allow_credentials=False,
            expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy"],
            max_age=3600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            # A page may send a "simple" request (analytics.js posts text/plain) without a
            # preflight: its Origin is checked here too, or any site's pages could send.
            origin = Headers(scope=scope).get("origin")
            if (
                scope.get("method") != "OPTIONS"
                and origin is not None
                and not self.cors.allow_all_origins
                and not self.cors.is_allowed_origin(origin)
            ):
                field, detail = _CORS_REFUSALS["origin"]
                refusal = problem_response(
                    status=403,
                    slug="origin-refused",
                    title="Origin not allowed",
                    detail=detail,
                    field=field,
                )
                await refusal(scope, receive, send)
                return
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _ProblemCors(CORSMiddleware):
    """Starlette's CORS, refusing a preflight as problem+json naming the header at fault."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        field, detail = _CORS_REFUSALS[failures[0]]
        return problem_response(
            status=400,
            slug="cors-refused",
            title="Cross-origin request refused",
            detail=detail,
            field=field,
        )


_CORS_REFUSALS = {
    "origin": (
        "Origin",
        "This page's origin may not send tracking events here; the operator adds it to "
        "RAPPORT_TRACKING_ALLOWED_ORIGINS",
    ),
    "method": ("Access-Control-Request-Method", "Tracking events are sent with POST"),
    "headers": ("Access-Control-Request-Headers", "A requested header is not allowed"),
    "private-network": (
        "Access-Control-Request-Private-Network",
        "A public page may not send tracking events to a server on a private network",
    ),
}


# Domains whose routes answer most requests, busiest first: FastAPI tries routes in order and
# every try costs (with 79 routes ahead of it, finding the recommendations route took a fifth
# of the request's time). Their paths are their own, so the order changes no match.
BUSIEST_DOMAINS = ("events", "recommend", "loyalty")


def _busiest_first(module: ModuleType) -> int:
    domain = module.__name__.split(".")[1]
    return BUSIEST_DOMAINS.index(domain) if domain in BUSIEST_DOMAINS else len(BUSIEST_DOMAINS)


def _vendor_dir(settings: Settings) -> Path | None:
    """Where npm put the front-end packages: the configured folder, or by default the
    checkout's ``node_modules`` (``./scripts/setup.sh``), else the working directory's."""
    candidates = (
        [settings.vendor_static_dir]
        if settings.vendor_static_dir is not None
        else [REPO_NODE_MODULES, Path("node_modules").absolute()]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def _warm_models(settings: Settings) -> None:
    """Load the recommendation model and start reading the order history for return risk in
    the background, so that the first requests after a server starts find both ready rather
    than wait for them (a missing model or history is only logged: requests load it then)."""

    def run() -> None:
        try:
            recommend.holder(settings.data_dir).current()
            with open_session(settings.database_url) as db:
                orders.warm_return_risk(db, data_dir=settings.data_dir)
        except Exception:
            log.exception("loading the models at start failed; the first requests load them")

    threading.Thread(target=run, name="warm-models", daemon=True).start()


def create_app(
    settings: Settings | None = None, *, run_worker: bool | None = None, warm: bool = False
) -> FastAPI:
    """Build the application. ``run_worker`` defaults to the embedded-mode setting; ``warm``
    loads the models as the server starts (``rapport serve``), not at the first request."""
    settings = settings or get_settings()
    load_models()
    load_tasks()
    load_event_types()
    start_worker = settings.runs_embedded_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        checkpointer = Checkpointer(settings.database_url) if settings.is_sqlite else None
        if checkpointer is not None:
            checkpointer.start()
        claim = claim_embedded_worker(settings.data_dir) if start_worker else None
        worker = Worker(poll_seconds=settings.worker_poll_seconds) if claim else None
        if worker is not None:
            worker.start_thread()
        app.state.worker = worker
        statements = (
            StatementPool(settings.database_url, connections=settings.command_connections)
            if settings.command_connections and not settings.is_sqlite
            else None
        )
        if statements is not None:
            await statements.open()
        app.state.statements = statements
        if warm:
            _warm_models(settings)
        yield
        if statements is not None:
            await statements.close()
        if worker is not None:
            worker.stop()
        if claim is not None:
            claim.close()
        if checkpointer is not None:
            checkpointer.stop()

    app = FastAPI(
        title="Rapport",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Our own /docs and /redoc (install_docs_pages): FastAPI's load their scripts from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        dependencies=[
            Depends(refuse_unknown_and_repeated_query_parameters),
            Depends(refuse_a_body_where_none_is_taken),
        ],
    )
    app.state.settings = settings
    app.state.statements = None  # the lifespan opens a pool on PostgreSQL
    # Per-API-key request limits, counted where keys are checked (platform.auth).
    app.state.rate_limits = rate_limits_from_settings(
        limit=settings.api_rate_limit,
        storage=settings.rate_limit_storage,
        data_dir=settings.data_dir,
        coupons=settings.coupon_rate_limit,
    )
    install_problem_handlers(app)

    app.include_router(ops_router)
    for module in sorted(routers(), key=_busiest_first):
        app.include_router(module.router)

    app.include_router(settings_admin.router)
    admin_shell.add_nav(settings_admin.NAV)
    app.include_router(admin_shell.router)
    admin_shell.set_currency_source(shown_currency)
    for module in admin_pages():
        admin_shell.add_nav(module.NAV)
        admin_shell.add_customer_panels(getattr(module, "CUSTOMER_PANELS", []))
        app.include_router(module.router)

    @app.exception_handler(admin_shell.LoginRequired)
    async def _login_required(request: Request, exc: admin_shell.LoginRequired) -> Response:
        return RedirectResponse(f"/admin/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(admin_shell.CsrfFailed)
    async def _csrf_failed(request: Request, exc: admin_shell.CsrfFailed) -> Response:
        return answer_problem(
            request,
            status=403,
            slug="csrf-failed",
            title="Form expired",
            detail="The form's security token is missing or stale; reload the page and try again.",
            field="csrf_token",
        )

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/admin", status_code=307)

    # What a retailer's systems subscribed to Rapport's events receive (POST /v1/webhooks/...).
    install_webhooks(app, campaigns.WEBHOOK_EVENT_TYPES)
    vendor = _vendor_dir(settings)
    install_docs_pages(app, vendor)
    if vendor is not None:
        app.mount("/static/vendor", StaticFiles(directory=vendor), name="vendor")
    app.mount("/static", StaticFiles(directory=PACKAGE_STATIC), name="static")

    # Innermost first; a HEAD is routed as its GET. Outermost last: metrics see every answer,
    # including 413s from the size limit.
    # Sees the route FastAPI matched (it updates this scope): a compressed body is inflated
    # for the routes whose JSON model FastAPI parses; tracking inflates its own.
    app.add_middleware(UndoContentEncoding, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(
        AdminOnly,
        middleware=admin_shell.SessionCookie,
        secret_key=settings.session_secret(),
        max_age=settings.session_max_age_seconds,
        secure_always=settings.secure_cookies,
    )
    # Outside the session cookie, so every admin answer carries them (redirects included).
    app.add_middleware(AdminOnly, middleware=admin_shell.SecurityHeaders)
    app.add_middleware(
        PublicPagesOnly,
        middleware=admin_shell.SecurityHeaders,
        headers=admin_shell.PUBLIC_SECURITY_HEADERS,
    )
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(RequestBudget, seconds=settings.request_timeout_seconds)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestHeadLimit)
    # Outside the size limit and the checks, so the browser may read their refusals too.
    # Always: with RAPPORT_TRACKING_ALLOWED_ORIGINS=none, a request carrying an Origin (a
    # page's) is refused, and no preflight is answered.
    app.add_middleware(
        BrowserCors,
        paths=frozenset(
            path for module in routers() for path in getattr(module, "BROWSER_PATHS", ())
        ),
        origins=settings.tracking_origins,
    )
    # Outside every other middleware, so that an error raised anywhere is answered once.
    app.add_middleware(AnswerUnhandled)
    app.add_middleware(RequestMetrics, access_log=settings.access_log)
    return app


def server_process_app() -> FastAPI:
    """The application of each ``rapport serve --processes N`` process, configured from the
    environment (the command passes its options on through it)."""
    application = create_app(get_settings(), warm=True)
    # What is loaded now lives as long as the process: spare the garbage collector re-walking
    # it on every collection.
    gc.freeze()
    tune_interpreter()
    return application


GC_FIRST_GENERATION = 50_000


def tune_interpreter() -> None:
    """Collect cycles less often (see below). Hand the GIL between threads every millisecond
    rather than every five: a request holding SQLite's write lock, or a small one behind a
    large batch being parsed, waits for the GIL at each handover. And keep BLAS to one thread:
    a request's matrix products are small, and BLAS threads spinning beside the request
    threads of every server process burn the CPU the requests need."""
    sys.setswitchinterval(0.001)
    # The cycle collector's first generation runs every 700 net allocations: a batch of 1,000
    # events (about 20,000 live dicts and lists while it is parsed) set off some 30 collections
    # and their promotions, 10 ms of CPU per batch (measured through gc.callbacks). Requests
    # free their objects by reference counting, so collections find almost nothing; letting
    # the first generation reach 50,000 objects leaves a batch without any.
    gc.set_threshold(GC_FIRST_GENERATION, *gc.get_threshold()[1:])
    import numpy  # noqa: F401  (loads the BLAS library the limit applies to)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
