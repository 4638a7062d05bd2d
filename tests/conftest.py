"""Shared fixtures: real SQLite and PostgreSQL databases, migrated once per session, with a
rollback per test; an app wired to the test's session; API keys per scope."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rapport.domains import load_models
from rapport.main import create_app
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import (
    READING_METHODS,
    Base,
    create_db_engine,
    get_db,
    get_writing_db,
    open_session,
)
from rapport.platform.migrations_runner import upgrade
from rapport.platform.settings import Settings

POSTGRES_URL_ENV = "RAPPORT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "RAPPORT_REQUIRE_POSTGRES"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

load_models()

# Admin passwords are argon2id at the library's recommended cost (64 MiB, three passes: a
# fifth of a second a hash here), right for a person signing in; the suite signs in hundreds
# of times, so in its own process it hashes at the lowest cost. Servers it starts as
# subprocesses keep the product's cost, and tests/platform/test_service.py checks that cost.
PRODUCT_PASSWORD_HASHER = platform._password_hasher
platform._password_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

# Settings read from the environment keep their files (secret key, rate-limit counters, the
# default SQLite database) in the data dir, and read the user's env file: the suite uses its
# own, never the developer's ~/.local/share/rapport or ~/.config/rapport/env.
_SUITE_DATA_DIR = tempfile.mkdtemp(prefix="rapport-tests-")
_SUITE_ENV_FILE = Path(_SUITE_DATA_DIR) / "env"
_SUITE_ENV_FILE.touch()
os.environ.setdefault("RAPPORT_DATA_DIR", _SUITE_DATA_DIR)
os.environ.setdefault("RAPPORT_ENV_FILE", str(_SUITE_ENV_FILE))
atexit.register(shutil.rmtree, _SUITE_DATA_DIR, ignore_errors=True)


def _postgres_server_url() -> str | None:
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
        pytest.fail(f"{POSTGRES_URL_ENV} is not set; run the suite with ./scripts/test.sh")
    return None


def _fresh_postgres_database(server_url: str) -> str:
    """Create an empty database for this test session and return its URL."""
    name = f"rapport_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(server_url: str, url: str) -> None:
    name = make_url(url).database
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_MIGRATED_SQLITE_TEMPLATE = Path(_SUITE_DATA_DIR) / "migrated-template.db"
_MIGRATED_SQLITE_LOCK = threading.Lock()


def migrated_sqlite(path: Path) -> str:
    """The URL of a SQLite database at ``path`` migrated to head: a copy of one this test
    process migrated once, since migrating takes about two seconds and copying milliseconds.
    Tests of the migrations themselves call ``upgrade`` on empty databases instead."""
    with _MIGRATED_SQLITE_LOCK:
        if not _MIGRATED_SQLITE_TEMPLATE.exists():
            building = _MIGRATED_SQLITE_TEMPLATE.with_suffix(".building")
            upgrade(f"sqlite:///{building}")
            building.rename(_MIGRATED_SQLITE_TEMPLATE)
    shutil.copyfile(_MIGRATED_SQLITE_TEMPLATE, path)
    return f"sqlite:///{path}"


_MIGRATED_POSTGRES_TEMPLATE: dict[str, str] = {}  # server URL -> this process's template URL
_MIGRATED_POSTGRES_LOCK = threading.Lock()


def _migrated_postgres_template(server_url: str) -> str:
    """The name of a PostgreSQL database this test process migrated once and connects to no
    more, to be copied with CREATE DATABASE ... TEMPLATE (dropped when the process ends)."""
    with _MIGRATED_POSTGRES_LOCK:
        if server_url not in _MIGRATED_POSTGRES_TEMPLATE:
            url = _fresh_postgres_database(server_url)
            upgrade(url)
            atexit.register(_drop_postgres_database, server_url, url)
            _MIGRATED_POSTGRES_TEMPLATE[server_url] = url
    return str(make_url(_MIGRATED_POSTGRES_TEMPLATE[server_url]).database)


def migrated_database(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A database of ``backend`` migrated to head, of the caller's own, and a function that
    removes it: a copy of one this test process migrated once (SQLite: ``migrated_sqlite``;
    PostgreSQL: CREATE DATABASE ... TEMPLATE), where migrating takes seconds."""
    if backend == "sqlite":
        tmp_path.mkdir(parents=True, exist_ok=True)
        return migrated_sqlite(tmp_path / f"rapport-{uuid.uuid4().hex[:8]}.db"), lambda: None
    server_url = _postgres_server_url()
    if server_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV} (./scripts/test.sh sets it)")
    template = _migrated_postgres_template(server_url)
    name = f"rapport_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, lambda: _drop_postgres_database(server_url, url)


