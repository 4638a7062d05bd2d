"""``rapport serve``'s HTTP protocol answers what it cannot read with problem+json: a URL over
the 65,535 bytes httptools reads is 414, where uvicorn answered a plain-text
``400 Invalid HTTP request received.``; a URL Rapport reads but refuses (over 8 KiB) is the
application's own 414. Asked of a real ``rapport serve``, with one process and with two."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapport.platform.http_protocol import PARSER_MAX_URL_BYTES
from rapport.platform.middleware import MAX_URL_BYTES
from tests.conftest import free_port, migrated_sqlite
from tests.platform.test_serving import (  # noqa: F401 (served: the fixture)
    RAPPORT,
    Served,
    _wait_for,
    served,
)


@pytest.fixture
def one_process(tmp_path: Path) -> Iterator[Served]:
    """``rapport serve`` as one process (uvicorn run in it, not the supervisor's children)."""
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(port), "--processes", "1", "--no-worker"],
            env={
                **os.environ,
                "RAPPORT_DATABASE_URL": migrated_sqlite(tmp_path / "serve.db"),
                "RAPPORT_DATA_DIR": str(tmp_path),
                "RAPPORT_SECRET_KEY": "serving-secret-for-tests",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def listening() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        _wait_for(listening, "rapport serve listening")
        yield Served(process, port, log)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _ask(port: int, target: bytes) -> tuple[bytes, dict[str, str], bytes]:
    """Send ``GET target`` over a raw socket (no client refuses to send it): the status line,
    the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: rapport\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            fields = dict(
                line.decode().lower().split(": ", 1) for line in head.split(b"\r\n")[1:] if line
            )
            if "content-length" in fields and len(body) >= int(fields["content-length"]):
                return head.split(b"\r\n")[0], fields, body
    raise AssertionError(f"no whole answer: {answer[:300]!r}")


@pytest.mark.parametrize("serving", ["one_process", "served"])
def test_what_the_server_cannot_read_or_rapport_refuses_is_problem_json(
    serving: str, request: pytest.FixtureRequest
) -> None:
    server: Served = request.getfixturevalue(serving)
    # given a cart so long that the URL is over what the HTTP parser reads
    target = b"/v1/recommendations?placement=home&cart=" + b"x" * (PARSER_MAX_URL_BYTES + 1)

    # when it is asked for
    status, headers, body = _ask(server.port, target)

    # then the server's own answer is a problem saying what Rapport reads
    assert status.startswith(b"HTTP/1.1 414 "), status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "https://rapport.dev/problems/uri-too-long"
    assert problem["status"] == 414
    assert f"at most {MAX_URL_BYTES:,}" in problem["detail"]
    assert problem["instance"] == "/v1/recommendations"

    # and a URL the server reads but Rapport refuses is the application's 414, naming cart
    target = b"/v1/recommendations?placement=home&cart=" + b"x" * (MAX_URL_BYTES + 1)
    status, headers, body = _ask(server.port, target)
    assert status.startswith(b"HTTP/1.1 414 "), status
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["field"] == "cart"

    # and a request that is not HTTP is a 400 problem, not plain text
    status, headers, body = _ask(server.port, b"/healthz HTTP/1.1\r\nNo colon here")
    assert status.startswith(b"HTTP/1.1 400 "), status
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == "https://rapport.dev/problems/bad-request"
