"""A slow or idle client holds a server process only so long: a connection sending nothing is
closed after the keep-alive timeout (the first request's wait too), a request whose headers
trickle in is answered ``408`` problem+json and closed, and so is one whose body trickles in
past the request's budget. Asked of a real uvicorn server on loopback with Rapport's HTTP
protocol, its timeouts shortened."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from rapport.main import create_app
from rapport.platform.http_protocol import ProblemHttpProtocol
from rapport.platform.settings import Settings
from tests.conftest import free_port, migrated_sqlite

KEEP_ALIVE_S = 1
HEAD_TIMEOUT_S = 1.0
BUDGET_S = 2.0


class QuickProtocol(ProblemHttpProtocol):
    head_timeout_s = HEAD_TIMEOUT_S


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    settings = Settings(
        database_url=migrated_sqlite(tmp_path / "slow.db"),
        secret_key="slow-clients-secret",  # type: ignore[arg-type]
        data_dir=tmp_path,
        request_timeout_seconds=BUDGET_S,
    )
    chosen = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, run_worker=False),
            host="127.0.0.1",
            port=chosen,
            http=QuickProtocol,
            timeout_keep_alive=KEEP_ALIVE_S,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield chosen
    server.should_exit = True
    thread.join(timeout=10)


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    started = time.monotonic()
    sock.settimeout(limit_s)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


def _problem(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_a_connection_that_never_sends_a_request_is_closed_after_the_keep_alive(
    port: int,
) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        answer, took = _read_until_closed(sock, limit_s=KEEP_ALIVE_S + 10)
    assert answer == b""
    assert took < KEEP_ALIVE_S + 3, took


def test_headers_sent_a_line_a_second_are_refused_408_and_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        try:
            for number in range(10):
                time.sleep(0.5)
                sock.sendall(f"X-Slow-{number}: yes\r\n".encode())
        except OSError:
            pass  # the server closed the connection, as it should
        answer, _ = _read_until_closed(sock, limit_s=10)
        took = time.monotonic() - started
    status, headers, problem = _problem(answer)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert problem["type"] == "https://rapport.dev/problems/request-timeout"
    assert problem["instance"] == "/healthz"
    assert took < HEAD_TIMEOUT_S + 3, took


def test_a_body_sent_a_byte_at_a_time_is_refused_408_at_the_budget(port: int) -> None:
    body = json.dumps({"email": "slow@example.test"}).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        try:
            for byte in body:
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
                sock.settimeout(0.01)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break  # answered
                except TimeoutError:
                    pass
        except OSError:
            pass
        answer, _ = _read_until_closed(sock, limit_s=10)
        took = time.monotonic() - started
    status, headers, problem = _problem(answer)
    assert status == 408, answer
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert problem["type"] == "https://rapport.dev/problems/request-timeout"
    assert took < BUDGET_S + 3, took