def make_database_url(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """An empty database of ``backend`` and a function that removes it."""
    if backend == "sqlite":
        path = tmp_path / f"rapport-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    server_url = _postgres_server_url()
    if server_url is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_URL_ENV} (./scripts/test.sh sets it)")
    url = _fresh_postgres_database(server_url)
    return url, lambda: _drop_postgres_database(server_url, url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of ``backend`` migrated to head once per test session."""
    url, remove = make_database_url(backend, tmp_path_factory.mktemp(backend))
    upgrade(url)
    yield url
    remove()


@pytest.fixture(scope="session")
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = create_db_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints, all rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committed_url(migrated_url: str, engine: Engine) -> Iterator[str]:
    """The migrated database for tests that need real commits across connections
    (concurrency, background threads); every table is emptied afterwards."""
    yield migrated_url
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    yield
    clock.reset_clock()


def _test_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-not-for-production",  # type: ignore[arg-type]
        data_dir=data_dir,
        max_body_bytes=64 * 1024,
        # The app below answers through the test's own rolled-back session; commands sent as
        # one statement would commit on connections of their own (tests/loyalty/test_api_now).
        command_connections=0,
    )


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path) -> Settings:
    return _test_settings(migrated_url, tmp_path)


@pytest.fixture(scope="session")
def _routed_app(
    migrated_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FastAPI, Settings]:
    """One application per database for the ``app`` fixture, and the settings it was built
    with. FastAPI works out each included route's parameters and models at the first request
    that reaches its router, per application: about a third of a second on this machine, which
    an application per test paid in each of some 1,700 tests."""
    built_with = _test_settings(migrated_url, tmp_path_factory.mktemp("app"))
    return create_app(built_with, run_worker=False), built_with


def _same_but_data_dir(one: Settings, other: Settings) -> bool:
    return one.model_dump(exclude={"data_dir"}) == other.model_dump(exclude={"data_dir"})


def _takes(dependency: Callable[..., Any], route: Any) -> bool:
    """Whether ``route``'s handler or any of its dependencies takes ``dependency``."""

    def within(dependant: Any) -> bool:
        return any(d.call is dependency or within(d) for d in dependant.dependencies)

    return route is not None and within(route.dependant)


# The statements a read-only transaction refuses (``platform.db.read_only``; PostgreSQL also
# refuses row locks in one).
_WRITE = re.compile(
    r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b|.*\bFOR (NO KEY )?(UPDATE|SHARE)\b",
    re.IGNORECASE | re.DOTALL,
)


@pytest.fixture
def app(
    settings: Settings, db: Session, _routed_app: tuple[FastAPI, Settings]
) -> Iterator[FastAPI]:
    """The application answering through the test's own rolled-back session. A ``GET`` or
    ``HEAD`` is watched as the server's read-only session would refuse it: a route that writes
    on one, without taking ``WritingDbSession``, fails its test.

    Its routes and middleware are the database's one ``_routed_app``, built with the same
    settings but the data directory; its state (``app.state``: the test's settings, data
    directory and rate-limit counters) is a fresh ``create_app(settings)``'s, and its
    dependency overrides the test's own, so nothing a test leaves there reaches the next. A
    test that adds routes builds its own application (``create_app``)."""
    shared, built_with = _routed_app
    if _same_but_data_dir(settings, built_with):
        application = shared
        application.state = create_app(settings, run_worker=False).state
        application.dependency_overrides = {}
    else:
        application = create_app(settings, run_worker=False)
    routes = list(application.router.routes)
    writes: list[str] = []

    def watched(request: Request) -> Iterator[Session]:
        route = request.scope.get("route")
        if request.method not in READING_METHODS or _takes(get_writing_db, route):
            yield db
            return
        connection = db.get_bind()

        def watch(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if _WRITE.match(statement):
                writes.append(f"{request.method} {request.url.path}: {statement[:120]}")

        event.listen(connection, "before_cursor_execute", watch)
        try:
            yield db
        finally:
            event.remove(connection, "before_cursor_execute", watch)

    application.dependency_overrides[get_db] = watched
    application.dependency_overrides[get_writing_db] = lambda: db
    yield application
    assert not writes, f"reads that wrote (take WritingDbSession): {writes}"
    assert application.router.routes == routes, "a test that adds routes builds its own app"


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, db: Session) -> TestClient:
    """The client signed in to the admin pages as an admin user (tests.platform.admin_forms),
    for tests that send admin forms over HTTP."""
    from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    assert sign_in(client).status_code == 303
    return client


@pytest.fixture
def api_key(db: Session) -> Callable[..., str]:
    """Make a key with the given scopes and return its secret."""

    def make(*scopes: str) -> str:
        issued = platform.create_api_key(
            db, name=f"test {'+'.join(scopes)}", scopes=[platform.Scope(s) for s in scopes]
        )
        return issued.secret

    return make


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def command(credentials: str | dict[str, str]) -> dict[str, str]:
    """Headers for a command: the API key (its secret, or headers already made) and a fresh
    Idempotency-Key, as every POST that creates or acts needs (docs/api.md)."""
    headers = auth(credentials) if isinstance(credentials, str) else credentials
    return {**headers, "Idempotency-Key": f"test-{uuid.uuid4().hex}"}


# --- A real server and a real browser, for the admin pages --------------------------------


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    database_url: str


def app_committing_to(url: str, data_dir: Path, *, secret_key: str) -> FastAPI:
    """The app on the database at ``url`` whose every request runs in a session of its own
    that commits, as in production, so the worker's and the test's own sessions see what was
    sent (the ``app`` fixture answers through the test's rolled-back session instead)."""
    settings = Settings(database_url=url, secret_key=secret_key, data_dir=data_dir)  # type: ignore[arg-type]
    application = create_app(settings, run_worker=False)

    def session() -> Iterator[Session]:
        db = open_session(url)
        try:
            yield db
        finally:
            db.close()

    application.dependency_overrides[get_db] = session
    return application


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Rapport served by uvicorn on loopback, on its own migrated SQLite database."""
    with serve_rapport(tmp_path) as server:
        yield server


@contextmanager
def serve_rapport(data_dir: Path) -> Iterator[LiveServer]:
    """Rapport served by uvicorn on loopback from ``data_dir`` (its SQLite database migrated
    there), until the block ends: ``live_server`` per test, or a module's own shared one."""
    database = data_dir / "live.db"
    if database.exists():  # a module's own database, filled before it is served
        database_url = f"sqlite:///{database}"
        upgrade(database_url)
    else:
        database_url = migrated_sqlite(database)
    settings = Settings(
        database_url=database_url,
        secret_key="live-server-secret-for-tests",  # type: ignore[arg-type]
        data_dir=data_dir,
    )
    application = create_app(settings, run_worker=False)

    def session_for_this_server() -> Iterator[Session]:
        session = open_session(database_url)
        try:
            yield session
        finally:
            session.close()

    application.dependency_overrides[get_db] = session_for_this_server
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the live server did not start within 15 s")
        time.sleep(0.05)
    yield LiveServer(base_url=f"http://127.0.0.1:{port}", database_url=database_url)
    server.should_exit = True
    thread.join(timeout=10)


DEMO_ADMIN = ("manager@example.com", "demo site password 1")
NAVIGATION_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class DemoSite:
    server: LiveServer
    email: str
    password: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def database_url(self) -> str:
        return self.server.database_url


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """A small demo retailer (120 customers, two years of history, a trained model) served
    on loopback once per session, for the admin page tests that look at every page and the
    persona tests. Tests that change data should change only what they create."""
    from rapport.domains import load_tasks
    from rapport.flows.demo import load_demo

    data_dir = tmp_path_factory.mktemp("demo-site")
    database_url = migrated_sqlite(data_dir / "live.db")
    load_tasks()
    load_demo(customers=120, seed=11, database_url=database_url, data_dir=data_dir)
    with open_session(database_url) as db:
        platform.create_admin_user(db, email=DEMO_ADMIN[0], password=DEMO_ADMIN[1])
    with serve_rapport(data_dir) as server:
        yield DemoSite(server=server, email=DEMO_ADMIN[0], password=DEMO_ADMIN[1])


def sign_in(page: Any, site: DemoSite) -> None:
    """Sign ``page`` in to the demo site's admin pages."""
    sign_in_as(page, site.base_url, site.email, site.password)


def sign_in_as(page: Any, base_url: str, email: str, password: str, *, at: str = "/admin") -> None:
    """Open the admin page ``at``, sign in on the form it sends a stranger to, and wait until
    the form has brought the browser back there. The click waits for the navigation it
    starts, so it gets a navigation's time (the ``page`` fixture's), not an action's: the
    first page after signing in can take longer than a click on a loaded CI machine."""
    page.goto(f"{base_url}{at}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click(timeout=NAVIGATION_TIMEOUT_MS)
    page.wait_for_url(f"{base_url}{at}")


# The page has loaded and htmx has nothing in flight or still settling: what an admin page
# fetches after loading (the customer 360's panels, a segment's count) are htmx requests, each
# marked htmx-request from when it is sent (on load, before Playwright's goto returns) until
# its answer is swapped in, where any request that answer sets off is already marked.
SETTLED = """() => document.readyState === "complete"
  && !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling")"""


def wait_until_settled(page: Any) -> None:
    """Wait until ``page`` has loaded and every htmx request it made is answered and swapped
    in: what ``wait_for_load_state("networkidle")`` waited for, without its fixed half second
    of quiet after the last request (30 s of a 63-page crawl)."""
    page.wait_for_function(SETTLED)


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (no downloaded browser)."""
    executable = os.environ.get("RAPPORT_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail("chromium is not installed; ./scripts/test.sh installs it")
        pytest.skip("admin page tests need Debian's chromium (./scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page under the admin's real Content-Security-Policy. Wait with an arrow function
    (``page.wait_for_function("() => ...")``): a bare expression that is not true at once is
    compiled with eval in the page, which the policy refuses."""
    context = browser.new_context()
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    # Loading a page (its scripts, Chart.js) can take longer than an action on a loaded CI.
    new_page.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    yield new_page
    context.close()


@pytest.fixture
def api_schema(app: FastAPI) -> Any:
    import schemathesis

    return schemathesis.openapi.from_asgi("/openapi.json", app)
