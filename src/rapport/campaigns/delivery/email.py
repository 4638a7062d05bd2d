"""Email over SMTP (stdlib ``smtplib``): one connection reused for a batch, List-Unsubscribe
headers (with RFC 8058 one-click) on a delivery's message, a Message-ID derived from the
delivery (the same message keeps the same id whatever retries it).

Each message is sent with smtplib's lower-level calls — MAIL, RCPT, DATA and the body — and
the caller's ``before_terminator`` callback runs (it marks the delivery sent and COMMITS)
before the final ``.`` of DATA is written. Until the server reads that terminator it has not
accepted the message; so a delivery still ``sending`` after its sender died was never
terminated and is safe to send again, and one marked ``sent`` was, at worst, lost in the
microseconds between the commit and the write (see docs/campaigns-delivery.md).
"""

from __future__ import annotations

import binascii
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache

from rapport.campaigns.delivery.rendering import RenderedMessage
from rapport.platform.settings import Settings

# The reason given when ``before_terminator`` found the delivery no longer this sender's.
LEASE_LOST = "the claim passed to another worker; message abandoned before its terminator"


@dataclass(frozen=True)
class SmtpOutcome:
    """What the server said: ``accepted``; else ``permanent`` (5xx: a bounce) or a temporary
    failure to retry. ``committed`` tells whether ``before_terminator`` ran."""

    accepted: bool
    permanent: bool = False
    reason: str = ""
    committed: bool = False


@lru_cache(maxsize=16)
def _sender(smtp_from: str) -> tuple[str, str, str]:
    """The From: header, the envelope address and its domain (parsed once per setting)."""
    name, address = parseaddr(smtp_from)
    header = formataddr((name, address), charset="utf-8") if name else address
    return header, address or smtp_from, address.rpartition("@")[2] or "rapport.invalid"


def message_id(delivery_id: int | None, settings: Settings) -> str:
    """``<delivery-{id}@{from domain}>``, the same on every try of a delivery; a test send
    (no delivery) gets a unique ``<…test@{from domain}>`` of its own."""
    domain = _sender(settings.smtp_from)[2]
    if delivery_id:
        return f"<delivery-{delivery_id}@{domain}>"
    return make_msgid(idstring="test", domain=domain)


def _header_value(value: str) -> str:
    """A header value as 7-bit text: RFC 2047 encoded words when it is not ASCII."""
    if value.isascii():
        return value.replace("\r", " ").replace("\n", " ")
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


