"""Real receivers for the campaigns tests: an SMTP server (aiosmtpd) that keeps every message
whose DATA was terminated, and an HTTP server (http.server in a thread) that keeps every
webhook request and answers as the test tells it to."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import free_port


class ReceivingServer(ThreadingHTTPServer):
    """A threaded HTTP server that queues as many connections as a dispatcher opens at once
    (``socketserver``'s default backlog of 5 drops the rest's handshakes on a busy machine,
    and the sender sees a timeout a real receiver would not give)."""

    request_queue_size = 128


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = 0.0  # time.monotonic() when the server took it

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return "" if part is None else str(part.get_content())


class SmtpSink:
    """An SMTP server on loopback. ``messages`` holds each message once its DATA ended with
    the final '.', which is the moment a real server takes responsibility for it.
    ``reject`` addresses get a permanent 550 at RCPT; ``hold_after`` (n) makes the server
    wait, after storing the n-th message, until ``release`` is set before it answers (so a
    test can kill a sender in the window where the message is delivered but not yet
    acknowledged). ``delay`` seconds pass between the final '.' and the server taking the
    message (a slow server); ``data_reply`` answers the end of DATA instead of taking it
    (a refusal such as "452 4.3.1 Insufficient storage")."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMail] = []
        self.reject: set[str] = set()
        self.hold_after: int | None = None
        self.delay = 0.0
        self.data_reply: str | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.connections = 0
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_reply is not None:
            return self.data_reply
        with self._lock:
            self.messages.append(
                ReceivedMail(
                    str(envelope.mail_from), list(envelope.rcpt_tos), content, time.monotonic()
                )
            )
            count = len(self.messages)
        if self.hold_after is not None and count == self.hold_after:
            self.holding.set()
            deadline = time.monotonic() + 10
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        return "250 Message accepted"

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self.release.set()
        self._controller.stop()

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.messages if address in m.rcpt_tos]


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """An HTTP server on loopback that records every POST. ``responses`` is a queue of status
    codes answered in turn (then ``default_status``); ``delay`` seconds before answering."""

    port: int = field(default_factory=free_port)
    requests: list[ReceivedRequest] = field(default_factory=list)
    responses: list[int] = field(default_factory=list)
    default_status: int = 200
    delay: float = 0.0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    ReceivedRequest(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = (
                    receiver.responses.pop(0) if receiver.responses else receiver.default_status
                )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ReceivingServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def running_smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def running_webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
