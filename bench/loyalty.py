"""Loyalty ledger: earn and redeem commands through the HTTP API on PostgreSQL.

    .venv/bin/python bench/loyalty.py            # --quick: a smoke run in under a minute

Starts a throw-away PostgreSQL cluster with production durability (fsync and synchronous commit
on, bench/postgres.py; ``--database-url`` or RAPPORT_BENCH_POSTGRES_URL measures an existing
server instead) and creates a database on it, seeds 10,000 members with points through the
ledger, starts ``rapport serve --processes 2`` as a real subprocess on loopback, then runs 32
concurrent clients (one asyncio client, a keep-alive connection each) sending earn and redeem
commands, each with its own Idempotency-Key, to random members. After the run it checks the
ledger's invariants and that the points answered as applied add up to the balances. Prints a
Markdown table (with the server's settings), then one JSON line: ``{"commands_per_s", "p99_ms",
"invariant_violations"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import uvloop
from sqlalchemy import text

from rapport.customers import service as customers
from rapport.loyalty import service as loyalty
from rapport.platform import service as platform
from rapport.platform.db import open_session

# isort: split
# Started as a script, this folder is on sys.path: reuse the ingestion bench's database and
# server helpers and the benches' PostgreSQL server rather than keeping second copies.
from ingest import percentile, postgres_database, serve
from postgres import add_database_url_option, postgres_server

SEED_POINTS = 1_000
# --quick: the whole run on a few members for a few seconds.
QUICK = {"members": 300, "seconds": 5.0, "warmup": 1.0}


def seed_members(database_url: str, members: int) -> list[str]:
    """``members`` customers, each with SEED_POINTS points earned through the ledger."""
    with open_session(database_url) as db:
        customers.import_customers(
            db,
            customers=[
                customers.ImportedCustomer(
                    external_id=f"BENCH-{number:06d}",
                    email=f"member{number}@bench.example",
                    first_name="Bench",
                    last_name=f"Member {number}",
                    locale="en",
                    home_city=None,
                    home_latitude=None,
                    home_longitude=None,
                    consents={},
                )
                for number in range(members)
            ],
        )
        ids = sorted(
            customers.customer_ids_by_external_id(
                db, external_ids=[f"BENCH-{number:06d}" for number in range(members)]
            ).values()
        )
        for customer_id in ids:
            loyalty.earn(db, customer_id=customer_id, points=SEED_POINTS, reason="Welcome")
    return ids


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    earned: int = 0
    redeemed: int = 0
    failures: list[str] = field(default_factory=list)


def run_clients(
    base_url: str, secret: str, member_ids: list[str], clients: int, seconds: float, run: str
) -> tuple[Tally, float]:
    """``clients`` concurrent clients, each on one keep-alive connection, sending earn or
    redeem commands (half each) to random members until ``seconds`` have passed. One asyncio
    client writing raw HTTP/1.1: 32 Python threads would spend more CPU fighting over the GIL
    than the server spends on the commands, and the figures would measure the client."""
    parts = urlsplit(base_url)
    tally = Tally()

    async def client(number: int, stop_at: float) -> None:
        rng = random.Random(f"{run}-{number}")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        loop = asyncio.get_running_loop()
        sequence = 0
        while loop.time() < stop_at:
            sequence += 1
            member = rng.choice(member_ids)
            points = rng.randint(1, 50)
            verb = "earn" if rng.random() < 0.5 else "redeem"
            body: dict[str, object] = {"points": points, "reason": f"bench {verb}"}
            if verb == "earn":
                body["order_id"] = f"B-{run}-{number}-{sequence}"
            raw = orjson.dumps(body)
            request = (
                f"POST /v1/loyalty/members/{member}/{verb} HTTP/1.1\r\n"
                f"Host: {parts.hostname}\r\nAuthorization: Bearer {secret}\r\n"
                f"Content-Type: application/json\r\nIdempotency-Key: {run}-{number}-{sequence}"
                f"\r\nContent-Length: {len(raw)}\r\n\r\n"
            ).encode() + raw
            sent = loop.time()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            payload = await reader.readexactly(length)
            status = int(head.split(b" ", 2)[1])
            tally.latencies.append(loop.time() - sent)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            if status == 201:
                answered = orjson.loads(payload)
                if verb == "earn":
                    tally.earned += points
                else:
                    tally.redeemed += -answered["points"]
            elif status != 409:
                tally.failures.append(f"{status}: {payload[:200]!r}")
        writer.close()

    async def all_clients() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.gather(*(client(n, began + seconds) for n in range(clients)))
        return loop.time() - began

    elapsed = uvloop.run(all_clients())
    return tally, elapsed


def check_ledger(database_url: str, members: int, tally: Tally) -> list[str]:
    """The ledger's own invariants, plus: the points the API answered as applied are
    exactly what the balances moved by."""
    with open_session(database_url) as db:
        violations = loyalty.invariant_violations(db)
        # The table, not its model class: the bench measures older revisions too, whose
        # modules are laid out differently (bench/before_after.py).
        total = db.scalar(
            text("SELECT coalesce(sum(balance), 0) FROM loyalty_accounts WHERE kind = 'member'")
        )
        expected = members * SEED_POINTS + tally.earned - tally.redeemed
        if total != expected:
            violations.append(f"balances add up to {total}, the answers to {expected}")
        return violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--processes", type=int, default=2, help="rapport serve --processes (one per core)"
    )
    add_database_url_option(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: " + ", ".join(f"--{key} {value}" for key, value in QUICK.items()),
    )
    if "--quick" in sys.argv[1:]:
        # Options given explicitly still win over the quick settings.
        parser.set_defaults(**QUICK)
    args = parser.parse_args()

    load_at_start = Path("/proc/loadavg").read_text().split()[0]
    with (
        tempfile.TemporaryDirectory(prefix="rapport-bench-") as directory,
        postgres_server(args.database_url) as pg_server,
        postgres_database(pg_server.url, "loyalty") as url,
    ):
        seeding = time.perf_counter()
        member_ids = seed_members(url, args.members)
        seeded_s = time.perf_counter() - seeding
        with open_session(url) as db:
            secret = platform.create_api_key(
                db, name="bench loyalty", scopes=[platform.Scope.WRITE]
            ).secret
        processes = ["--processes", str(args.processes)]
        with serve(url, Path(directory), extra=processes) as server:
            warm, _ = run_clients(server.base_url, secret, member_ids, 4, args.warmup, "warm")
            tally, elapsed = run_clients(
                server.base_url, secret, member_ids, args.clients, args.seconds, "run"
            )
            peak_rss = server.peak_rss_mb()
        warm_tally = warm
        tally.earned += warm_tally.earned
        tally.redeemed += warm_tally.redeemed
        violations = check_ledger(url, args.members, tally)
    load_at_end = Path("/proc/loadavg").read_text().split()[0]

    if tally.failures:
        print(f"failures: {len(tally.failures)}, first: {tally.failures[0]}")
    commands = len(tally.latencies)
    rate = commands / elapsed
    p50, p99 = percentile(tally.latencies, 0.50) * 1000, percentile(tally.latencies, 0.99) * 1000
    slowest = max(tally.latencies) * 1000
    rows = [
        ("members seeded (1,000 points each, through the ledger)", f"{args.members:,}"),
        ("seeding time (s)", f"{seeded_s:.1f}"),
        ("clients / duration (s)", f"{args.clients} / {args.seconds:.0f}"),
        ("commands answered", f"{commands:,}"),
        ("commands/s (earn + redeem, HTTP)", f"{rate:,.0f}"),
        (
            "latency p50 / p99 / max (ms)",
            f"{p50:.1f} / {p99:.1f} / {slowest:.0f}",
        ),
        (
            "answers",
            ", ".join(f"{code}: {count:,}" for code, count in sorted(tally.statuses.items())),
        ),
        ("points earned / redeemed", f"{tally.earned:,} / {tally.redeemed:,}"),
        ("invariant violations after the run", str(len(violations))),
        ("server peak RSS (MiB)", f"{peak_rss:.0f}"),
        *pg_server.table_rows(),
        ("machine load average (1 min) at start / end", f"{load_at_start} / {load_at_end}"),
    ]
    print("| measure | PostgreSQL |")
    print("| --- | ---: |")
    for measure, value in rows:
        print(f"| {measure} | {value} |")
    for violation in violations[:10]:
        print(f"violation: {violation}")
    print(
        json.dumps(
            {
                "commands_per_s": round(rate),
                "p99_ms": round(p99, 1),
                "invariant_violations": len(violations) + len(tally.failures),
            }
        )
    )


if __name__ == "__main__":
    main()
