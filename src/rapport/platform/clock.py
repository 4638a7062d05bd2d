"""One injectable clock, so tests can move time instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _now()


# How far ahead of this server's clock a sender's time may be: devices and tills drift a
# little; a time further ahead is a wrong clock or a typo, refused rather than stored.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def is_in_future(at: datetime) -> bool:
    """Whether ``at`` (a time a client sent) lies beyond :data:`MAX_CLOCK_SKEW` from now."""
    return at > now() + MAX_CLOCK_SKEW


def set_clock(func: Callable[[], datetime]) -> None:
    global _now
    _now = func


def reset_clock() -> None:
    set_clock(lambda: datetime.now(UTC))


class FrozenClock:
    """A clock that stands still until told to advance (for tests and simulations)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every value we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
