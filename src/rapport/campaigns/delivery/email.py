"""Email over SMTP (stdlib ``smtplib``): one connection reused for a batch, List-Unsubscribe
headers (with RFC 8058 one-click), a Message-ID derived from the delivery (the same message
keeps the same id whatever retries it).

Each message is sent with smtplib's lower-level calls — MAIL, RCPT, DATA and the body — and
the caller's ``before_terminator`` callback runs (it marks the delivery sent and COMMITS)
before the final ``.`` of DATA is written. Until the server reads that terminator it has not
accepted the message; so a delivery still ``sending`` after its sender died was never
terminated and is safe to send again, and one marked ``sent`` was, at worst, lost in the
microseconds between the commit and the write (see docs/campaigns-delivery.md).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr

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


def message_id(delivery_id: int | None, settings: Settings) -> str:
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "rapport.invalid"
    return f"<delivery-{delivery_id}@{domain}>" if delivery_id else f"<test-{formatdate()}>"


def build_message(
    rendered: RenderedMessage, *, to: str, delivery_id: int | None, settings: Settings
) -> bytes:
    """The message as it goes on the wire: CRLF line ends, not yet dot-stuffed."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(delivery_id, settings)
    if rendered.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text or rendered.body)
    if rendered.text:
        message.add_alternative(rendered.body, subtype="html")
    return message.as_bytes()


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
        self.envelope_from = parseaddr(settings.smtp_from)[1] or settings.smtp_from

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
