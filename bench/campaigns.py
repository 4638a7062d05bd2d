"""Campaigns on a demo retailer of a million customers on PostgreSQL: segment evaluation,
email and webhook delivery rates, a worker killed mid-send, and a naive loop for the ratio.

    .venv/bin/python bench/campaigns.py            # --quick: a smoke run in about two minutes

Starts everything it needs: a throw-away PostgreSQL cluster with production durability (fsync
and synchronous commit on, bench/postgres.py; ``--database-url`` or RAPPORT_BENCH_POSTGRES_URL
measures an existing server instead) with a migrated database, filled inside PostgreSQL by
bench/campaign_data.py (customers, consents, orders with categories, traits with locations,
loyalty balances; seeded); an SMTP sink and a signed-webhook receiver, each a separate
process (bench/campaign_sinks.py), first measured alone; and the dispatcher as separate worker
processes (this script with ``--dispatcher``: a loop over
``rapport.campaigns.delivery.sending.dispatch_due``).

1. **Segment**: a three-condition segment (marketing email consent, bought from
   Home/Woodworking in the last 90 days, which selects only customers who granted
   personalization, within 50 km of central London by last known location or home, either
   only with location consent), counted with a sample by ``preview_segment``, three times
   (``segment_s``: the median; the first, on a cold cache, is shown too), and checked against
   plain SQL.
2. **Email**: a campaign to ``--emails`` customers with email consent, queued with
   ``queue_deliveries`` while the dispatchers wait, then sent to the SMTP sink. ``emails_per_s``
   = messages sent / seconds from the queue's commit until no delivery is left queued or
   sending. Every message is checked against the sink (one per delivery, none missing).
3. **Webhooks**: the same through a webhook endpoint to the receiver (``webhooks_per_s``); every
   request's HMAC signature is checked by the receiver.
4. **Crash**: an email campaign and a webhook campaign of ``--crash`` deliveries each; the
   dispatcher is killed with SIGKILL once 40% were received, then a new one is started. The
   claims of the dead one expire after the dispatcher's lease: in this test only it is
   shortened to ``--lease-seconds`` (20 s) with batches of ``--crash-batch`` (100) deliveries,
   so that the test does not wait the production lease. ``duplicates``: messages received
   more than once for the same delivery (webhooks are at least once by design, a receiver
   drops repeats by ``Rapport-Delivery-Id``: counted all the same); ``lost``: deliveries the
   database calls sent, or never finished, whose message never arrived; both summed over every
   run of the bench.
5. **Naive**: ``--naive`` customers one at a time (bench/campaign_naive.py: one query, render,
   a fresh SMTP session or HTTP connection, a commit each), for each channel.

Prints a Markdown table, then one JSON line: ``{"segment_s", "emails_per_s", "webhooks_per_s",
"duplicates", "lost", "naive_emails_per_s", "naive_webhooks_per_s", "customers"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from rapport.platform.db import open_session

# isort: split
# Started as a script, this folder is on sys.path: the benches' PostgreSQL server and database,
# and the campaigns bench's data, receivers and naive loop.
from campaign_data import generate_retailer
from campaign_naive import NaiveRun, naive_emails, naive_webhooks
from campaign_sinks import (
    Receiver,
    measure_smtp_sink,
    measure_webhook_receiver,
    smtp_sink,
    webhook_receiver,
)
from ingest import postgres_database
from postgres import add_database_url_option, postgres_server

# --quick: every part on little data.
QUICK: dict[str, Any] = {
    "customers": 20_000,
    "emails": 2_000,
    "webhooks": 2_000,
    "crash": 1_000,
    "naive": 300,
    "sink_check": 4_000,
}
SEGMENT: dict[str, Any] = {
    "match": "all",
    "conditions": [
        {"kind": "consent", "purpose": "marketing_email"},
        {"kind": "bought_category", "category": "Home/Woodworking", "days": 90},
        {
            "kind": "near",
            "latitude": 51.5074,
            "longitude": -0.1278,
            "radius_km": 50,
            "use": ["last_location", "home"],
        },
    ],
}
SUBJECT = "{{ first_name }}, the spring woodworking workshop"
EMAIL_BODY = (
    "<p>Hello {{ first_name }},</p>\n"
    "<p>Our spring woodworking workshop opens its doors on Saturday: bring your own project or "
    "start one with us. Members get a free starter kit.</p>\n"
    "<p>You have <strong>{{ points }}</strong> points to spend on tools and timber.</p>\n"
    "<p>See you there,<br>Larder &amp; Loom</p>\n"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n'
)
WEBHOOK_BODY = "{{ first_name }}, our woodworking workshop opens Saturday. {{ points }} points."
WEBHOOK_PURPOSE = "marketing_push"
SMTP_FROM = "Larder & Loom <campaigns@bench.example>"
READY_TIMEOUT_S = 120
# The crash test's lease: long enough for one crash-test batch, short enough not to make the
# test wait the production lease (minutes) for the dead dispatcher's claims.
CRASH_LEASE_S = 20.0
POLL_S = 0.2
UNFINISHED = ("queued", "sending")


# --- the dispatcher process ----------------------------------------------------------------


def run_dispatcher(database_url: str, *, batch: int, lease_seconds: float | None) -> None:
    """``--dispatcher``: send due deliveries until killed (SIGTERM: after the current batch)."""
    from rapport.campaigns.delivery import sending

    if lease_seconds:
        # The lease is how long a dead worker's claims wait before another worker takes them;
        # shortened here only, so that the crash test does not wait the production default.
        sending.LEASE = timedelta(seconds=lease_seconds)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    worker = sending.worker_name()
    print("dispatcher ready", flush=True)
    while not stopping:
        if sending.dispatch_due(limit=batch, worker=worker, database_url=database_url) == 0:
            time.sleep(0.05)


@dataclass
class Dispatchers:
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)


def start_dispatcher(
    database_url: str,
    workdir: Path,
    *,
    smtp_port: int,
    batch: int,
    lease_seconds: float | None,
    number: int,
) -> tuple[subprocess.Popen[bytes], Path]:
    env = {
        **os.environ,
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_SECRET_KEY": "bench-campaigns-secret-key-0123456789",
        "RAPPORT_DATA_DIR": str(workdir),
        "RAPPORT_SMTP_HOST": "127.0.0.1",
        "RAPPORT_SMTP_PORT": str(smtp_port),
        "RAPPORT_SMTP_FROM": SMTP_FROM,
        "RAPPORT_PUBLIC_BASE_URL": "https://shop.example",
        # the signed-webhook receiver listens on loopback, which webhooks refuse unless allowed
        "RAPPORT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PYTHONPATH": os.pathsep.join(
            part for part in (os.environ.get("PYTHONPATH"), str(Path(__file__).parent)) if part
        ),
    }
    command = [sys.executable, __file__, "--dispatcher", "--database-url", database_url]
    command += ["--batch", str(batch)]
    if lease_seconds:
        command += ["--lease-seconds", str(lease_seconds)]
    log = workdir / f"dispatcher-{number}-{time.monotonic_ns()}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "dispatcher ready" not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise SystemExit(f"the dispatcher exited: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the dispatcher was not ready within {READY_TIMEOUT_S} s")
        time.sleep(0.05)
    return process, log


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dispatchers(
    database_url: str,
    workdir: Path,
    *,
    count: int,
    smtp_port: int,
    batch: int,
    lease_seconds: float | None = None,
) -> Iterator[Dispatchers]:
    running = Dispatchers()
    try:
        for number in range(count):
            process, log = start_dispatcher(
                database_url,
                workdir,
                smtp_port=smtp_port,
                batch=batch,
                lease_seconds=lease_seconds,
                number=number,
            )
            running.processes.append(process)
            running.logs.append(log)
        yield running
    finally:
        for process in running.processes:
            stop_process(process)


# --- campaigns and their deliveries --------------------------------------------------------


def make_campaign(
    database_url: str, *, name: str, channel: str, endpoint_id: int | None = None
) -> int:
    """A one-off marketing campaign with its template (planning's editing functions), marked
    sending as a launch would."""
    from rapport.campaigns import service as campaigns
    from rapport.campaigns.models import Campaign

    with open_session(database_url) as db:
        campaign = campaigns.create_campaign(
            db,
            settings=campaigns.CampaignSettings(
                name=name, kind="one_off", channel=channel, webhook_endpoint_id=endpoint_id
            ),
            created_by="bench",
        )
        body = EMAIL_BODY if channel == "email" else WEBHOOK_BODY
        campaigns.set_template(
            db, campaign_id=campaign.id, channel=channel, locale="en", subject=SUBJECT, body=body
        )
        row = db.get(Campaign, campaign.id)
        assert row is not None
        row.status = "sending"
        db.commit()
        return int(campaign.id)


def make_endpoint(database_url: str, *, name: str, url: str, secret: str) -> int:
    from rapport.campaigns.models import WebhookEndpoint
    from rapport.platform import clock

    with open_session(database_url) as db:
        endpoint = WebhookEndpoint(
            name=name,
            url=url,
            secret=secret,
            consent_purpose=WEBHOOK_PURPOSE,
            max_attempts=6,
            active=True,
            created_at=clock.now(),
        )
        db.add(endpoint)
        db.commit()
        return int(endpoint.id)


def no_quiet_hours(database_url: str) -> None:
    """Quiet hours off, so that the figures do not depend on the time of day the bench runs
    (the frequency cap stays at its default; each phase sends to other customers)."""
    from rapport.campaigns.delivery.policy import update_sending_policy

    with open_session(database_url) as db:
        for channel in ("email", "webhook"):
            update_sending_policy(db, channel=channel, changes={"quiet_start": 0, "quiet_end": 0})


class Audience:
    """Customers with a consent granted, handed out in customer-id order without overlap, so
    that no phase's customers reach another phase's frequency cap."""

    def __init__(self, database_url: str, purpose: str) -> None:
        self.database_url = database_url
        self.purpose = purpose
        self.after = ""

    def take(self, count: int) -> list[str]:
        with open_session(self.database_url) as db:
            ids = list(
                db.scalars(
                    text(
                        "SELECT c.customer_id FROM customers c JOIN consents s "
                        "ON s.customer_id = c.customer_id AND s.purpose = :purpose "
                        "AND s.granted WHERE c.status = 'active' AND c.customer_id > :after "
                        "ORDER BY c.customer_id LIMIT :count"
                    ),
                    {"purpose": self.purpose, "after": self.after, "count": count},
                )
            )
        if len(ids) < count:
            raise SystemExit(f"only {len(ids)} more customers granted {self.purpose}")
        self.after = ids[-1]
        return ids


def queue(database_url: str, campaign_id: int, customer_ids: Sequence[str]) -> float:
    """Queue one delivery per customer with ``queue_deliveries``, commit; seconds taken."""
    from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
    from rapport.campaigns.models import Campaign

    began = time.perf_counter()
    with open_session(database_url) as db:
        campaign = db.get(Campaign, campaign_id)
        assert campaign is not None
        added = queue_deliveries(
            db, campaign=campaign, recipients=(Recipient(customer_id=c) for c in customer_ids)
        )
        db.commit()
    if added != len(customer_ids):
        raise SystemExit(f"queued {added} deliveries for {len(customer_ids)} customers")
    return time.perf_counter() - began


def statuses(database_url: str, campaign_id: int) -> Counter[str]:
    with open_session(database_url) as db:
        rows = db.execute(
            text(
                "SELECT status, count(*) FROM campaign_deliveries WHERE campaign_id = :id "
                "GROUP BY status"
            ),
            {"id": campaign_id},
        ).all()
    return Counter({status: int(count) for status, count in rows})


def wait_until_done(
    database_url: str, campaign_id: int, *, timeout: float, processes: Sequence[Any] = ()
) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        counts = statuses(database_url, campaign_id)
        if not any(counts[status] for status in UNFINISHED):
            return counts
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"a dispatcher exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"campaign {campaign_id} not done after {timeout:.0f} s: {counts}")
        time.sleep(POLL_S)


def sent_ids(database_url: str, campaign_id: int) -> set[str]:
    with open_session(database_url) as db:
        return {
            str(value)
            for value in db.scalars(
                text(
                    "SELECT id FROM campaign_deliveries WHERE campaign_id = :id AND status = 'sent'"
                ),
                {"id": campaign_id},
            )
        }


def received_ids(receiver: Receiver, expected: int) -> list[str]:
    """Delivery ids of what the receiver got (waiting for its last flush)."""
    deadline = time.monotonic() + 5
    while receiver.received() < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    ids = []
    for record in receiver.records():
        if receiver.kind == "smtp":
            # Message-ID: <delivery-{id}@domain>
            message_id = record[0]
            ids.append(message_id.split("delivery-", 1)[-1].split("@", 1)[0])
        else:
            ids.append(record[0])
    return ids


@dataclass
class Delivered:
    """One phase's outcome, checked against what the receiver got."""

    queued: int
    queue_s: float
    seconds: float
    statuses: Counter[str]
    received: int
    duplicates: int
    lost: int  # sent or still unfinished per the database, but never received
    bad_signatures: int = 0
    receiver_cpu_s: float = 0.0  # CPU the receiving process used meanwhile

    @property
    def sent(self) -> int:
        return self.statuses["sent"]

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def check_received(
    database_url: str, campaign_id: int, receiver: Receiver, queued: int
) -> tuple[int, int, int, Counter[str]]:
    """(received, duplicates, lost, statuses): duplicates are messages beyond the first per
    delivery; lost are deliveries the database calls sent (or that never finished) whose
    message the receiver never got."""
    counts = statuses(database_url, campaign_id)
    sent = sent_ids(database_url, campaign_id)
    got = Counter(received_ids(receiver, len(sent)))
    duplicates = sum(count - 1 for count in got.values() if count > 1)
    lost = len(sent - got.keys()) + sum(counts[status] for status in UNFINISHED)
    return sum(got.values()), duplicates, lost, counts


def deliver(
    database_url: str,
    workdir: Path,
    *,
    campaign_id: int,
    customer_ids: Sequence[str],
    receiver: Receiver,
    smtp_port: int,
    workers: int,
    batch: int,
) -> Delivered:
    """Queue the campaign while the dispatchers wait, then time them until it is done."""
    with dispatchers(
        database_url, workdir, count=workers, smtp_port=smtp_port, batch=batch
    ) as running:
        queue_s = queue(database_url, campaign_id, customer_ids)
        receiver_cpu = receiver.cpu_seconds()
        began = time.perf_counter()
        wait_until_done(
            database_url,
            campaign_id,
            timeout=max(600.0, len(customer_ids) / 20),
            processes=running.processes,
        )
        seconds = time.perf_counter() - began
        receiver_cpu = receiver.cpu_seconds() - receiver_cpu
    received, duplicates, lost, counts = check_received(
        database_url, campaign_id, receiver, len(customer_ids)
    )
    bad = sum(1 for record in receiver.records() if len(record) > 2 and record[2] == "0")
    return Delivered(
        queued=len(customer_ids),
        queue_s=queue_s,
        seconds=seconds,
        statuses=counts,
        received=received,
        duplicates=duplicates,
        lost=lost,
        bad_signatures=bad if receiver.kind == "webhook" else 0,
        receiver_cpu_s=receiver_cpu,
    )


@dataclass
class Crash:
    queued: int
    killed_after: int  # messages received when the dispatcher was killed
    seconds: float
    statuses: Counter[str]
    received: int
    duplicates: int
    lost: int


def crash_and_restart(
    database_url: str,
    workdir: Path,
    *,
    campaign_id: int,
    customer_ids: Sequence[str],
    receiver: Receiver,
    smtp_port: int,
    batch: int,
    lease_seconds: float,
) -> Crash:
    """Kill the dispatcher (SIGKILL) once 40% of the messages arrived; start a new one."""
    began = time.perf_counter()
    kill_at = max(1, int(len(customer_ids) * 0.4))
    process, _ = start_dispatcher(
        database_url,
        workdir,
        smtp_port=smtp_port,
        batch=batch,
        lease_seconds=lease_seconds,
        number=0,
    )
    try:
        queue(database_url, campaign_id, customer_ids)
        deadline = time.monotonic() + 600
        while receiver.received() < kill_at:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the dispatcher stopped before the kill")
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.2)
    killed_after = receiver.received()
    with dispatchers(
        database_url,
        workdir,
        count=1,
        smtp_port=smtp_port,
        batch=batch,
        lease_seconds=lease_seconds,
    ) as running:
        wait_until_done(
            database_url,
            campaign_id,
            timeout=600 + lease_seconds,
            processes=running.processes,
        )
    seconds = time.perf_counter() - began
    received, duplicates, lost, counts = check_received(
        database_url, campaign_id, receiver, len(customer_ids)
    )
    return Crash(
        queued=len(customer_ids),
        killed_after=killed_after,
        seconds=seconds,
        statuses=counts,
        received=received,
        duplicates=duplicates,
        lost=lost,
    )


