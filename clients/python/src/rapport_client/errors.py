"""Rapport's RFC 9457 problem answers as exceptions: one class per kind of failure, each
carrying the problem's status, title, detail, the ``field`` it names and its ``errors``."""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class FieldError(TypedDict):
    """One entry of a problem's ``errors``: which input was wrong and why."""

    field: str
    location: Literal["body", "query", "path", "header"]
    pointer: str
    message: str
    code: str


class RapportError(Exception):
    """Base of every error the client raises. ``status`` is the HTTP status, or ``None`` when
    no answer came (see :class:`ConnectionFailed`)."""

    def __init__(
        self,
        status: int | None,
        title: str,
        detail: str = "",
        *,
        type: str = "about:blank",
        field: str | None = None,
        errors: list[FieldError] | None = None,
        instance: str | None = None,
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.field = field
        self.errors: list[FieldError] = errors or []
        self.instance = instance
        self.retry_after = retry_after
        self.body: dict[str, Any] = body or {}
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.status} {self.title}" if self.status is not None else self.title
        if self.detail:
            text += f": {self.detail}"
        if self.field:
            text += f" (field {self.field})"
        return text


class InvalidInput(RapportError):
    """400, 413 or 422: the request was malformed, too large or invalid; fix it, do not retry."""


class Unauthorized(RapportError):
    """401: no key, or an unknown or revoked key."""


class Forbidden(RapportError):
    """403: the key lacks the endpoint's scope (``body["required_scope"]`` names it)."""


class NotFound(RapportError):
    """404: no such resource (``field`` names the identifier)."""


class Conflict(RapportError):
    """409: the request clashes with existing data (or a command with the same
    Idempotency-Key was still running after every retry)."""


class RateLimited(RapportError):
    """429: over the key's rate limit after every retry; ``retry_after`` says when to retry."""


class ServerError(RapportError):
    """5xx: the server failed or ran out of time after every retry."""


class ConnectionFailed(RapportError):
    """No answer came (connection refused, dropped or timed out) after every retry; the cause
    is the underlying ``httpx`` error."""


def error_class(status: int) -> type[RapportError]:
    """The exception class for an HTTP error status."""
    if status in (400, 413, 422):
        return InvalidInput
    by_status: dict[int, type[RapportError]] = {
        401: Unauthorized,
        403: Forbidden,
        404: NotFound,
        409: Conflict,
        429: RateLimited,
    }
    if status in by_status:
        return by_status[status]
    return ServerError if status >= 500 else RapportError
