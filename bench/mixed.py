"""Ledger commands under tracking ingestion, on SQLite: do earn and redeem keep their place
while events pour in?

    .venv/bin/python bench/mixed.py            # --rate 1500 --command-rate 20 --seconds 60

For each of two deployments, migrates a fresh SQLite file in a temporary directory, seeds
members with points through the ledger, makes an ingest key and a write key, and starts
``rapport serve --processes 2`` as a real subprocess on loopback:

- API processes with the job worker apart (``--no-worker``, as bench/ingest.py measures
  ingestion): the headline figures;
- the same with the embedded job worker, so the event processors write the same file from
  one of the API processes (``*_embedded_worker`` keys; ``--only-apart`` skips it).

Two open-loop streams then run side by side for ``--seconds``, each request sent at its
scheduled time by one asyncio client writing raw HTTP/1.1, latency counted from that time (a
request queued in the client counts):

- tracking at ``--rate`` events/s: ``--single-share`` of them (10%) as single events
  (``POST /v1/events``, what a browser or app sends), the rest as Segment batches of
  ``--batch`` messages (``POST /v1/batch`` with the key as basic-auth user, what Segment's
  server libraries send);
- ledger commands at ``--command-rate``/s: earn or redeem (half each, 1-50 points, a fresh
  ``Idempotency-Key`` each) for random members, as tills and the web shop post them.

After each run the ledger's invariants are checked. Prints a Markdown table, then one JSON
line: ``{"ingest_events_per_s", "command_p99_ms", ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import uvloop

# Started as a script, this folder is on sys.path: the other benches' helpers.
from ingest import exchange, make_event, percentile, serve, sqlite_database

from loyalty import seed_members
from rapport.loyalty import service as loyalty
from rapport.platform import service as platform
from rapport.platform.db import open_session


@dataclass(slots=True)
class Planned:
    due: float  # seconds after the start
    raw: bytes
    events: int  # tracking events carried (0 for a command)
    verb: str  # "event", "batch", "earn" or "redeem"


@dataclass
class Stream:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    unanswered: int = 0


def tracking_plan(
    key: str, *, rate: float, seconds: float, single_share: float, batch: int, run: str
) -> list[Planned]:
    """Single events and Segment batches adding up to ``rate`` events/s, evenly spaced."""
    rng = random.Random(f"tracking-{run}")
    now = datetime.now(UTC)
    plan: list[Planned] = []
    single_rate = rate * single_share
    bearer = f"Authorization: Bearer {key}\r\n"
    for number in range(int(single_rate * seconds)):
        body = orjson.dumps(make_event(f"{run}-s", number, rng, now))
        raw = _request("/v1/events", bearer, body)
        plan.append(Planned(number / single_rate, raw, 1, "event"))
    batch_rate = rate * (1 - single_share) / batch
    basic = "Authorization: Basic " + base64.b64encode(f"{key}:".encode()).decode() + "\r\n"
    for number in range(int(batch_rate * seconds)):
        messages = [
            _segment_message(f"{run}-b{number}-{index}", rng, now) for index in range(batch)
        ]
        body = orjson.dumps({"batch": messages, "sentAt": now.isoformat()})
        # Offset by half a step so the two kinds do not arrive in lockstep.
        plan.append(
            Planned((number + 0.5) / batch_rate, _request("/v1/batch", basic, body), batch, "batch")
        )
    return sorted(plan, key=lambda planned: planned.due)


def _segment_message(message_id: str, rng: random.Random, now: datetime) -> dict[str, object]:
    event = make_event("unused", 0, rng, now)
    message: dict[str, object] = {
        "type": "track",
        "event": rng.choice(("Product Viewed", "Product Added", "Products Searched")),
        "messageId": message_id,
        "anonymousId": event["anonymous_id"],
        "timestamp": event["occurred_at"],
        "properties": event["properties"],
        "context": {"page": event["context"]["page"], "ip": event["context"]["ip"]},
    }
    if event["customer_id"] is not None:
        message["userId"] = event["customer_id"]
    return message


def command_plan(
    key: str, members: list[str], *, rate: float, seconds: float, run: str
) -> list[Planned]:
    """Earn or redeem, half each, for random members, evenly spaced at ``rate``/s."""
    rng = random.Random(f"commands-{run}")
    bearer = f"Authorization: Bearer {key}\r\n"
    plan = []
    for number in range(int(rate * seconds)):
        verb = "earn" if rng.random() < 0.5 else "redeem"
        body: dict[str, object] = {"points": rng.randint(1, 50), "reason": f"bench {verb}"}
        if verb == "earn":
            body["order_id"] = f"M-{run}-{number}"
        headers = f"{bearer}Idempotency-Key: {run}-{number}\r\n"
        path = f"/v1/loyalty/members/{rng.choice(members)}/{verb}"
        plan.append(Planned(number / rate, _request(path, headers, orjson.dumps(body)), 0, verb))
    return plan


def _request(path: str, headers: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def send_on_schedule(
    port: int, plan: list[Planned], start: float, stream: Stream, connections: int, drain: float
) -> None:
    """Send each request at ``start + due`` on the first free of ``connections`` keep-alive
    connections (open loop). Requests still unanswered ``drain`` seconds after the last one
    was due count as unanswered, with the time they had waited by then as their latency."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Planned | None] = asyncio.Queue()
    in_flight: dict[int, Planned] = {}

    async def connection(number: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (planned := await queue.get()) is not None:
            in_flight[number] = planned
            status, body = await exchange(reader, writer, planned.raw)
            del in_flight[number]
            stream.latencies.append(loop.time() - (start + planned.due))
            stream.statuses[status] = stream.statuses.get(status, 0) + 1
            if planned.verb == "event" and status == 201:
                stream.accepted += 1
            elif planned.verb == "batch" and status == 200:
                stream.accepted += int(orjson.loads(body)["accepted"])
            elif status not in (200, 201, 409):  # 409: not enough points, an honest refusal
                stream.failures.append(f"{planned.verb} {status}: {body[:200]!r}")
        writer.close()

    workers = [asyncio.create_task(connection(number)) for number in range(connections)]
    for planned in plan:
        if (delay := start + planned.due - loop.time()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(planned)
    for _ in workers:
        queue.put_nowait(None)
    deadline = start + (plan[-1].due if plan else 0) + drain
    _, late = await asyncio.wait(workers, timeout=max(0.0, deadline - loop.time()))
    if late:
        cut_off = loop.time()
        waiting = [*in_flight.values()]
        while not queue.empty():
            if (queued := queue.get_nowait()) is not None:
                waiting.append(queued)
        for task in late:
            task.cancel()
        for planned in waiting:
            stream.latencies.append(cut_off - (start + planned.due))
        stream.unanswered = len(waiting)


def run_mixed(
    port: int, tracking: list[Planned], commands: list[Planned], drain: float
) -> tuple[Stream, Stream, float]:
    """Both plans at once; (tracking, commands, seconds from the start to the last answer)."""
    # A paused client would count its own garbage collections against the server.
    gc.collect()
    gc.freeze()

    async def both() -> tuple[Stream, Stream, float]:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5
        ingested, commanded = Stream(), Stream()
        await asyncio.gather(
            send_on_schedule(port, tracking, start, ingested, 32, drain),
            send_on_schedule(port, commands, start, commanded, 32, drain),
        )
        return ingested, commanded, loop.time() - start

    return uvloop.run(both())


def make_keys(database_url: str) -> tuple[str, str]:
    with open_session(database_url) as db:
        ingest = platform.create_api_key(db, name="bench ingest", scopes=[platform.Scope.INGEST])
        write = platform.create_api_key(db, name="bench write", scopes=[platform.Scope.WRITE])
        return ingest.secret, write.secret


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def rows(
    args: argparse.Namespace, ingested: Stream, commanded: Stream, elapsed: float
) -> Iterator[tuple[str, str]]:
    events_per_s = ingested.accepted / elapsed
    ms = [value * 1000 for value in commanded.latencies]
    tracking_ms = [value * 1000 for value in ingested.latencies]
    yield (
        "tracking sent (events/s; single share, batch size)",
        (f"{args.rate:,.0f} ({args.single_share:.0%} single, batches of {args.batch})"),
    )
    yield "tracking events accepted per second", f"{events_per_s:,.0f}"
    yield (
        "tracking request p50 / p99 / max (ms)",
        (
            f"{percentile(tracking_ms, 0.5):.1f} / {percentile(tracking_ms, 0.99):.1f} / "
            f"{max(tracking_ms):.0f}"
        ),
    )
    yield (
        "commands sent / answered per second",
        (f"{args.command_rate:.0f} / {len(ms) / elapsed:.1f}"),
    )
    yield (
        "command p50 / p99 / max (ms)",
        (f"{percentile(ms, 0.5):.1f} / {percentile(ms, 0.99):.1f} / {max(ms):.0f}"),
    )
    for name, stream in (("tracking", ingested), ("command", commanded)):
        answers = ", ".join(f"{code}: {count:,}" for code, count in sorted(stream.statuses.items()))
        if stream.unanswered:
            answers += f", unanswered after the drain: {stream.unanswered:,}"
        yield f"{name} answers", answers


DEPLOYMENTS: tuple[tuple[str, str, list[str]], ...] = (
    # (label, JSON key suffix, extra `rapport serve` arguments)
    ("API processes, job worker apart", "", ["--no-worker"]),
    ("API processes + embedded job worker", "_embedded_worker", []),
)


@dataclass
class Measured:
    label: str
    suffix: str
    ingested: Stream
    commanded: Stream
    elapsed: float
    peak_rss: float
    violations: int


def measure(
    args: argparse.Namespace, workdir: Path, label: str, suffix: str, extra: list[str]
) -> Measured:
    """One deployment on a fresh SQLite file: warm up, then both streams for ``--seconds``."""
    with sqlite_database(workdir, f"mixed{suffix}") as url:
        members = seed_members(url, args.members)
        ingest_key, write_key = make_keys(url)
        with serve(url, workdir, extra=["--processes", str(args.processes), *extra]) as server:
            port = int(server.base_url.rsplit(":", 1)[1])

            def plans(seconds: float, run: str) -> tuple[list[Planned], list[Planned]]:
                tracking = tracking_plan(
                    ingest_key,
                    rate=args.rate,
                    seconds=seconds,
                    single_share=args.single_share,
                    batch=args.batch,
                    run=run,
                )
                commands = command_plan(
                    write_key, members, rate=args.command_rate, seconds=seconds, run=run
                )
                return tracking, commands

            if args.warmup > 0:
                run_mixed(port, *plans(args.warmup, "warm"), args.drain)
            tracking, commands = plans(args.seconds, "run")
            ingested, commanded, elapsed = run_mixed(port, tracking, commands, args.drain)
            peak_rss = server.peak_rss_mb()
        with open_session(url) as db:
            violations = len(loyalty.invariant_violations(db))
    return Measured(label, suffix, ingested, commanded, elapsed, peak_rss, violations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1500, help="tracking events per second")
    parser.add_argument("--single-share", type=float, default=0.1, help="share sent one by one")
    parser.add_argument("--batch", type=int, default=20, help="messages per Segment batch")
    parser.add_argument("--command-rate", type=float, default=20, help="commands per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--drain", type=float, default=30, help="seconds to wait for answers after the last send"
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="rapport serve --processes")
    parser.add_argument(
        "--only-apart", action="store_true", help="skip the embedded-worker deployment"
    )
    args = parser.parse_args()

    load_at_start = load_average()
    deployments = DEPLOYMENTS[:1] if args.only_apart else DEPLOYMENTS
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as directory:
        results = [
            measure(args, Path(directory), label, suffix, extra)
            for label, suffix, extra in deployments
        ]
    load_at_end = load_average()

    tables = {
        result.label: dict(rows(args, result.ingested, result.commanded, result.elapsed))
        for result in results
    }
    for result in results:
        tables[result.label]["ledger invariant violations after the run"] = str(result.violations)
        tables[result.label]["server peak RSS (MiB)"] = f"{result.peak_rss:.0f}"
    header = " | ".join(result.label for result in results)
    print(f"| measure ({args.seconds:.0f} s each, SQLite, {args.processes} processes) | {header} |")
    print("| --- |" + " ---: |" * len(results))
    for measure_name in tables[results[0].label]:
        values = " | ".join(tables[result.label][measure_name] for result in results)
        print(f"| {measure_name} | {values} |")
    print(f"| machine load average (1 min) at start / end | {load_at_start} / {load_at_end} |")
    figures: dict[str, float | int] = {}
    for result in results:
        for failure in (result.ingested.failures + result.commanded.failures)[:5]:
            print(f"failure ({result.label}): {failure}")
        command_ms = [value * 1000 for value in result.commanded.latencies]
        tracking_ms = [value * 1000 for value in result.ingested.latencies]
        s = result.suffix
        figures |= {
            f"ingest_events_per_s{s}": round(result.ingested.accepted / result.elapsed),
            f"command_p99_ms{s}": round(percentile(command_ms, 0.99), 1),
            f"command_p50_ms{s}": round(percentile(command_ms, 0.5), 1),
            f"commands_per_s{s}": round(len(command_ms) / result.elapsed, 1),
            f"tracking_p99_ms{s}": round(percentile(tracking_ms, 0.99), 1),
            f"failures{s}": len(result.ingested.failures) + len(result.commanded.failures),
            f"unanswered{s}": result.ingested.unanswered + result.commanded.unanswered,
            f"invariant_violations{s}": result.violations,
        }
    figures["load_average"] = float(load_at_start)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