# --- segment ---------------------------------------------------------------------------------


def evaluate_segment(database_url: str, rounds: int = 3) -> tuple[list[float], int]:
    """Seconds of each ``preview_segment`` (count and a sample of 10) and the count."""
    try:
        from rapport.campaigns.segments.conditions import parse_definition
        from rapport.campaigns.segments.evaluation import preview_segment
    except ImportError as error:  # a revision before segments (bench/before_after.py)
        print(f"no segment evaluation: {error}", file=sys.stderr)
        return [float("nan")] * rounds, -1

    definition = parse_definition(SEGMENT)
    times: list[float] = []
    count = 0
    for _ in range(rounds):
        with open_session(database_url) as db:
            began = time.perf_counter()
            preview = preview_segment(db, definition, sample=10)
            times.append(time.perf_counter() - began)
            count = preview.count
    return times, count


def segment_check(database_url: str) -> int:
    """The same segment counted by a plain SQL query written here, to check the count."""
    with open_session(database_url) as db:
        return int(
            db.scalar(
                text(
                    "SELECT count(DISTINCT c.customer_id) FROM customers c "
                    "JOIN consents s ON s.customer_id = c.customer_id "
                    "AND s.purpose = 'marketing_email' AND s.granted "
                    # bought_category is a behavioural condition: only customers who granted
                    # personalization are selected by it
                    "JOIN consents p ON p.customer_id = c.customer_id "
                    "AND p.purpose = 'personalization' AND p.granted "
                    "JOIN orders o ON o.customer_id = c.customer_id "
                    "AND o.placed_at >= now() - interval '90 days' "
                    "JOIN order_lines l ON l.order_id = o.order_id "
                    "AND (l.category = 'Home/Woodworking' OR l.category LIKE 'Home/Woodworking/%') "
                    "LEFT JOIN customer_traits t ON t.customer_id = c.customer_id "
                    # either point, home or last known, only with location consent
                    "WHERE c.status = 'active' AND EXISTS (SELECT 1 FROM consents g "
                    "  WHERE g.customer_id = c.customer_id AND g.purpose = 'location' "
                    "  AND g.granted) AND ("
                    "  (c.home_latitude IS NOT NULL AND 6371.0088 * 2 * asin(sqrt("
                    "    power(sin(radians(c.home_latitude - 51.5074) / 2), 2) + "
                    "    cos(radians(51.5074)) * cos(radians(c.home_latitude)) * "
                    "    power(sin(radians(c.home_longitude + 0.1278) / 2), 2))) <= 50)"
                    "  OR (t.last_latitude IS NOT NULL AND 6371.0088 * 2 * asin(sqrt("
                    "    power(sin(radians(t.last_latitude - 51.5074) / 2), 2) + "
                    "    cos(radians(51.5074)) * cos(radians(t.last_latitude)) * "
                    "    power(sin(radians(t.last_longitude + 0.1278) / 2), 2))) <= 50))"
                )
            )
            or 0
        )


