"""`rapport serve --processes N`: every process listens on its own socket, connections are
spread over them, a process that dies is replaced, and stopping the server stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import free_port, migrated_sqlite

RAPPORT = str(Path(sys.executable).with_name("rapport"))


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with suppress(FileNotFoundError):  # a thread that ended since the listing
            found.extend(int(child) for child in task.read_text().split())
    return found


def _servers(served: Served) -> dict[int, int]:
    """The server processes (the supervisor's children listening on the port; multiprocessing
    starts a resource tracker beside them) and their established connections."""
    children = _children(served.process.pid)
    listening = _sockets_by_process(children, served.port, "0A")
    return _sockets_by_process([pid for pid, n in listening.items() if n == 1], served.port, "01")


def _sockets_by_process(pids: list[int], port: int, state: str) -> dict[int, int]:
    """How many TCP sockets on local ``port`` in ``state`` (hex, as /proc/net/tcp writes it:
    0A listening, 01 established) each process holds."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    counts = {}
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except FileNotFoundError:
            continue  # the process ended since it was listed (the one just killed, say)
        held = 0
        for fd in descriptors:
            with suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        counts[pid] = held
    return counts


def _wait_for(condition, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """``rapport serve --processes 2``; indirect parameters add environment variables."""
    extra_env = getattr(request, "param", {})
    url = migrated_sqlite(tmp_path / "serve.db")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [RAPPORT, "serve", "--port", str(port), "--processes", "2", "--no-worker"],
            env={
                **os.environ,
                "RAPPORT_DATABASE_URL": url,
                "RAPPORT_DATA_DIR": str(tmp_path),
                "RAPPORT_SECRET_KEY": "serving-secret-for-tests",
                **extra_env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log)

    def listening() -> bool:
        assert process.poll() is None, log.read_text()
        return len(_servers(served)) == 2

    try:
        _wait_for(listening, "two processes listening")
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_connections_are_spread_over_the_processes(served: Served) -> None:
    # when 32 keep-alive connections are opened together and each asks once
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{served.port}") for _ in range(32)]
    try:
        assert all(c.get("/healthz").status_code == 200 for c in clients)
        # then both processes hold some of them (all on one: 1 chance in 2^31)
        per_process = _servers(served)
        assert sum(per_process.values()) == 32
        assert all(count > 0 for count in per_process.values()), per_process
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize(
    ("served", "logged"),
    [({}, True), ({"RAPPORT_ACCESS_LOG": "false"}, False)],
    indirect=["served"],
)
def test_the_access_log_follows_the_setting(served: Served, logged: bool) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}") as client:
        assert client.get("/healthz").status_code == 200
    served.process.terminate()
    served.process.wait(timeout=60)
    assert ('"GET /healthz HTTP/1.1" 200' in served.log.read_text()) is logged


def test_a_process_that_dies_is_replaced(served: Served) -> None:
    # given one server process killed outright
    victim = next(iter(_servers(served)))
    os.kill(victim, signal.SIGKILL)

    # then another takes its place and the server answers as before
    def replaced() -> bool:
        servers = _servers(served)
        return victim not in servers and len(servers) == 2

    _wait_for(replaced, "a replacement process")
    _wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200,
        "an answer",
    )


def test_stopping_the_server_stops_every_process(served: Served) -> None:
    # when the supervisor is asked to stop
    servers = list(_servers(served))
    served.process.send_signal(signal.SIGTERM)

    # then it exits cleanly and takes every server process with it
    assert served.process.wait(timeout=60) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in servers)


def test_a_port_in_use_is_reported_at_once(tmp_path: Path) -> None:
    # given a port another program listens on
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        url = migrated_sqlite(tmp_path / "serve.db")

        # when Rapport is asked to serve there
        finished = subprocess.run(
            [RAPPORT, "serve", "--port", str(port), "--processes", "2", "--no-worker"],
            env={**os.environ, "RAPPORT_DATABASE_URL": url, "RAPPORT_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    # then it stops with the reason rather than starting processes that cannot listen
    assert finished.returncode == 1
    assert "cannot listen on 127.0.0.1" in finished.stderr + finished.stdout
    assert "in use" in finished.stderr + finished.stdout
    assert "choose another --port" in finished.stderr + finished.stdout
