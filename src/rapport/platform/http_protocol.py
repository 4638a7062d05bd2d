"""uvicorn's HTTP/1.1 protocol (httptools), answering a request it cannot read with
problem+json like every other refusal, where uvicorn answers a plain-text
``400 Invalid HTTP request received.``: a request target over 65,535 bytes (the most httptools
reads) is ``414`` saying how long it is and what Rapport reads, anything else that is not
HTTP/1.1 a ``400``. Such a request never reaches the application, whose own limit
(``middleware.RequestHeadLimit``, 8 KiB) a URL that grows meets first.

It also bounds what a slow or idle client may hold: a connection that sends nothing is closed
after uvicorn's keep-alive timeout (``timeout_keep_alive``, 5 s), the first request's wait
included, where uvicorn waited for it for good; a request whose line and headers have not all
arrived ``HEAD_TIMEOUT_S`` after its first byte is answered ``408`` problem+json and closed.
(A body that has not arrived within the request's budget is the application's ``408``:
``middleware.BodySizeLimit``.)

``rapport serve`` passes :class:`ProblemHttpProtocol` to uvicorn as its ``http`` protocol.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from rapport.platform.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from rapport.platform.middleware import MAX_URL_BYTES

# The longest request target httptools reads (its URL offsets are 16 bits).
PARSER_MAX_URL_BYTES = 65_535
# How long a request's line and headers may take to arrive, from its first byte.
HEAD_TIMEOUT_S = 10.0


class ProblemHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` whose answer to an unreadable request is problem+json."""

    head_timeout_s = HEAD_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # uvicorn arms its keep-alive timeout only after an answer: the first request gets
        # the same time to begin.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        self._refuse(
            408,
            "request-timeout",
            "Request timeout",
            f"The request's line and headers did not all arrive within {self.head_timeout_s:g}"
            " seconds; the connection is closed",
        )

    def send_400_response(self, msg: str) -> None:
        url: bytes = getattr(self, "url", b"")
        if len(url) > PARSER_MAX_URL_BYTES:
            self._refuse(
                414,
                "uri-too-long",
                "URI too long",
                f"The URL is longer than {PARSER_MAX_URL_BYTES:,} bytes; Rapport reads at most "
                f"{MAX_URL_BYTES:,} (path and query string): send fewer or shorter values",
            )
        else:
            self._refuse(
                400,
                "bad-request",
                "Bad request",
                "The request is not valid HTTP/1.1, so it was not read",
            )

    def _refuse(self, status: int, slug: str, title: str, detail: str) -> None:
        """Answer ``status`` as problem+json, before any application saw the request, and
        close the connection."""
        self._stop_head_timer()
        url: bytes = getattr(self, "url", b"")
        problem = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status}
        problem["detail"] = detail
        path = url.partition(b"?")[0][:200].decode("latin-1")
        if path.startswith("/"):
            problem["instance"] = path
        body = json.dumps(problem).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