# --- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=100_000)
    parser.add_argument("--crash", type=int, default=20_000, help="deliveries per crash test")
    parser.add_argument("--naive", type=int, default=5_000, help="customers per naive loop")
    parser.add_argument("--sink-check", type=int, default=20_000, help="messages, sinks alone")
    parser.add_argument(
        "--workers", type=int, default=2, help="dispatcher processes (one per core)"
    )
    parser.add_argument("--batch", type=int, default=500, help="deliveries per dispatch")
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=None,
        help=f"the dispatchers' lease in the crash test (default {CRASH_LEASE_S:.0f} s)",
    )
    parser.add_argument(
        "--crash-batch", type=int, default=100, help="deliveries per dispatch, crash test"
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--smtp-sink",
        choices=("minimal", "aiosmtpd"),
        default="minimal",
        help="the SMTP server receiving (aiosmtpd is measured alone either way)",
    )
    add_database_url_option(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: " + ", ".join(f"--{key} {value}" for key, value in QUICK.items()),
    )
    parser.add_argument("--dispatcher", action="store_true", help=argparse.SUPPRESS)
    if "--quick" in sys.argv[1:]:
        parser.set_defaults(**{key.replace("-", "_"): value for key, value in QUICK.items()})
    args = parser.parse_args()
    if args.dispatcher:
        run_dispatcher(args.database_url, batch=args.batch, lease_seconds=args.lease_seconds)
        return

    load_at_start = Path("/proc/loadavg").read_text().split()[0]
    secret = secrets.token_hex(16)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rapport-bench-")))
        pg_server = stack.enter_context(postgres_server(args.database_url))
        url = stack.enter_context(postgres_database(pg_server.url, "campaigns"))

        retailer = generate_retailer(url, customers=args.customers, seed=args.seed)
        print(f"retailer generated in {retailer.seconds:.1f} s: {retailer}", file=sys.stderr)

        segment_times, segment_count = evaluate_segment(url)
        expected_count = segment_check(url)
        print(f"segment: {segment_times} s, {segment_count} customers", file=sys.stderr)

        no_quiet_hours(url)
        email_audience = Audience(url, "marketing_email")
        push_audience = Audience(url, WEBHOOK_PURPOSE)

        # The receivers alone, each on a fresh process.
        with smtp_sink(workdir, "minimal") as sink:
            sink_rate = measure_smtp_sink(sink, messages=args.sink_check)
        with smtp_sink(workdir, "aiosmtpd") as sink:
            aiosmtpd_rate = measure_smtp_sink(sink, messages=min(args.sink_check, 5_000))
        with webhook_receiver(workdir, secret) as receiver:
            receiver_rate = measure_webhook_receiver(receiver, requests=args.sink_check)

        # Email.
        with smtp_sink(workdir, args.smtp_sink) as sink:
            campaign_id = make_campaign(url, name="Spring workshop (email)", channel="email")
            email = deliver(
                url,
                workdir,
                campaign_id=campaign_id,
                customer_ids=email_audience.take(args.emails),
                receiver=sink,
                smtp_port=sink.port,
                workers=args.workers,
                batch=args.batch,
            )
            print(f"email: {email}", file=sys.stderr)

        # Webhooks.
        with webhook_receiver(workdir, secret) as receiver:
            endpoint_id = make_endpoint(
                url,
                name="Push gateway",
                url=f"http://127.0.0.1:{receiver.port}/hook",
                secret=secret,
            )
            campaign_id = make_campaign(
                url, name="Spring workshop (push)", channel="webhook", endpoint_id=endpoint_id
            )
            webhook = deliver(
                url,
                workdir,
                campaign_id=campaign_id,
                customer_ids=push_audience.take(args.webhooks),
                receiver=receiver,
                smtp_port=1,
                workers=args.workers,
                batch=args.batch,
            )
            print(f"webhooks: {webhook}", file=sys.stderr)

        # A dispatcher killed mid-send, then restarted: each channel.
        with smtp_sink(workdir, args.smtp_sink) as sink:
            campaign_id = make_campaign(url, name="Crash test (email)", channel="email")
            email_crash = crash_and_restart(
                url,
                workdir,
                campaign_id=campaign_id,
                customer_ids=email_audience.take(args.crash),
                receiver=sink,
                smtp_port=sink.port,
                batch=args.crash_batch,
                lease_seconds=args.lease_seconds or CRASH_LEASE_S,
            )
            print(f"email crash: {email_crash}", file=sys.stderr)
        with webhook_receiver(workdir, secret) as receiver:
            endpoint_id = make_endpoint(
                url,
                name="Push gateway (crash test)",
                url=f"http://127.0.0.1:{receiver.port}/hook",
                secret=secret,
            )
            campaign_id = make_campaign(
                url, name="Crash test (push)", channel="webhook", endpoint_id=endpoint_id
            )
            webhook_crash = crash_and_restart(
                url,
                workdir,
                campaign_id=campaign_id,
                customer_ids=push_audience.take(args.crash),
                receiver=receiver,
                smtp_port=1,
                batch=args.crash_batch,
                lease_seconds=args.lease_seconds or CRASH_LEASE_S,
            )
            print(f"webhook crash: {webhook_crash}", file=sys.stderr)

        # The naive loops, on customers of their own.
        with smtp_sink(workdir, args.smtp_sink) as sink:
            campaign_id = make_campaign(url, name="Naive (email)", channel="email")
            naive_email = naive_emails(
                url,
                campaign_id=campaign_id,
                customer_ids=email_audience.take(args.naive),
                smtp_port=sink.port,
                subject=SUBJECT,
                body=EMAIL_BODY,
            )
        with webhook_receiver(workdir, secret) as receiver:
            endpoint_id = make_endpoint(
                url,
                name="Push gateway (naive)",
                url=f"http://127.0.0.1:{receiver.port}/hook",
                secret=secret,
            )
            campaign_id = make_campaign(
                url, name="Naive (push)", channel="webhook", endpoint_id=endpoint_id
            )
            naive_webhook = naive_webhooks(
                url,
                campaign_id=campaign_id,
                customer_ids=push_audience.take(args.naive),
                port=receiver.port,
                secret=secret,
                body=WEBHOOK_BODY,
                purpose=WEBHOOK_PURPOSE,
            )
        server_rows = pg_server.table_rows()
    load_at_end = Path("/proc/loadavg").read_text().split()[0]

    report(
        args,
        retailer=retailer,
        segment_times=segment_times,
        segment_count=segment_count,
        expected_count=expected_count,
        sink_rates=(sink_rate, aiosmtpd_rate, receiver_rate),
        email=email,
        webhook=webhook,
        crashes=(email_crash, webhook_crash),
        naive=(naive_email, naive_webhook),
        server_rows=server_rows,
        loads=(load_at_start, load_at_end),
    )


