"""The access log: one line per HTTP request with its method, route, status and time taken,
never a personal value from its path or query (docs/operator-guide.md)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import free_port, migrated_sqlite

RAPPORT = str(Path(sys.executable).with_name("rapport"))
EMAIL = "alice@example.com"
PHONE = "33612345678"


@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_served_access_log_writes_routes_never_emails(tmp_path: Path, processes: str) -> None:
    # given `rapport serve`, in one process and in several
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(port), "--processes", processes, "--no-worker"],
            env={
                **os.environ,
                "RAPPORT_DATABASE_URL": migrated_sqlite(tmp_path / "serve.db"),
                "RAPPORT_DATA_DIR": str(tmp_path),
                "RAPPORT_SECRET_KEY": "access-log-secret-for-tests",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)
        # when customers are looked up by email in the query and by a phone in the path
        with httpx.Client(base_url=base) as client:
            lookup = client.get("/v1/customers/lookup", params={"kind": "email", "value": EMAIL})
            timeline = client.get(f"/v1/customers/{EMAIL.replace('@', '%40')}/timeline")
            panel = client.get(f"/v1/customers/+{PHONE}")
        assert lookup.status_code == timeline.status_code == panel.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=60)
    # then each request is logged with its route, status and time, never the values
    logged = log.read_text()
    assert re.search(
        r'"GET /v1/customers/lookup\?kind=…&value=… HTTP/1\.1" 401 \d+\.\d ms', logged
    ), logged
    assert '"GET /v1/customers/{customer_id}/timeline HTTP/1.1" 401' in logged, logged
    assert '"GET /v1/customers/{customer_id} HTTP/1.1" 401' in logged, logged
    assert "alice" not in logged
    assert "%40" not in logged
    assert PHONE not in logged


def test_the_access_log_leaves_out_every_query_value_and_odd_name(
    client: TestClient, api_key: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {api_key('read')}"}
    with caplog.at_level(logging.INFO, logger="rapport.access"):
        # a lookup that reaches its route, a bare email as a query's name, an unknown path
        found = client.get(f"/v1/customers/lookup?kind=email&value={EMAIL}", headers=headers)
        client.get(f"/healthz?{EMAIL}&plain", headers=headers)
        client.get("/no-such-page/%0Aforged?value=x", headers=headers)
    assert found.status_code == 404
    lines = [record.getMessage() for record in caplog.records if record.name == "rapport.access"]
    assert lines[0].startswith('"GET /v1/customers/lookup?kind=…&value=… HTTP/1.1" 404 ')
    assert lines[1].startswith('"GET /healthz?…&… HTTP/1.1" 200 ')
    # a path no route matches is cut to its first segments that are words of Rapport's routes
    # (no line of its own from a %0A; the control character refused)
    assert lines[2].startswith('"GET /…?value=… HTTP/1.1" 422 ')
    assert all("alice" not in line and "\n" not in line for line in lines)


def test_the_access_log_writes_the_template_of_a_path_redirected_or_sent_as_head(
    client: TestClient, api_key: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {api_key('read')}"}
    with caplog.at_level(logging.INFO, logger="rapport.access"):
        # a trailing slash (redirected), a HEAD of a read, a mistyped path, bare query words
        slash = client.get(f"/v1/customers/{EMAIL}/", headers=headers, follow_redirects=False)
        member = client.get(f"/v1/loyalty/members/+{PHONE}/statement/", follow_redirects=False)
        head = client.head(f"/v1/customers/{EMAIL}/export", headers=headers)
        client.get(f"/v1/customers/{EMAIL}/no-such-view", headers=headers)
        client.get(f"/v1/{EMAIL}", headers=headers)
        client.get(f"/{EMAIL}/customers", headers=headers)
        client.get("/healthz?JohnSmith&kind=email", headers=headers)
        client.get("/static/no-such-file.css")
    assert slash.status_code == member.status_code == 307
    assert head.status_code == 403  # a read key may not export
    lines = [record.getMessage() for record in caplog.records if record.name == "rapport.access"]
    # then each is written as the route's template, else the first segments Rapport knows
    assert lines[0].startswith('"GET /v1/customers/{customer_id} HTTP/1.1" 307 ')
    assert lines[1].startswith('"GET /v1/loyalty/members/{customer_id}/statement HTTP/1.1" 307 ')
    assert lines[2].startswith('"HEAD /v1/customers/{customer_id}/export HTTP/1.1" 403 ')
    assert lines[3].startswith('"GET /v1/customers/… HTTP/1.1" 404 ')
    assert lines[4].startswith('"GET /v1/… HTTP/1.1" 404 ')
    assert lines[5].startswith('"GET /… HTTP/1.1" 404 ')
    assert lines[6].startswith('"GET /healthz?…&kind=… HTTP/1.1" 200 ')
    assert lines[7].startswith('"GET /static/… HTTP/1.1" 404 ')
    assert not [line for line in lines if "alice" in line or PHONE in line or "John" in line]
