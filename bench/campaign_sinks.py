"""The receivers of the campaigns bench, each a separate process: an SMTP sink and a webhook
receiver, both writing one line per message received to a file.

    python bench/campaign_sinks.py smtp --port 2525 --out received.tsv
    python bench/campaign_sinks.py webhook --port 8025 --secret s3cr3t --out received.tsv

    from campaign_sinks import smtp_sink, webhook_receiver
    with smtp_sink(workdir) as sink:           # started on a free port, stopped afterwards
        ... sink.port ...; sink.records()      # [(message id, recipient), ...]

The SMTP sink (a minimal SMTP server, or aiosmtpd with ``--server aiosmtpd``, on uvloop)
writes ``<Message-ID>\\t<recipient>\\t<Rapport-Delivery-Id header, if any>`` per recipient.
aiosmtpd spends about 1 ms of CPU per message (it reads DATA line by line), which on two cores
shared with the sender and PostgreSQL would cap the measured rate; the minimal server spends
under 0.1 ms. The webhook receiver is a small HTTP/1.1 server (keep-alive, asyncio protocol,
no framework, so that it is never what limits the measured rate); it checks the
HMAC-SHA256 signature of every request (``Rapport-Signature: t=<unix time>,v1=<hex of
HMAC(secret, "<t>.<body>")>``, as rapport.campaigns.delivery.webhooks signs) and writes
``<delivery id>\\t<customer id>\\t<1 if the signature is right else 0>`` per request, taking the
ids from the ``Rapport-Delivery-Id`` header or the JSON body's ``delivery_id``/``customer_id``.
Both buffer their lines and flush them every 50 ms and when stopped (SIGTERM), so that the
bench can follow progress by reading the file. ``measure_smtp_sink`` and
``measure_webhook_receiver`` drive one alone from this process with raw asyncio clients, to
show that the sink receives faster than Rapport sends.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvloop

FLUSH_SECONDS = 0.05
SIGNATURE_HEADER = b"rapport-signature"
DELIVERY_HEADER = b"rapport-delivery-id"


# --- the receiving processes ---------------------------------------------------------------


class LineBuffer:
    """Lines waiting to be written, flushed on a timer and on exit."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("a", encoding="utf-8")
        self.pending: list[str] = []

    def add(self, line: str) -> None:
        self.pending.append(line)

    def flush(self) -> None:
        if self.pending:
            self.handle.write("".join(self.pending))
            self.pending.clear()
            self.handle.flush()

    def flush_every(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flush()
        loop.call_later(FLUSH_SECONDS, self.flush_every, loop)


def header_value(raw: bytes, name: bytes) -> str:
    """The value of header ``name`` (lowercase) in a raw message or request head, or ''."""
    lowered = raw.lower()
    start = lowered.find(b"\n" + name + b":")
    if start < 0:
        return ""
    start += len(name) + 2
    end = raw.find(b"\n", start)
    return raw[start : end if end >= 0 else len(raw)].strip().decode("utf-8", "replace")


class CountingHandler:
    """aiosmtpd handler: one line per recipient of every accepted message."""

    def __init__(self, lines: LineBuffer) -> None:
        self.lines = lines

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        head = b"\n" + content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
        message_id = header_value(head, b"message-id")
        delivery = header_value(head, DELIVERY_HEADER)
        for recipient in envelope.rcpt_tos:
            self.lines.add(f"{message_id}\t{recipient.lower()}\t{delivery}\n")
        return "250 OK"


class SmtpProtocol(asyncio.Protocol):
    """Just enough SMTP (RFC 5321) to accept mail: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
    QUIT, with PIPELINING. No storage and no checks of addresses: it counts."""

    def __init__(self, lines: LineBuffer) -> None:
        self.lines = lines
        self.buffer = b""
        self.recipients: list[str] = []
        self.in_data = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 sink.bench ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        answers: list[bytes] = []
        while True:
            if self.in_data:
                # The message ends with CRLF.CRLF; its first line may be the ".CRLF" itself.
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    if not self.buffer.startswith(b".\r\n"):
                        break
                    content, self.buffer = b"", self.buffer[3:]
                else:
                    content, self.buffer = self.buffer[:end], self.buffer[end + 5 :]
                self.received(content)
                self.in_data = False
                answers.append(b"250 2.0.0 OK queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            verb = line[:4].upper()
            if verb == b"EHLO":
                answers.append(b"250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n")
                answers.append(b"250-SMTPUTF8\r\n250 SIZE 33554432\r\n")
            elif verb == b"MAIL":
                self.recipients = []
                answers.append(b"250 2.1.0 OK\r\n")
            elif verb == b"RCPT":
                address = line[line.find(b"<") + 1 : line.rfind(b">")]
                self.recipients.append(address.decode("utf-8", "replace").lower())
                answers.append(b"250 2.1.5 OK\r\n")
            elif verb == b"DATA":
                self.in_data = True
                answers.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                answers.append(b"221 Bye\r\n")
                self.transport.write(b"".join(answers))
                self.transport.close()
                return
            elif verb == b"RSET":
                self.recipients = []
                answers.append(b"250 OK\r\n")
            else:  # HELO, NOOP and anything else
                answers.append(b"250 OK\r\n")
        if answers:
            self.transport.write(b"".join(answers))

    def received(self, content: bytes) -> None:
        head = b"\n" + content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
        message_id = header_value(head, b"message-id")
        delivery = header_value(head, DELIVERY_HEADER)
        for recipient in self.recipients:
            self.lines.add(f"{message_id}\t{recipient}\t{delivery}\n")
        self.recipients = []


def run_smtp_sink(port: int, out: Path, *, server_kind: str = "minimal") -> None:
    lines = LineBuffer(out)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if server_kind == "aiosmtpd":
            from aiosmtpd.smtp import SMTP

            logging.getLogger("mail.log").setLevel(logging.WARNING)
            handler = CountingHandler(lines)
            server = await loop.create_server(
                # hostname given: aiosmtpd would otherwise resolve the FQDN per connection.
                lambda: SMTP(handler, hostname="sink.bench", enable_SMTPUTF8=True, loop=loop),
                "127.0.0.1",
                port,
                backlog=512,
            )
        else:
            server = await loop.create_server(
                lambda: SmtpProtocol(lines), "127.0.0.1", port, backlog=512
            )
        await serve_until_stopped(loop, server, lines)

    uvloop.run(main())


class WebhookProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: read requests by Content-Length, answer 200."""

    def __init__(self, secret: bytes, lines: LineBuffer) -> None:
        self.secret = secret
        self.lines = lines
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = b"\n" + self.buffer[:end].replace(b"\r\n", b"\n")
            length_text = header_value(head, b"content-length")
            length = int(length_text) if length_text else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.handle(head, body)

    def handle(self, head: bytes, body: bytes) -> None:
        valid = verify_signature(self.secret, header_value(head, SIGNATURE_HEADER), body)
        delivery = header_value(head, DELIVERY_HEADER)
        customer = ""
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            document = {}
        if isinstance(document, dict):
            delivery = delivery or str(document.get("delivery_id", ""))
            customer = str(document.get("customer_id") or "")
        self.lines.add(f"{delivery}\t{customer}\t{int(valid)}\n")
        assert self.transport is not None
        answer = b"ok" if valid else b"bad signature"
        status = b"200 OK" if valid else b"401 Unauthorized"
        self.transport.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(answer)).encode()
            + b"\r\n\r\n"
            + answer
        )


def verify_signature(secret: bytes, header: str, body: bytes) -> bool:
    """``t=<unix time>,v1=<hex>`` where hex = HMAC-SHA256(secret, b"<t>." + body)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp or not given:
        return False
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def run_webhook_receiver(port: int, secret: str, out: Path) -> None:
    lines = LineBuffer(out)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: WebhookProtocol(secret.encode(), lines), "127.0.0.1", port, backlog=512
        )
        await serve_until_stopped(loop, server, lines)

    uvloop.run(main())


async def serve_until_stopped(
    loop: asyncio.AbstractEventLoop, server: asyncio.Server, lines: LineBuffer
) -> None:
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    lines.flush_every(loop)
    async with server:
        await stopped.wait()
    lines.flush()


# --- starting them from the bench ----------------------------------------------------------


@dataclass
class Receiver:
    """A running receiver process and the file it writes."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    out: Path
    secret: str = ""

    def records(self) -> list[tuple[str, ...]]:
        """What it has received so far (flushed within FLUSH_SECONDS)."""
        if not self.out.exists():
            return []
        text = self.out.read_text(encoding="utf-8")
        return [tuple(line.split("\t")) for line in text.splitlines() if line]

    def received(self) -> int:
        if not self.out.exists():
            return 0
        with self.out.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the receiver has used (from /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_receiver(
    kind: str, workdir: Path, *, secret: str = "", server: str = "minimal"
) -> Iterator[Receiver]:
    port = free_port()
    out = workdir / f"{kind}-{port}.tsv"
    command = [sys.executable, str(Path(__file__)), kind, "--port", str(port), "--out", str(out)]
    if kind == "webhook":
        command += ["--secret", secret]
    else:
        command += ["--server", server]
    process = subprocess.Popen(command)
    receiver = Receiver(kind=kind, process=process, port=port, out=out, secret=secret)
    try:
        wait_for_port(port, process)
        yield receiver
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def smtp_sink(workdir: Path, server: str = "minimal") -> Iterator[Receiver]:
    with start_receiver("smtp", workdir, server=server) as receiver:
        yield receiver


@contextmanager
def webhook_receiver(workdir: Path, secret: str) -> Iterator[Receiver]:
    with start_receiver("webhook", workdir, secret=secret) as receiver:
        yield receiver


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the receiver on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the receiver on port {port} did not start in {timeout:.0f} s")


def wait_for_records(receiver: Receiver, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while receiver.received() < count and time.monotonic() < deadline:
        time.sleep(FLUSH_SECONDS)


# --- measuring them alone ------------------------------------------------------------------


def measure_smtp_sink(receiver: Receiver, *, messages: int, connections: int = 8) -> float:
    """Messages per second the sink accepts from ``connections`` raw asyncio SMTP clients
    (one message per transaction, one recipient each, as the campaign sends them)."""
    before = receiver.received()

    async def client(number: int, count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)

        async def reply() -> bytes:
            while True:
                line = await reader.readline()
                if line[3:4] != b"-":
                    return line

        async def command(line: bytes) -> bytes:
            writer.write(line)
            return await reply()

        await reply()
        await command(b"EHLO bench.client\r\n")
        for index in range(count):
            address = f"sinkcheck-{number}-{index}@bench.example"
            await command(b"MAIL FROM:<campaigns@bench.example>\r\n")
            await command(f"RCPT TO:<{address}>\r\n".encode())
            await command(b"DATA\r\n")
            message = (
                f"Message-ID: <sink-{number}-{index}@bench.example>\r\nFrom: "
                f"campaigns@bench.example\r\nTo: {address}\r\nSubject: Sink check\r\n\r\n"
                + "Hello,\r\nthis is a message of about a campaign's size.\r\n" * 20
                + ".\r\n"
            )
            await command(message.encode())
        await command(b"QUIT\r\n")
        writer.close()

    async def run() -> float:
        began = time.perf_counter()
        share = messages // connections
        await asyncio.gather(*(client(n, share) for n in range(connections)))
        return time.perf_counter() - began

    elapsed = uvloop.run(run())
    wait_for_records(receiver, before + (messages // connections) * connections)
    return (messages // connections) * connections / elapsed


def measure_webhook_receiver(receiver: Receiver, *, requests: int, connections: int = 8) -> float:
    """Requests per second the receiver answers (signature checked) on keep-alive
    connections."""
    before = receiver.received()
    secret = receiver.secret.encode()

    async def client(number: int, count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        for index in range(count):
            body = json.dumps(
                {"delivery_id": f"check-{number}-{index}", "customer_id": "cus_check"}
            ).encode()
            stamp = str(int(time.time()))
            signature = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            writer.write(
                f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Rapport-Signature: t={stamp},v1={signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(header_value(b"\n" + head.replace(b"\r\n", b"\n"), b"content-length"))
            await reader.readexactly(length)
        writer.close()

    async def run() -> float:
        began = time.perf_counter()
        share = requests // connections
        await asyncio.gather(*(client(n, share) for n in range(connections)))
        return time.perf_counter() - began

    elapsed = uvloop.run(run())
    wait_for_records(receiver, before + (requests // connections) * connections)
    return (requests // connections) * connections / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("smtp", "webhook"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument("--server", choices=("minimal", "aiosmtpd"), default="minimal")
    args = parser.parse_args()
    if args.kind == "smtp":
        run_smtp_sink(args.port, args.out, server_kind=args.server)
    else:
        run_webhook_receiver(args.port, args.secret, args.out)


if __name__ == "__main__":
    main()
