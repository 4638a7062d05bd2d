"""Event ingestion: batched throughput into SQLite and PostgreSQL, single-event latency at a
steady rate, trait lag and peak server memory, side by side with a naive FastAPI baseline.

    .venv/bin/python bench/ingest.py            # --quick: a smoke run in about a minute

Starts everything it needs: a migrated SQLite file and a throw-away PostgreSQL cluster with
production durability (fsync and synchronous commit on, bench/postgres.py; ``--database-url``
or RAPPORT_BENCH_POSTGRES_URL measures an existing server instead), then ``rapport serve`` as a
real subprocess on loopback with an API key made beforehand. The baseline is a plain FastAPI app
(a Pydantic model per event, existence query, ORM inserts) served the same way by this script
(``--serve-baseline``). Prints a Markdown table (with the PostgreSQL server's settings), then
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx
import orjson
import uvloop
from fastapi import Response
from pydantic import AwareDatetime, BaseModel, Field, IPvAnyAddress
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.migrations_runner import upgrade

# isort: split
# Started as a script, this folder is on sys.path: the benches' PostgreSQL server.
from postgres import PostgresServer, add_database_url_option, free_port, postgres_server

# Start-up imports scikit-learn and friends: on a busy 2-core machine that alone can take
# most of a minute.
START_TIMEOUT_S = 180
TYPES = ("page_viewed", "product_viewed", "cart_updated", "searched", "product_viewed")
# --quick: every part runs, on little data (the naive baseline is left out).
QUICK: dict[str, Any] = {
    "events": 4000,
    "baseline_events": 2000,
    "seconds": 3.0,
    "trait_wait": 30.0,
    "skip_baseline": True,
}


# --- load ----------------------------------------------------------------------------------


def make_event(prefix: str, number: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """A realistic web/app event: a customer or an anonymous visitor, a product, a page."""
    known = rng.random() < 0.6
    sku = f"SKU-{rng.randrange(5000):05d}"
    return {
        "event_id": f"{prefix}-{number}",
        "type": rng.choice(TYPES),
        "customer_id": f"C{rng.randrange(50_000):06d}" if known else None,
        "anonymous_id": f"anon-{rng.randrange(200_000):07d}",
        "channel": "app" if rng.random() < 0.3 else "web",
        "occurred_at": (now - timedelta(seconds=rng.randrange(3600))).isoformat(),
        "properties": {"sku": sku, "price_minor": rng.randrange(500, 20_000), "currency": "EUR"},
        "context": {
            "device": rng.choice(("mobile", "desktop", "tablet")),
            "page": {"url": f"https://shop.example/p/{sku}", "title": "Product"},
            "ip": f"203.0.113.{rng.randrange(1, 255)}",
            "location": {"lat": 52.37 + rng.random() / 10, "lon": 4.89 + rng.random() / 10},
        },
    }


def batch_bodies(prefix: str, total: int, size: int) -> list[bytes]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    return [
        orjson.dumps(
            {"events": [make_event(prefix, start + i, rng, now) for i in range(size)]},
        )
        for start in range(0, total, size)
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    ingest_key: str = ""
    read_key: str = ""
    log: Path | None = None

    def peak_rss_mb(self) -> float:
        """VmHWM, the most resident memory a process has had, summed over the server and its
        child processes (``--processes N``)."""
        total = 0
        for pid in process_tree(self.process.pid):
            with suppress(FileNotFoundError):
                status = Path(f"/proc/{pid}/status").read_text()
                line = next(row for row in status.splitlines() if row.startswith("VmHWM:"))
                total += int(line.split()[1])
        return total / 1024


def process_tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            found.extend(process_tree(int(child)))
    return found


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """Send one raw HTTP/1.1 request on a keep-alive connection; its answer's status and body."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length)
    return int(head.split(b" ", 2)[1]), body


