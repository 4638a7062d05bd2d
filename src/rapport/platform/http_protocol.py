"""uvicorn's HTTP/1.1 protocol (httptools), answering a request it cannot read with
problem+json like every other refusal, where uvicorn answers a plain-text
``400 Invalid HTTP request received.``: a request target over 65,535 bytes (the most httptools
reads) is ``414`` saying how long it is and what Rapport reads, anything else that is not
HTTP/1.1 a ``400``. Such a request never reaches the application, whose own limit
(``middleware.RequestHeadLimit``, 8 KiB) a URL that grows meets first.

``rapport serve`` passes :class:`ProblemHttpProtocol` to uvicorn as its ``http`` protocol.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from rapport.platform.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from rapport.platform.middleware import MAX_URL_BYTES

# The longest request target httptools reads (its URL offsets are 16 bits).
PARSER_MAX_URL_BYTES = 65_535


class ProblemHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` whose answer to an unreadable request is problem+json."""

    def send_400_response(self, msg: str) -> None:
        url: bytes = getattr(self, "url", b"")
        if len(url) > PARSER_MAX_URL_BYTES:
            status, slug, title = 414, "uri-too-long", "URI too long"
            detail = (
                f"The URL is longer than {PARSER_MAX_URL_BYTES:,} bytes; Rapport reads at most "
                f"{MAX_URL_BYTES:,} (path and query string): send fewer or shorter values"
            )
        else:
            status, slug, title = 400, "bad-request", "Bad request"
            detail = "The request is not valid HTTP/1.1, so it was not read"
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