def _quoted_printable(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(normalised.encode(), istext=True).replace(b"\n", b"\r\n")


def _part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + _quoted_printable(text)


def build_message(
    rendered: RenderedMessage, *, to: str, delivery_id: int | None, settings: Settings
) -> bytes:
    """The message as it goes on the wire: CRLF line ends, not yet dot-stuffed. Built by hand
    (quoted-printable parts, RFC 2047 headers): the email package's header machinery costs
    several milliseconds a message, more than the whole SMTP exchange. A test send (no
    ``delivery_id``) carries no List-Unsubscribe: it goes to staff, whose mail client must not
    offer to unsubscribe the customer it was rendered for."""
    headers = [
        f"From: {_sender(settings.smtp_from)[0]}",
        f"To: {to}",
        f"Subject: {_header_value(rendered.subject)}",
        f"Date: {formatdate(localtime=False, usegmt=True)}",
        f"Message-ID: {message_id(delivery_id, settings)}",
        "MIME-Version: 1.0",
    ]
    if rendered.unsubscribe_url and delivery_id is not None:
        headers.append(f"List-Unsubscribe: <{rendered.unsubscribe_url}>")
        headers.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    if not rendered.text:
        head = "\r\n".join(headers).encode() + b"\r\n"
        return head + _part("plain", rendered.body) + b"\r\n"
    boundary = f"=_rapport_{uuid.uuid4().hex}"
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    marker = f"--{boundary}\r\n".encode()
    return b"".join(
        [
            "\r\n".join(headers).encode(),
            b"\r\n\r\n",
            marker,
            _part("plain", rendered.text),
            b"\r\n",
            marker,
            _part("html", rendered.body),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


def _dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 transparency: a line starting with '.' gets one more; ends with CRLF."""
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SmtpBatch:
    """One SMTP connection for many messages (reopened after the server drops it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None
        self.envelope_from = _sender(settings.smtp_from)[1]

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        timeout = settings.smtp_timeout_seconds
        connection: smtplib.SMTP
        if settings.smtp_security == "ssl":
            connection = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        # No Nagle: the DATA terminator is a small write after the body, with no reply between;
        # Nagle would hold it until the server's delayed ACK (~40 ms a message).
        if connection.sock is not None:
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.ehlo_or_helo_if_needed()
        if settings.smtp_security == "starttls":
            connection.starttls(context=ssl.create_default_context())
            connection.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            connection.login(settings.smtp_username, password)
        return connection

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None

    def __enter__(self) -> SmtpBatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, to: str, data: bytes, *, before_terminator: Callable[[], bool]) -> SmtpOutcome:
        """Send one message; ``before_terminator`` runs once the server has the whole body
        but before the final '.' that makes it accept the message, and returns whether to
        go on (False: the message is abandoned, the connection closed)."""
        try:
            if self.connection is None:
                self.connection = self._connect()
            return self._send(self.connection, to, data, before_terminator)
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            # The connection is in an unknown state: drop it, reopen for the next message.
            if self.connection is not None:
                self.connection.close()
                self.connection = None
            return SmtpOutcome(False, reason=f"SMTP: {error}"[:300])

    def _send(
        self,
        connection: smtplib.SMTP,
        to: str,
        data: bytes,
        before_terminator: Callable[[], bool],
    ) -> SmtpOutcome:
        code, reply = connection.mail(self.envelope_from)
        if code != 250:
            connection.rset()
            return _refused("MAIL", code, reply)
        code, reply = connection.rcpt(to)
        if code not in (250, 251):
            connection.rset()
            return _refused("RCPT", code, reply)
        code, reply = connection.docmd("DATA")
        if code != 354:
            connection.rset()
            return _refused("DATA", code, reply)
        connection.send(_dot_stuffed(data))
        if not before_terminator():
            # Without the terminator the server discards what it got when the line drops.
            self.connection = None
            connection.close()
            return SmtpOutcome(False, reason=LEASE_LOST)
        try:
            connection.send(b".\r\n")
        except (smtplib.SMTPException, OSError) as error:
            # The terminator never left: the server has not accepted the message.
            self.connection = None
            connection.close()
            return SmtpOutcome(False, reason=f"SMTP: {error}"[:300], committed=True)
        try:
            code, reply = connection.getreply()
        except (smtplib.SMTPException, OSError) as error:
            # The terminator left; the server most likely accepted the message. Counting it
            # as sent risks one lost message, resending it one duplicate: we keep it sent.
            self.connection = None
            connection.close()
            return SmtpOutcome(
                True, reason=f"no reply after the terminator: {error}"[:300], committed=True
            )
        if code != 250:
            return _refused("end of DATA", code, reply, committed=True)
        return SmtpOutcome(True, committed=True)


def _refused(stage: str, code: int, reply: bytes, *, committed: bool = False) -> SmtpOutcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return SmtpOutcome(
        False,
        permanent=500 <= code < 600,
        reason=f"SMTP {stage}: {code} {text}"[:300],
        committed=committed,
    )


def send_one(rendered: RenderedMessage, *, to: str, settings: Settings) -> SmtpOutcome:
    """Send one message now on its own connection (test sends)."""
    data = build_message(rendered, to=to, delivery_id=None, settings=settings)
    with SmtpBatch(settings) as batch:
        return batch.send(to, data, before_terminator=lambda: True)


class SmtpPool:
    """Several SMTP connections sending a group of messages side by side, one per connection:
    each step (MAIL, RCPT, DATA, the body) is written on every connection before the replies
    are read, so a group costs a few round trips rather than a few per message; and the
    caller's ``before_terminators`` commits the whole group's "sent" marks at once, before any
    final '.' is written."""

    def __init__(self, settings: Settings, *, size: int) -> None:
        self.batch = SmtpBatch(settings)
        self.size = max(1, size)
        self.connections: list[smtplib.SMTP | None] = [None] * self.size

    def __enter__(self) -> SmtpPool:
        return self

    def __exit__(self, *_: object) -> None:
        for index, connection in enumerate(self.connections):
            if connection is not None:
                try:
                    connection.quit()
                except (smtplib.SMTPException, OSError):
                    connection.close()
                self.connections[index] = None

    def _drop(self, index: int) -> None:
        connection = self.connections[index]
        if connection is not None:
            connection.close()
        self.connections[index] = None

    def send_group(
        self,
        messages: list[tuple[str, bytes]],
        *,
        before_terminators: Callable[[list[int]], set[int]],
    ) -> list[SmtpOutcome]:
        """Send up to ``size`` messages (address, data); ``before_terminators`` gets the
        indexes whose body the server holds and returns those that may be terminated (it
        commits their marks). Returns one outcome per message."""
        assert len(messages) <= self.size
        outcomes: list[SmtpOutcome | None] = [None] * len(messages)
        live: list[int] = []
        for index in range(len(messages)):
            try:
                if self.connections[index] is None:
                    self.connections[index] = self.batch._connect()
                live.append(index)
            except (TimeoutError, smtplib.SMTPException, OSError) as error:
                self._drop(index)
                outcomes[index] = SmtpOutcome(False, reason=f"SMTP: {error}"[:300])

        def step(
            indexes: list[int], write: Callable[[int, smtplib.SMTP], None], ok: tuple[int, ...]
        ) -> list[int]:
            written = []
            for index in indexes:
                connection = self.connections[index]
                assert connection is not None
                try:
                    write(index, connection)
                    written.append(index)
                except (TimeoutError, smtplib.SMTPException, OSError) as error:
                    self._drop(index)
                    outcomes[index] = SmtpOutcome(False, reason=f"SMTP: {error}"[:300])
            passed = []
            for index in written:
                connection = self.connections[index]
                assert connection is not None
                try:
                    code, reply = connection.getreply()
                except (TimeoutError, smtplib.SMTPException, OSError) as error:
                    self._drop(index)
                    outcomes[index] = SmtpOutcome(False, reason=f"SMTP: {error}"[:300])
                    continue
                if code in ok:
                    passed.append(index)
                    continue
                outcomes[index] = _refused(stage, code, reply)
                try:
                    connection.rset()
                except (TimeoutError, smtplib.SMTPException, OSError):
                    self._drop(index)
            return passed

        sender = self.batch.envelope_from
        stage = "MAIL"
        live = step(live, lambda i, c: c.putcmd("mail", f"FROM:<{sender}>"), (250,))
        stage = "RCPT"
        live = step(live, lambda i, c: c.putcmd("rcpt", f"TO:<{messages[i][0]}>"), (250, 251))
        stage = "DATA"
        live = step(live, lambda i, c: c.putcmd("data"), (354,))
        holding = []
        for index in live:
            connection = self.connections[index]
            assert connection is not None
            try:
                connection.send(_dot_stuffed(messages[index][1]))
                holding.append(index)
            except (TimeoutError, smtplib.SMTPException, OSError) as error:
                self._drop(index)
                outcomes[index] = SmtpOutcome(False, reason=f"SMTP: {error}"[:300])
        allowed = before_terminators(holding) if holding else set()
        terminated = []
        for index in holding:
            if index not in allowed:
                # Without the terminator the server discards the message when the line drops.
                self._drop(index)
                outcomes[index] = SmtpOutcome(False, reason=LEASE_LOST)
                continue
            connection = self.connections[index]
            assert connection is not None
            try:
                connection.send(b".\r\n")
                terminated.append(index)
            except (TimeoutError, smtplib.SMTPException, OSError) as error:
                self._drop(index)  # the terminator never left: not accepted
                outcomes[index] = SmtpOutcome(False, reason=f"SMTP: {error}"[:300], committed=True)
        for index in terminated:
            connection = self.connections[index]
            assert connection is not None
            try:
                code, reply = connection.getreply()
            except (TimeoutError, smtplib.SMTPException, OSError) as error:
                # The terminator left: most likely accepted; kept as sent (no duplicate).
                self._drop(index)
                outcomes[index] = SmtpOutcome(
                    True, reason=f"no reply after the terminator: {error}"[:300], committed=True
                )
                continue
            outcomes[index] = (
                SmtpOutcome(True, committed=True)
                if code == 250
                else _refused("end of DATA", code, reply, committed=True)
            )
        return [
            outcome if outcome is not None else SmtpOutcome(False, reason="not sent")
            for outcome in outcomes
        ]
