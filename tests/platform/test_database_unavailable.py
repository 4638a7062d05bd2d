"""A database that is down or stops answering is a ``503 database-unavailable`` with
Retry-After, reads and writes alike, within the request's budget, and a write so refused has
changed nothing; no database error writes a statement's parameters (people's details) to the
log. Asked of a real server on a PostgreSQL cluster of the test's own, stopped and paused
(SIGSTOP) under it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rapport.customers import service as customers
from rapport.main import create_app
from rapport.platform import service as platform
from rapport.platform.db import create_db_engine, get_engine, open_session
from rapport.platform.errors import DATABASE_RETRY_AFTER_SECONDS
from rapport.platform.http_protocol import ProblemHttpProtocol
from rapport.platform.migrations_runner import upgrade
from rapport.platform.settings import Settings
from tests.conftest import free_port
from tests.platform.pg_cluster import Cluster, own_cluster

BUDGET_S = 3.0
PRIVATE_EMAIL = "private.person79@secret-mail.test"


@dataclass
class Served:
    cluster: Cluster
    database_url: str
    base_url: str
    key: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Rapport served by uvicorn (as ``rapport serve`` runs it) on a migrated database of its
    own cluster, with a budget of ``BUDGET_S`` per request and a write key."""
    with own_cluster() as cluster:
        admin = create_db_engine(cluster.url).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE rapport"))
        admin.dispose()
        url = make_url(cluster.url).set(database="rapport").render_as_string(False)
        upgrade(url)
        with open_session(url) as db:
            key = platform.create_api_key(
                db, name="unavailable", scopes=[platform.Scope.WRITE, platform.Scope.READ]
            ).secret
            db.commit()
        settings = Settings(
            database_url=url,
            secret_key="unavailable-test-secret",  # type: ignore[arg-type]
            data_dir=tmp_path_factory.mktemp("unavailable"),
            request_timeout_seconds=BUDGET_S,
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, run_worker=False),
                host="127.0.0.1",
                port=port,
                http=ProblemHttpProtocol,
                log_level="warning",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        try:
            yield Served(cluster, url, f"http://127.0.0.1:{port}", key)
        finally:
            cluster.resume()
            server.should_exit = True
            thread.join(timeout=15)
            get_engine(url).dispose()


def _create(served: Served, email: str) -> httpx.Response:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        return client.post(
            "/v1/customers",
            json={"email": email, "first_name": "Private"},
            headers={
                "Authorization": f"Bearer {served.key}",
                "Idempotency-Key": f"unavailable-{uuid.uuid4().hex}",
            },
        )


def _count(served: Served) -> int:
    with open_session(served.database_url) as db:
        return customers.count_customers(db)


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://rapport.dev/problems/database-unavailable"
    assert response.headers["retry-after"] == str(DATABASE_RETRY_AFTER_SECONDS)
    assert PRIVATE_EMAIL not in response.text


@pytest.mark.postgres
def test_a_write_to_a_paused_database_is_refused_in_its_budget_and_commits_nothing(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    # given a server whose pool holds live connections to the database
    assert _create(served, "before.pause@example.test").status_code == 201
    before = _count(served)
    # when the database stops answering (postmaster and backends SIGSTOPped) and a write comes
    served.cluster.pause()
    try:
        started = time.monotonic()
        with caplog.at_level(logging.INFO):
            response = _create(served, PRIVATE_EMAIL)
        took = time.monotonic() - started
    finally:
        served.cluster.resume()
    # then it is refused within its budget (where it waited for good), saying to retry
    _assert_unavailable(response)
    assert took < BUDGET_S + 3, took
    # and once the database answers again, nothing of it was committed, even late
    time.sleep(1)
    assert _count(served) == before
    # and the log holds none of what it sent
    assert PRIVATE_EMAIL not in caplog.text
    # and the server writes again, through fresh connections
    assert _create(served, "after.pause@example.test").status_code == 201


def _earn(served: Served, customer_id: str, key: str) -> httpx.Response:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        return client.post(
            f"/v1/loyalty/members/{customer_id}/earn",
            json={"points": 10, "reason": "Order O-1"},
            headers={"Authorization": f"Bearer {served.key}", "Idempotency-Key": key},
        )


def _balance(served: Served, customer_id: str) -> int:
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        member = client.get(
            f"/v1/loyalty/members/{customer_id}",
            headers={"Authorization": f"Bearer {served.key}"},
        )
    assert member.status_code == 200, member.text
    return int(member.json()["balance"])


@pytest.mark.postgres
def test_points_earned_on_a_paused_database_are_refused_in_the_budget(served: Served) -> None:
    # given a member who has earned before (the next earning is the one-statement path)
    created = _create(served, "earner@example.test")
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    assert _earn(served, customer_id, f"first-{uuid.uuid4().hex}").status_code == 201
    assert _earn(served, customer_id, f"second-{uuid.uuid4().hex}").status_code == 201
    # when the database stops answering and points are earned
    served.cluster.pause()
    key = f"paused-{uuid.uuid4().hex}"
    try:
        started = time.monotonic()
        response = _earn(served, customer_id, key)
        took = time.monotonic() - started
    finally:
        served.cluster.resume()
    # then the answer comes within the budget, where it never came
    _assert_unavailable(response)
    assert took < BUDGET_S + 3, took
    # and the same request sent again is applied once
    time.sleep(1)
    again = _earn(served, customer_id, key)
    assert again.status_code == 201, again.text
    assert _balance(served, customer_id) == 30


@pytest.mark.postgres
def test_a_stopped_database_is_503_with_retry_after_for_reads_and_writes(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.cluster.stop()
    try:
        # when the database is down, a write and a read by a customer id that names someone
        write = _create(served, PRIVATE_EMAIL)
        with (
            caplog.at_level(logging.WARNING),
            httpx.Client(base_url=served.base_url, timeout=60) as client,
        ):
            read = client.get(
                "/v1/customers/Jane-Doe-1987/timeline?limit=7",
                headers={"Authorization": f"Bearer {served.key}"},
            )
    finally:
        served.cluster.start()
    # then each is told to come back, where both were 500 internal-error
    _assert_unavailable(write)
    _assert_unavailable(read)
    # and the log names the route's template, as the access log does, never the id
    assert "database unavailable on GET /v1/customers/{customer_id}/timeline?limit=…" in (
        caplog.text
    ), caplog.text
    assert "Jane-Doe" not in caplog.text
    # and once it is back, the server writes again
    assert _create(served, "after.restart@example.test").status_code == 201


def test_a_failed_statement_logs_none_of_its_parameters(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # given the engine the server writes with
    engine = create_db_engine(migrated_url)
    try:
        # when a statement carrying a person's details fails and its error is logged
        with caplog.at_level(logging.ERROR), engine.connect() as connection:
            try:
                connection.execute(
                    text("INSERT INTO no_such_table (email, first_name) VALUES (:email, :name)"),
                    {"email": PRIVATE_EMAIL, "name": "Private"},
                )
            except Exception:
                logging.getLogger("rapport.test").exception("the write failed")
    finally:
        engine.dispose()
    # then the log names the statement but none of the values it carried
    assert "no_such_table" in caplog.text
    assert PRIVATE_EMAIL not in caplog.text