def run_batched(server: Server, bodies: list[bytes], connections: int) -> dict[str, float]:
    """Post every body once over ``connections`` keep-alive connections (closed loop: each
    sends its next batch when the last is answered); events/s overall. One asyncio client
    writing raw HTTP/1.1, like the single events': four httpx client threads handing the GIL
    over every 0.5 ms spent CPU of the two cores the server uses too (the same server measured
    21,500-24,900 events/s into SQLite through them, 26,400 through this client)."""
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    head = (
        f"POST /v1/events/batch HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.ingest_key}\r\nContent-Type: application/json\r\n"
    )
    requests = [f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies]
    return uvloop.run(_batched(host, port, requests, connections))


async def _batched(
    host: str, port: int, requests: list[bytes], connections: int
) -> dict[str, float]:
    pending = list(reversed(requests))
    latencies: list[float] = []
    accepted = 0
    failures: list[str] = []

    async def connection() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection(host, port)
        while pending and not failures:
            raw = pending.pop()
            started = time.perf_counter()
            status, body = await exchange(reader, writer, raw)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                failures.append(f"{status}: {body[:200]!r}")
            else:
                accepted += int(orjson.loads(body)["accepted"])
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"batched ingestion failed: {failures[0]}")
    return {
        "events": accepted,
        "seconds": elapsed,
        "events_per_s": accepted / elapsed,
        "batch_p50_ms": percentile(latencies, 0.50) * 1000,
        "batch_p99_ms": percentile(latencies, 0.99) * 1000,
    }


def run_steady(server: Server, prefix: str, rate: float, seconds: float) -> dict[str, float]:
    """Single events at ``rate`` per second, sent on schedule (open loop) over up to 32
    keep-alive connections by one asyncio client writing raw HTTP/1.1 (a thread per request
    in Python would add its own GIL queueing to the figures). Latency is measured from each
    request's scheduled time, so a request queued in the client counts."""
    total = int(rate * seconds)
    rng = random.Random(11)
    now = datetime.now(UTC)
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {server.ingest_key}"
        "\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    requests = []
    for number in range(total):
        body = orjson.dumps(make_event(prefix, number, rng, now))
        requests.append(head.replace("{length}", str(len(body))).encode() + body)
    latencies, statuses, elapsed = uvloop.run(open_loop(host, port, requests, rate))
    failures = [status for status in statuses if status != 201]
    if failures:
        raise SystemExit(f"single events failed: {len(failures)} answered {failures[0]}")
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


async def open_loop(
    host: str, port: int, requests: list[bytes], rate: float, connections: int = 32
) -> tuple[list[float], list[int], float]:
    """Send each request at its time on the first free connection; (latencies, statuses,
    seconds from the first request's time to the last answer)."""
    # The client's own garbage collections would pause it, and a paused client counts its
    # delay against the server: what this process holds so far (a dataset, a trained model's
    # leftovers) is set aside from collection first.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while (item := await queue.get()) is not None:
            due, raw = item
            status, _ = await exchange(reader, writer, raw)
            latencies.append(loop.time() - due)
            statuses.append(status)
        writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = loop.time() + 0.5
    for number, raw in enumerate(requests):
        due = start + number / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, raw))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, statuses, loop.time() - start


def run_trait_lag(server: Server, events: int, wait_s: float) -> tuple[float | None, str]:
    """Seconds from a committed batch for a new customer until their profile's traits count
    its events, through ``GET /v1/customers/lookup``."""
    customer = f"bench-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    body = {
        "events": [
            {
                "event_id": f"{customer}-{number}",
                "type": "product_viewed",
                "customer_id": customer,
                "channel": "web",
                "occurred_at": (now - timedelta(seconds=events - number)).isoformat(),
                "properties": {"sku": "SKU-00001"},
            }
            for number in range(events)
        ]
    }
    ingest = {"Authorization": f"Bearer {server.ingest_key}"}
    read = {"Authorization": f"Bearer {server.read_key}"}
    params = {"kind": "external_id", "value": customer}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        sent = client.post("/v1/events/batch", json=body, headers=ingest)
        committed = time.perf_counter()
        if sent.status_code != 200 or sent.json()["accepted"] != events:
            return None, f"the events were not accepted ({sent.status_code})"
        statuses: set[int] = set()
        deadline = committed + wait_s
        while time.perf_counter() < deadline:
            response = client.get("/v1/customers/lookup", params=params, headers=read)
            statuses.add(response.status_code)
            if response.status_code == 200:
                traits = response.json().get("traits") or {}
                if (traits.get("event_count") or 0) >= events:
                    return time.perf_counter() - committed, "ok"
            time.sleep(0.05)
    seen = ", ".join(str(code) for code in sorted(statuses))
    return None, f"no traits within {wait_s:.0f} s (lookup answered {seen})"


