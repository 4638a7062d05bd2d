"""`/metrics` under `rapport serve --processes N`: one scrape, answered by any process, counts
what every process counted (rejected tracking messages by reason, requests by route), a
replaced process's counts are kept, and the shared metric files go when the server stops.
Requests are labelled with their route's full template, routers' prefixes included."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest

from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import auth, free_port, migrated_sqlite
from tests.events.factories import basic_auth
from tests.platform.test_serving import RAPPORT, Served, _servers, _wait_for

# The machine running the suite may be busy: a server process can take a minute to start.
START_TIMEOUT_S = 300.0
CONNECTIONS = 16


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[Served]:
    """``rapport serve --processes 2`` on SQLite, waited for until both processes listen."""
    url = migrated_sqlite(tmp_path / "serve.db")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": url,
        "RAPPORT_DATA_DIR": str(tmp_path),
        "RAPPORT_SECRET_KEY": "metrics-secret-for-tests",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(port), "--processes", "2", "--no-worker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log)

    def answering() -> bool:
        assert process.poll() is None, log.read_text()
        if len(_servers(served)) != 2:
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait_for(answering, "two processes answering", timeout=START_TIMEOUT_S)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=120)


def _track(message_id: str, event: str) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "metrics-user",
        "event": event,
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _sample(text: str, name: str, *labels: str) -> float:
    """The sum of the samples ``name{...}`` whose labels include every one of ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _scrape(port: int) -> str:
    # A new connection each time: the kernel may hand it to either process.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        response = client.get("/metrics")
        assert response.status_code == 200
        return response.text


def _metrics_dir(served: Served) -> Path:
    """The shared metrics directory, as the server processes were started with it."""
    server = next(iter(_servers(served)))
    environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
    found = [item for item in environ if item.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    assert found, "the server processes share a metrics directory"
    return Path(found[0].split(b"=", 1)[1].decode())


def test_one_scrape_counts_every_process(two_processes: Served, tmp_path: Path) -> None:
    # given an ingest key
    served = two_processes
    with open_session(f"sqlite:///{tmp_path / 'serve.db'}") as db:
        secret = platform.create_api_key(db, name="sdk", scopes=[platform.Scope.INGEST]).secret
    base = f"http://127.0.0.1:{served.port}"
    clients = [httpx.Client(base_url=base, timeout=120) for _ in range(CONNECTIONS)]
    try:
        # when 16 connections (spread by the kernel over both processes) each send a batch
        # with one valid message and one whose event name is too long
        def send(numbered: tuple[int, httpx.Client]) -> int:
            number, client = numbered
            batch = [_track(f"ok-{number}", "Product Viewed"), _track(f"bad-{number}", "x" * 201)]
            response = client.post("/v1/batch", json={"batch": batch}, headers=basic_auth(secret))
            assert response.json()["rejected"] == 1, response.text
            return response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(send, enumerate(clients)))
        per_process = _servers(served)
    finally:
        for client in clients:
            client.close()
    assert codes == [200] * CONNECTIONS
    # (both processes answered some: otherwise one process's own count would pass as well)
    assert len([n for n in per_process.values() if n]) == 2, per_process

    # then one scrape, from whichever process, counts every rejected message by its reason
    # and every batch request, whichever process took them
    for _ in range(3):
        text = _scrape(served.port)
        assert _sample(text, "rapport_tracking_rejected_total", 'reason="string_too_long"') == (
            CONNECTIONS
        )
        batches = _sample(text, "rapport_http_requests_total", 'route="/v1/batch"', 'status="200"')
        assert batches == CONNECTIONS
        assert (
            _sample(text, "rapport_http_request_duration_seconds_count", 'route="/v1/batch"')
            == CONNECTIONS
        )

    # when a server process dies and is replaced
    shared = _metrics_dir(served)
    assert any(shared.glob("counter_*.db"))
    victim = next(iter(_servers(served)))
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        servers = _servers(served)
        return victim not in servers and len(servers) == 2

    _wait_for(replaced, "a replacement process", timeout=START_TIMEOUT_S)

    # then what it counted still counts
    def still_counted() -> bool:
        try:
            text = _scrape(served.port)
        except httpx.TransportError:
            return False  # the replacement is not answering yet
        return _sample(text, "rapport_tracking_rejected_total", "string_too_long") == CONNECTIONS

    _wait_for(still_counted, "the dead process's counts kept", timeout=START_TIMEOUT_S)

    # and when the server stops, its metric files go with it
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=120) == 0
    assert not shared.exists()


def test_requests_are_labelled_with_the_full_route_template(client, api_key) -> None:
    # given routes declared in routers included under prefixes (/v1/orders, and /v1/loyalty
    # holding the program's router)
    headers = auth(api_key("read"))

    # when they are asked
    assert client.get("/v1/orders/ord_missing-1", headers=headers).status_code == 404
    assert client.get("/v1/orders/ord_missing-2", headers=headers).status_code == 404
    validated = client.post(
        "/v1/loyalty/coupons/validate", json={"codes": ["GUESS"]}, headers=headers
    )
    assert validated.status_code == 200

    # then /metrics counts them by their whole template, never by a prefix-less one
    text = client.get("/metrics").text
    assert (
        _sample(
            text, "rapport_http_requests_total", 'route="/v1/orders/{order_id}"', 'status="404"'
        )
        >= 2
    )
    assert _sample(text, "rapport_http_requests_total", 'route="/v1/loyalty/coupons/validate"') >= 1
    assert 'route="/{order_id}"' not in text
    assert 'route="/coupons/validate"' not in text
