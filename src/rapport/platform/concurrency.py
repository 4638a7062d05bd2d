"""A small thread pool for the blocking work of command endpoints (points, orders).

Blocking endpoints share anyio's default pool of 40 threads a process. For short commands that
are mostly Python, many threads mostly fight over the GIL: on two cores, 32 concurrent loyalty
commands ran at about 100/s through the default pool and at 180-220/s through 2-4 threads. The
default pool stays large for everything else (single tracking events wait on each other in it
through group commit and need the threads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar

COMMAND_THREADS = 4
_limiter: RunVar[CapacityLimiter] = RunVar("rapport_command_limiter")

T = TypeVar("T")


async def run_command(func: Callable[[], T]) -> T:
    """Run ``func`` in a worker thread of the command pool (one pool per event loop)."""
    try:
        limiter = _limiter.get()
    except LookupError:
        limiter = CapacityLimiter(COMMAND_THREADS)
        _limiter.set(limiter)
    return await to_thread.run_sync(func, limiter=limiter)
