"""The PostgreSQL server a benchmark measures: by default a throw-away cluster with production
durability, started for the run and removed after it.

    from postgres import add_database_url_option, postgres_server

    add_database_url_option(parser)            # --database-url, or RAPPORT_BENCH_POSTGRES_URL
    with postgres_server(args.database_url) as server:
        ...  # server.url: the server's ``postgres`` database; server.table_rows() for the table

Without a URL, ``initdb`` makes a cluster in a temporary directory (binaries found as
scripts/test.sh finds them: the newest ``/usr/lib/postgresql/*/bin``, else ``initdb`` on the
PATH) and ``pg_ctl`` starts it on a free loopback port with ``fsync``, ``synchronous_commit``
and ``full_page_writes`` on, as a production server runs, unlike the test cluster (fsync off).
PostgreSQL refuses to run as root: as root the cluster belongs to the ``postgres`` account and
its commands run through ``runuser``, as in scripts/test.sh. The server is stopped and its
directory removed when the block ends, whether by return, exception, Ctrl-C or SIGTERM.

With a URL (``--database-url`` or ``RAPPORT_BENCH_POSTGRES_URL``) the bench measures that
existing server as it is configured; either way its table shows the settings it ran with.
"""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sqlalchemy import create_engine, text

URL_ENV = "RAPPORT_BENCH_POSTGRES_URL"
# Where the throw-away cluster lives; the default temporary directory unless set. Its file
# system decides what fsync costs (on tmpfs it costs nothing), so the table names it.
DIRECTORY_ENV = "RAPPORT_BENCH_POSTGRES_DIR"
DURABILITY = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
SHOWN_SETTINGS = ("server_version", *DURABILITY, "shared_buffers", "max_connections")
START_ATTEMPTS = 5


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server and the settings it reported."""

    url: str  # SQLAlchemy URL of the server's ``postgres`` database
    throwaway: bool  # started for this run (else an existing server named by URL)
    settings: dict[str, str] = field(default_factory=dict)
    file_system: str | None = None  # of the throw-away cluster's data directory

    def describe(self) -> str:
        where = (
            f"throw-away cluster on {self.file_system or 'an unknown file system'}"
            if self.throwaway
            else "existing server (--database-url)"
        )
        return f"PostgreSQL {self.settings.get('server_version', '?')}, {where}"

    def durability(self) -> str:
        return ", ".join(f"{name} {self.settings.get(name, '?')}" for name in DURABILITY)

    def table_rows(self) -> list[tuple[str, str]]:
        """Rows for a bench's Markdown table: what was measured, with which durability."""
        return [
            ("PostgreSQL server", self.describe()),
            ("PostgreSQL durability", self.durability()),
            (
                "PostgreSQL shared_buffers / max_connections",
                f"{self.settings.get('shared_buffers', '?')} / "
                f"{self.settings.get('max_connections', '?')}",
            ),
        ]


def add_database_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get(URL_ENV) or None,
        help=(
            "measure this existing PostgreSQL server (SQLAlchemy URL of a database whose user "
            f"may create databases; default ${URL_ENV}) instead of starting a throw-away "
            "cluster with production durability"
        ),
    )


@contextmanager
def postgres_server(database_url: str | None = None) -> Iterator[PostgresServer]:
    """The server at ``database_url`` when one is given, else a throw-away durable one."""
    if database_url:
        settings = read_settings(database_url)
        yield PostgresServer(url=database_url, throwaway=False, settings=settings)
        return
    with throwaway_postgres() as server:
        yield server


@contextmanager
def throwaway_postgres(*, max_connections: int = 200) -> Iterator[PostgresServer]:
    """A new cluster in a temporary directory on a free loopback port, fsync and synchronous
    commit on; stopped and removed when the block ends."""
    binaries = postgres_binaries()
    base = os.environ.get(DIRECTORY_ENV) or None
    root = Path(tempfile.mkdtemp(prefix="rapport-bench-pg-", dir=base))
    run_as: list[str] = []
    user = getpass.getuser()
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root; use the account its package creates.
        account = postgres_account(root)
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as, user = ["runuser", "-u", account.pw_name, "--"], account.pw_name
    data, log = root / "data", root / "server.log"
    started = False
    with stop_on_sigterm():
        try:
            initdb = [str(binaries / "initdb"), "-D", str(data), "-U", user, "--auth=trust"]
            subprocess.run(
                [*run_as, *initdb, "-E", "UTF8", "--locale=C"], check=True, capture_output=True
            )
            port = 0
            for _ in range(START_ATTEMPTS):
                port = free_port()
                options = " ".join(
                    [
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {root}",
                        *(f"-c {name}={value}" for name, value in DURABILITY.items()),
                        f"-c max_connections={max_connections}",
                    ]
                )
                start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w"]
                start += ["-t", "120", "-o", options, "start"]  # -t: a loaded machine is slow
                started = subprocess.run([*run_as, *start], capture_output=True).returncode == 0
                if started:
                    break
                # Another process took the port between the look and the start: another port.
                if "could not bind" not in read_tail(log):
                    break
            if not started:
                raise SystemExit(f"PostgreSQL did not start; its log ends:\n{read_tail(log)}")
            url = f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
            yield PostgresServer(
                url=url,
                throwaway=True,
                settings=read_settings(url),
                file_system=file_system_of(root),
            )
        finally:
            if started or data.joinpath("postmaster.pid").exists():
                # The cluster is thrown away: no shutdown checkpoint needed.
                stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
                subprocess.run([*run_as, *stop], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)


def postgres_binaries() -> Path:
    """The newest installed server's ``bin`` directory, as scripts/test.sh picks it."""

    def major(initdb: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", initdb.parent.parent.name))

    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=major)
    if installed:
        return installed[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise SystemExit(
        "no PostgreSQL server binaries (initdb) found: install the postgresql package "
        "(scripts/test.sh does) or pass --database-url to measure an existing server"
    )


def postgres_account(home: Path) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        useradd = ["useradd", "--system", "--home", str(home), "postgres"]
        subprocess.run(useradd, check=True, capture_output=True)
        return pwd.getpwnam("postgres")


def read_settings(url: str) -> dict[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                name: str(connection.execute(text(f"SHOW {name}")).scalar_one())
                for name in SHOWN_SETTINGS
            }
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def file_system_of(path: Path) -> str | None:
    """The type of the file system holding ``path`` (the longest matching mount point)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    resolved, best, kind = str(path.resolve()), "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def read_tail(log: Path, characters: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while the block runs, so that a bench killed
    politely (by the before/after runner, a closed terminal) still stops its server."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {
        signum: signal.signal(signum, leave)
        for signum in (signal.SIGTERM, signal.SIGHUP)
        if signal.getsignal(signum) is signal.SIG_DFL
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
