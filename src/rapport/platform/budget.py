"""A time budget for each request, so that no request can hold a server for good.

The :class:`~rapport.platform.middleware.RequestBudget` middleware gives every HTTP request a
deadline (``RAPPORT_REQUEST_TIMEOUT_SECONDS`` from its start). Two things enforce it:

- Loops that could run long call :func:`check`, which raises :class:`OutOfTime` (a ``503``
  problem with ``Retry-After``) once the deadline has passed. This is the only way to stop work
  that runs on the event loop itself (a coroutine that never awaits cannot be cancelled) or in a
  worker thread (threads cannot be stopped from outside).
- A read (``GET``/``HEAD``) that has not begun its answer by the deadline is answered ``503`` by
  the middleware at once, whatever its handler is waiting for.

The deadline lives in a context variable: it follows the request into the tasks and worker
threads it starts (asyncio and anyio copy the context), and outside a request (the CLI, the job
worker, tests calling services) there is none and :func:`check` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from rapport.platform.errors import Problem

RETRY_AFTER_SECONDS = 2

_deadline: ContextVar[float | None] = ContextVar("rapport_request_deadline", default=None)


class OutOfTime(Problem):
    """The request used up its time budget; nothing was changed by it."""

    status, slug, title = 503, "out-of-time", "Request took too long"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail
            or "The request took longer than this server allows and was stopped; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def start(seconds: float) -> Token[float | None]:
    """Give the current context a deadline ``seconds`` from now; pass the token to
    :func:`finish`."""
    return _deadline.set(time.monotonic() + seconds)


def finish(token: Token[float | None]) -> None:
    _deadline.reset(token)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """A deadline for the work inside the block (for code that runs outside a request)."""
    token = start(seconds)
    try:
        yield
    finally:
        finish(token)


def remaining() -> float | None:
    """Seconds left before the deadline (negative once past), ``None`` without a deadline."""
    ends = _deadline.get()
    return None if ends is None else ends - time.monotonic()


def check() -> None:
    """Raise :class:`OutOfTime` when the current request's deadline has passed. Cheap enough
    for every iteration of a loop that might run long."""
    ends = _deadline.get()
    if ends is not None and time.monotonic() > ends:
        raise OutOfTime()