def report(
    args: argparse.Namespace,
    *,
    retailer: Any,
    segment_times: list[float],
    segment_count: int,
    expected_count: int,
    sink_rates: tuple[float, float, float],
    email: Delivered,
    webhook: Delivered,
    crashes: tuple[Crash, Crash],
    naive: tuple[NaiveRun, NaiveRun],
    server_rows: list[tuple[str, str]],
    loads: tuple[str, str],
) -> None:
    email_crash, webhook_crash = crashes
    naive_email, naive_webhook = naive
    duplicates = email.duplicates + webhook.duplicates
    duplicates += email_crash.duplicates + webhook_crash.duplicates
    lost = email.lost + webhook.lost + email_crash.lost + webhook_crash.lost

    def ratio(ours: float, theirs: float) -> str:
        return f"{ours / theirs:.1f}x" if theirs else "-"

    def outcome(counts: Counter[str]) -> str:
        return ", ".join(f"{status} {count:,}" for status, count in sorted(counts.items()))

    print("| metric | rapport | naive | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    rows = [
        (
            f"segment, 3 conditions over {retailer.customers:,} customers: median of 3 (s)",
            f"{statistics.median(segment_times):.2f}",
            "",
            "",
            "< 10 s",
        ),
        (
            "segment: each evaluation, the first on a cold cache (s)",
            " / ".join(f"{t:.2f}" for t in segment_times),
            "",
            "",
            "",
        ),
        (
            "segment members (plain SQL check)",
            f"{segment_count:,} ({expected_count:,})",
            "",
            "",
            "equal",
        ),
        (
            f"emails/s ({email.queued:,} queued, {args.workers} dispatcher(s))",
            f"{email.per_second:,.0f}",
            f"{naive_email.per_second:,.0f}",
            ratio(email.per_second, naive_email.per_second),
            ">= 500/s",
        ),
        (
            f"webhooks/s ({webhook.queued:,} queued)",
            f"{webhook.per_second:,.0f}",
            f"{naive_webhook.per_second:,.0f}",
            ratio(webhook.per_second, naive_webhook.per_second),
            "",
        ),
        ("email deliveries", outcome(email.statuses), "", "", ""),
        ("webhook deliveries", outcome(webhook.statuses), "", "", ""),
        (
            "received by the sink / the receiver (bad signatures)",
            f"{email.received:,} / {webhook.received:,} ({webhook.bad_signatures})",
            f"{naive_email.sent:,} / {naive_webhook.sent:,}",
            "",
            "",
        ),
        (
            "queueing with queue_deliveries (s, email / webhook)",
            f"{email.queue_s:.1f} / {webhook.queue_s:.1f}",
            "",
            "",
            "",
        ),
        (
            f"crash test email: killed at {email_crash.killed_after:,} of "
            f"{email_crash.queued:,}; duplicates / lost",
            f"{email_crash.duplicates} / {email_crash.lost}",
            "",
            "",
            "0 / 0",
        ),
        (
            f"crash test webhook: killed at {webhook_crash.killed_after:,} of "
            f"{webhook_crash.queued:,}; duplicates (repeats, dropped by a receiver by "
            "Rapport-Delivery-Id) / lost",
            f"{webhook_crash.duplicates} / {webhook_crash.lost}",
            "",
            "",
            "0 / 0",
        ),
        (
            "crash tests: deliveries after restart (email; webhook)",
            f"{outcome(email_crash.statuses)}; {outcome(webhook_crash.statuses)}",
            "",
            "",
            "",
        ),
        (
            "duplicates / lost, all runs",
            f"{duplicates} / {lost}",
            "",
            "",
            "0 / 0",
        ),
        (
            "naive loop: customers skipped (no consent)",
            "",
            f"{naive_email.skipped} / {naive_webhook.skipped}",
            "",
            "",
        ),
        (
            "receivers' CPU during the runs: SMTP sink / webhook receiver (ms a message)",
            f"{email.receiver_cpu_s * 1000 / max(email.received, 1):.2f} / "
            f"{webhook.receiver_cpu_s * 1000 / max(webhook.received, 1):.2f}",
            "",
            "",
            "",
        ),
        (
            "receivers alone: SMTP sink / aiosmtpd / webhook receiver (msg/s)",
            " / ".join(f"{rate:,.0f}" for rate in sink_rates),
            "",
            "",
            "",
        ),
        (
            "retailer: customers / orders / lines (generated in s)",
            f"{retailer.customers:,} / {retailer.orders:,} / {retailer.order_lines:,} "
            f"({retailer.seconds:.0f})",
            "",
            "",
            "",
        ),
        *((name, value, "", "", "") for name, value in server_rows),
        ("machine load average (1 min) at start / end", f"{loads[0]} / {loads[1]}", "", "", ""),
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        json.dumps(
            {
                "segment_s": round(statistics.median(segment_times), 3),
                "emails_per_s": round(email.per_second),
                "webhooks_per_s": round(webhook.per_second),
                "duplicates": duplicates,
                "lost": lost,
                "naive_emails_per_s": round(naive_email.per_second, 1),
                "naive_webhooks_per_s": round(naive_webhook.per_second, 1),
                "customers": retailer.customers,
            }
        )
    )


if __name__ == "__main__":
    main()
