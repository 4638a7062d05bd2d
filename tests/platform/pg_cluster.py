"""A throwaway PostgreSQL cluster of a test's own, which the test may stop, pause (SIGSTOP,
as a hung server) and start again: the shared server (scripts/test.sh) must never be."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *command],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Cluster:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"
        )

    def _processes(self) -> list[int]:
        """The postmaster and every child of it."""
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def pause(self) -> None:
        """SIGSTOP the postmaster and its children: the server no longer answers anything,
        though the kernel still accepts connections and data for it."""
        for pid in self._processes():
            with suppress(ProcessLookupError):  # a child that has just exited
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@contextmanager
def own_cluster() -> Iterator[Cluster]:
    """A new cluster on a free port of loopback, trusting local connections; removed after."""
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"a cluster of the test's own needs {PG_BIN}/initdb and runuser")
    directory = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
    shutil.chown(directory, "postgres")
    cluster = Cluster(directory, free_port())
    try:
        _as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(directory / "data"),
            "--auth=trust",
            "--username=postgres",
            "--no-sync",
        )
        cluster.start()
        yield cluster
    finally:
        try:
            if (directory / "data" / "postmaster.pid").exists():
                cluster.resume()
                cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