# --- servers and databases ----------------------------------------------------------------


def issue_keys(database_url: str) -> tuple[str, str]:
    with open_session(database_url) as db:
        ingest = platform.create_api_key(db, name="bench ingest", scopes=[platform.Scope.INGEST])
        read = platform.create_api_key(db, name="bench read", scopes=[platform.Scope.READ])
        return ingest.secret, read.secret


def listening_sockets(port: int) -> int:
    """How many sockets listen on ``port`` on this machine."""
    found = subprocess.run(
        ["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=True
    )
    return len(found.stdout.splitlines())


@contextmanager
def serve(
    database_url: str, workdir: Path, *, baseline: bool = False, extra: list[str] | None = None
) -> Iterator[Server]:
    """``rapport serve`` (or the baseline app) as a subprocess on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_SECRET_KEY": secrets.token_urlsafe(32),
        "RAPPORT_DATA_DIR": str(workdir),
    }
    if baseline:
        command = [sys.executable, __file__, "--serve-baseline", "--port", str(port)]
    else:
        rapport = Path(sys.executable).with_name("rapport")
        command = [
            str(rapport),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *(extra or []),
        ]
        if os.environ.get("BENCH_SERVER_WRAPPER"):
            command = [sys.executable, os.environ["BENCH_SERVER_WRAPPER"], *command[1:]]
    log = workdir / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    server = Server(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not start within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        # Each server process listens on its own socket (SO_REUSEPORT): wait for all of them,
        # or the first connections would all go to the first one up.
        arguments = extra or []
        wanted = (
            int(arguments[arguments.index("--processes") + 1]) if "--processes" in arguments else 1
        )
        while listening_sockets(port) < wanted:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{wanted} server processes did not start within {START_TIMEOUT_S} s"
                )
            time.sleep(0.1)
        # A socket listens before its process has built the app (several seconds of imports):
        # clients that connect then stay with that process and wait, so a figure would depend
        # on start-up timing. Wait until every process says it is ready (the baseline is one
        # process, logging warnings only).
        while (
            not baseline
            and log.read_text(errors="replace").count("Application startup complete") < wanted
        ):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{wanted} server processes were not ready within {START_TIMEOUT_S} s"
                )
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def sqlite_database(workdir: Path, name: str) -> Iterator[str]:
    url = f"sqlite:///{workdir / name}.db"
    upgrade(url)
    yield url


@contextmanager
def postgres_database(server_url: str, name: str) -> Iterator[str]:
    """A new, migrated database on ``server_url``, dropped afterwards."""
    database = f"rapport_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


# --- the naive baseline --------------------------------------------------------------------


class BaselinePage(BaseModel):
    url: str | None = None
    title: str | None = None


class BaselineLocation(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class BaselineContext(BaseModel):
    device: str | None = None
    page: BaselinePage | None = None
    ip: IPvAnyAddress | None = None
    location: BaselineLocation | None = None


class BaselineEvent(BaseModel):
    event_id: str = Field(min_length=1, max_length=100)
    type: str = Field(pattern=r"^[a-z][a-z0-9_]{1,59}$")
    customer_id: str | None = None
    anonymous_id: str | None = None
    channel: Literal["web", "app", "store", "call_center", "email"]
    occurred_at: AwareDatetime
    properties: dict[str, Any] = {}
    context: BaselineContext = BaselineContext()


class BaselineBatch(BaseModel):
    events: list[BaselineEvent] = Field(max_length=1000)


def serve_baseline(port: int) -> None:
    """What a first FastAPI version would do: a Pydantic model per event (nested models for
    the context), one query for existing ids, ORM objects, commit. No auth: it only helps it."""
    import uvicorn
    from fastapi import FastAPI
    from sqlalchemy import select

    from rapport.events.models import Event
    from rapport.platform.db import create_db_engine
    from rapport.platform.settings import get_settings

    try:
        from rapport.domains import load_models
    except ImportError:  # the code before issue 15 (bench/before_after.py measures it too)
        from rapport.platform.domains import load_models  # type: ignore[import-not-found,no-redef]

    load_models()
    engine = create_db_engine(get_settings().database_url)

    app = FastAPI()

    def store(events: list[BaselineEvent]) -> int:
        from sqlalchemy.orm import Session

        now = datetime.now(UTC)
        with Session(engine) as db:
            ids = [event.event_id for event in events]
            existing = set(db.scalars(select(Event.event_id).where(Event.event_id.in_(ids))))
            new = [
                Event(
                    event_id=event.event_id,
                    type=event.type,
                    user_id=event.customer_id,
                    anonymous_id=event.anonymous_id,
                    channel=event.channel,
                    occurred_at=event.occurred_at,
                    received_at=now,
                    properties=event.properties,
                    context=event.context.model_dump(mode="json", exclude_none=True),
                    source="api",
                )
                for event in events
                if event.event_id not in existing
            ]
            db.add_all(new)
            db.commit()
            return len(new)

    @app.post("/v1/events/batch")
    def batch(body: BaselineBatch) -> dict[str, int]:
        accepted = store(body.events)
        return {"accepted": accepted, "duplicates": len(body.events) - accepted}

    @app.post("/v1/events", status_code=201)
    def single(body: BaselineEvent, response: Response) -> dict[str, Any]:
        accepted = store([body])
        if not accepted:
            response.status_code = 200
        return {"event_id": body.event_id, "duplicate": not accepted}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- the run -------------------------------------------------------------------------------


@dataclass
class Figures:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, measure: str, rapport: str, baseline: str = "") -> None:
        self.rows.append((measure, rapport, baseline))

    def print(self) -> None:
        print("| measure | Rapport | naive baseline |")
        print("| --- | ---: | ---: |")
        for measure, rapport, baseline in self.rows:
            print(f"| {measure} | {rapport} | {baseline or '—'} |")


def measure_backend(
    label: str,
    database: Callable[[str], Any],
    workdir: Path,
    args: argparse.Namespace,
    figures: Figures,
    *,
    serve_args: list[str],
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    bodies = batch_bodies(f"{label}-r", args.events, args.batch)
    with database("rapport") as url:
        ingest_key, read_key = issue_keys(url)
        with serve(url, workdir, extra=serve_args) as server:
            server.ingest_key, server.read_key = ingest_key, read_key
            run_batched(server, batch_bodies(f"{label}-warm", 2000, args.batch), 2)
            found["batched"] = run_batched(server, bodies, args.connections)
            found["steady"] = run_steady(server, f"{label}-s", args.rate, args.seconds)
            found["rss_mb"] = server.peak_rss_mb()
    del bodies
    if not args.skip_baseline:
        base_bodies = batch_bodies(f"{label}-b", args.baseline_events, args.batch)
        with database("baseline") as url, serve(url, workdir, baseline=True) as server:
            server.ingest_key = "unused-by-the-baseline"
            run_batched(server, batch_bodies(f"{label}-bwarm", 2000, args.batch), 2)
            found["base_batched"] = run_batched(server, base_bodies, args.connections)
            found["base_steady"] = run_steady(server, f"{label}-bs", args.rate, args.seconds)
            found["base_rss_mb"] = server.peak_rss_mb()
    batched, base = found["batched"], found.get("base_batched")
    figures.add(
        f"{label}: batched events/s ({args.batch}/request, {args.connections} connections)",
        f"{batched['events_per_s']:,.0f}",
        f"{base['events_per_s']:,.0f}" if base else "",
    )
    figures.add(
        f"{label}: batch request p50 / p99 (ms)",
        f"{batched['batch_p50_ms']:.0f} / {batched['batch_p99_ms']:.0f}",
        f"{base['batch_p50_ms']:.0f} / {base['batch_p99_ms']:.0f}" if base else "",
    )
    single, base_single = found["steady"], found.get("base_steady")
    figures.add(
        f"{label}: single events sent / achieved rate (/s)",
        f"{args.rate:.0f} / {single['rate']:.0f}",
        f"{args.rate:.0f} / {base_single['rate']:.0f}" if base_single else "",
    )
    figures.add(
        f"{label}: single event p50 / p99 / max (ms)",
        f"{single['p50_ms']:.1f} / {single['p99_ms']:.1f} / {single['max_ms']:.0f}",
        f"{base_single['p50_ms']:.1f} / {base_single['p99_ms']:.1f} / {base_single['max_ms']:.0f}"
        if base_single
        else "",
    )
    figures.add(
        f"{label}: server peak RSS (MiB)",
        f"{found['rss_mb']:.0f}",
        f"{found['base_rss_mb']:.0f}" if "base_rss_mb" in found else "",
    )
    return found


def measure_trait_lag(workdir: Path, args: argparse.Namespace) -> tuple[float | None, str, float]:
    """Trait lag on a default embedded deployment: ``rapport serve`` with its worker, on a
    fresh SQLite database (a loaded one would first have its whole log to process)."""
    with sqlite_database(workdir, "traits") as url:
        ingest_key, read_key = issue_keys(url)
        with serve(url, workdir) as server:
            server.ingest_key, server.read_key = ingest_key, read_key
            lag, note = run_trait_lag(server, 10, args.trait_wait)
            return lag, note, server.peak_rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events per backend")
    parser.add_argument("--baseline-events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--processes", type=int, default=2, help="rapport serve --processes (one per core)"
    )
    parser.add_argument("--rate", type=float, default=300, help="single events per second")
    parser.add_argument("--seconds", type=float, default=20, help="duration of the steady run")
    parser.add_argument("--trait-wait", type=float, default=30)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    add_database_url_option(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()),
    )
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:
        # Options given explicitly still win over the quick settings.
        parser.set_defaults(**QUICK)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.port)
        return

    figures = Figures()
    load = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as directory:
        workdir = Path(directory)

        def sqlite(name: str) -> Any:
            return sqlite_database(workdir, name)

        # The embedded worker runs the processors in the API process; on SQLite they take the
        # write lock back to back and starve ingestion, so throughput is measured without it
        # (as with PostgreSQL, where `rapport worker` runs apart). Trait lag is measured on a
        # default deployment, with the worker.
        processes = ["--processes", str(args.processes)]
        lite = measure_backend(
            "SQLite", sqlite, workdir, args, figures, serve_args=["--no-worker", *processes]
        )
        pg: dict[str, Any] | None = None
        pg_server: PostgresServer | None = None
        if not args.skip_postgres:
            with postgres_server(args.database_url) as pg_server:
                server_url = pg_server.url

                def postgres(name: str) -> Any:
                    return postgres_database(server_url, name)

                pg = measure_backend(
                    "PostgreSQL", postgres, workdir, args, figures, serve_args=processes
                )
        lag, note, lag_rss = measure_trait_lag(workdir, args)

    figures.add(
        "SQLite + embedded worker: trait lag, 10 events → traits.event_count (s)",
        f"{lag:.2f}" if lag is not None else f"null: {note}",
    )
    if pg_server:
        for measure, value in pg_server.table_rows():
            figures.add(measure, value, "" if args.skip_baseline else "same server")
    figures.add("machine load average (1 min) at the start", load)
    figures.print()
    rss = [lite["rss_mb"], lag_rss] + ([pg["rss_mb"]] if pg else [])
    print(
        json.dumps(
            {
                "sqlite_events_per_s": round(lite["batched"]["events_per_s"]),
                "postgres_events_per_s": round(pg["batched"]["events_per_s"]) if pg else None,
                "single_event_p99_ms": round(lite["steady"]["p99_ms"], 1),
                "trait_lag_s": round(lag, 2) if lag is not None else None,
                "peak_rss_mb": round(max(rss)),
            }
        )
    )


if __name__ == "__main__":
    main()
