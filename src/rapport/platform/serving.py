"""Several HTTP server processes on one port, for ``rapport serve --processes N``.

Each process listens on its own socket bound with ``SO_REUSEPORT``, so the kernel spreads
new connections over the processes by their address hash. With one socket shared by every
process (uvicorn's ``--workers``), whichever process wakes first accepts every waiting
connection: 32 keep-alive connections opened together were measured landing 32 to 0 or
24 to 8, leaving one process (and, through the GIL, one core) to answer nearly everything.

The processes share their Prometheus metrics through prometheus_client's multiprocess mode:
the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before it starts
them, each process writes its counts to its own memory-mapped files there, and ``/metrics``
(whichever process answers) sums every file, those of processes since replaced included.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

APP_FACTORY = "rapport.main:server_process_app"
# Processes that die this soon after starting, this many times in a row, mean the server
# cannot start (say, a bad setting): it stops rather than restart them for ever.
STARTUP_GRACE_S = 10.0
MAX_EARLY_DEATHS = 3
STOP_TIMEOUT_S = 30.0
# prometheus_client reads it as it is imported: it must be in the environment the server
# processes start with (they are spawned, so they inherit os.environ as it is then).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other processes may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, plus the access log Rapport writes itself
    (``rapport.access``, see middleware.RequestMetrics) in uvicorn's format, on stdout as
    uvicorn's was. Every door that starts uvicorn passes it with ``access_log=False``:
    uvicorn's own access log writes the raw path and query string, emails included."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["rapport.access"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["rapport.access"] = {
        "handlers": ["rapport.access"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def configure_logging() -> None:
    """The application's log lines, as every ``rapport serve`` process (one or several) and
    ``rapport worker`` write them: INFO and above on stderr, each with its level and logger.
    Alembic's INFO lines ("Context impl PostgresqlImpl.") are left out: the schema checks
    (``/readyz``, each worker tick) would write them again and again."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _server_process(host: str, port: int) -> None:
    import uvicorn

    from rapport.platform.http_protocol import ProblemHttpProtocol

    configure_logging()  # a spawned process starts with none: as `rapport serve` with one

    sock = listening_socket(host, port)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        http=ProblemHttpProtocol,  # a request it cannot read is answered with problem+json
        proxy_headers=True,
        access_log=False,  # the application writes it (see log_config)
        log_config=log_config(),
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``count`` server processes, restarts one that dies after it has started, and
    stops them all (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``) on SIGINT or SIGTERM."""

    def __init__(self, *, count: int, host: str, port: int) -> None:
        self.count = count
        self.host = host
        self.port = port
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[tuple[BaseProcess, float]] = []
        self._stopping = False
        self._early_deaths = 0
        self._metrics_dir: Path | None = None
        self._own_metrics_dir = False

    def run(self) -> int:
        # Fail at once, with the reason, when the port is taken by something else.
        try:
            listening_socket(self.host, self.port).close()
        except OSError as error:
            log.error(
                "cannot listen on %s:%d: %s; stop what uses it or choose another --port",
                self.host,
                self.port,
                error.strerror,
            )
            return 1
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._prepare_metrics_dir()
            self._processes = [self._start() for _ in range(self.count)]
            log.info("serving on %s:%d with %d processes", self.host, self.port, self.count)
            while not self._stopping:
                time.sleep(0.5)
                if self._restart_dead():
                    return 1
        finally:
            self._stop_all()
            self._remove_metrics_dir()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _prepare_metrics_dir(self) -> None:
        """Give the processes an empty directory for their metric files: the operator's
        ``PROMETHEUS_MULTIPROC_DIR`` (emptied of an earlier run's files, which would otherwise
        be summed in), else a temporary one removed when the server stops."""
        chosen = os.environ.get(METRICS_DIR_ENV)
        if chosen:
            directory = Path(chosen)
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob("*.db"):
                stale.unlink(missing_ok=True)
        else:
            directory = Path(tempfile.mkdtemp(prefix="rapport-metrics-"))
            os.environ[METRICS_DIR_ENV] = str(directory)
            self._own_metrics_dir = True
        self._metrics_dir = directory

    def _remove_metrics_dir(self) -> None:
        if self._own_metrics_dir and self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            os.environ.pop(METRICS_DIR_ENV, None)
            self._own_metrics_dir = False

    def _forget_metrics_of(self, pid: int | None) -> None:
        """Drop a dead process's live gauges (its counters stay: totals never go back)."""
        if pid is None or self._metrics_dir is None:
            return
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]

    def _start(self) -> tuple[BaseProcess, float]:
        process = self._context.Process(
            target=_server_process, args=(self.host, self.port), name="rapport-server"
        )
        process.start()
        return process, time.monotonic()

    def _restart_dead(self) -> bool:
        """Restart processes that died; True when they keep dying as they start (a broken
        configuration, not bad luck): then the server gives up."""
        for index, (process, started) in enumerate(self._processes):
            if process.is_alive() or self._stopping:
                continue
            if time.monotonic() - started < STARTUP_GRACE_S:
                self._early_deaths += 1
                if self._early_deaths >= MAX_EARLY_DEATHS:
                    log.error(
                        "server processes keep exiting as they start (their errors are above);"
                        " stopping"
                    )
                    return True
            else:
                self._early_deaths = 0
            log.warning(
                "server process %s exited (code %s); starting another",
                process.pid,
                process.exitcode,
            )
            self._forget_metrics_of(process.pid)
            self._processes[index] = self._start()
        return False

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        self._stopping = True
        for process, _ in self._processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process, _ in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_processes(*, count: int, host: str, port: int) -> int:
    """Serve the application from ``count`` processes until SIGINT or SIGTERM; the exit code."""
    return Supervisor(count=count, host=host, port=port).run()
