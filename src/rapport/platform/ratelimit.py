"""Per-API-key rate limits, shared by every server process, with the IETF RateLimit fields.

Each API key may make ``RAPPORT_API_RATE_LIMIT`` requests (or its own ``api_keys.rate_limit``),
written in the notation of the `limits` library: ``"120000/minute"``, several joined by ``;``
(``"200/second;120000/minute"``). Requests are counted with the library's sliding window
counter, where the key is checked (:mod:`rapport.platform.auth`), so every endpoint counts,
the coupon routes included. Coupon codes also count, one per code looked up, toward a
tighter per-key limit (``RAPPORT_COUPON_RATE_LIMIT``; see ``auth.admit_coupon_codes``).

A request over the limit gets ``429`` problem+json with ``Retry-After``; every admitted request
is answered with ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers):

    RateLimit-Policy: "key-60s";q=120000;w=60
    RateLimit: "key-60s";r=119873;t=41

The counts live in a small memory-mapped file in the data directory (:class:`SharedFileStorage`,
a `limits` storage): every process of ``rapport serve --processes N`` maps the same file and
updates it under an ``flock``, a few microseconds a request and no database round trip. Servers
on several hosts set ``RAPPORT_RATE_LIMIT_STORAGE`` to a shared `limits` storage instead
(``redis://host:6379``; that needs the ``redis`` package).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError
from limits.storage import SlidingWindowCounterSupport, Storage, storage_from_string
from limits.storage.base import TimestampedSlidingWindow
from limits.strategies import (
    FixedWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from rapport.platform.errors import InvalidInput, Problem

log = logging.getLogger(__name__)

STORAGE_FILE = "rate-limits.bin"
FILE_SCHEME = "rapport-file"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


def parse_limit(text: str, *, field: str = "rate_limit") -> list[RateLimitItem]:
    """``"100/second;5000/hour"`` as `limits` items, or a 422 naming ``field``."""
    try:
        items = parse_many(text)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a rate limit; write it as '100/second' or '100/second;5000/hour'",
            field=field,
        ) from None
    if any(item.amount < 1 for item in items):
        raise InvalidInput("A rate limit allows at least 1 request", field=field)
    return list(items)


# --- a `limits` storage shared by the processes of one host -----------------------------------

_MAGIC = b"RAPRL001"
_HEADER = struct.Struct("<8sI")  # magic, slot count
_HEADER_BYTES = 64
_SLOT = struct.Struct("<Qdq")  # key digest (0: never used), expires at (epoch s), count
_SLOT_BYTES = 32
DEFAULT_SLOTS = 16_384  # 512 KiB: two windows per key and policy, for thousands of keys
_MAX_PROBE = 64


# Digests of recent keys (a key and its window index repeat for a whole window).
_DIGESTS: dict[str, int] = {}


def _key_digest(key: str) -> int:
    found = _DIGESTS.get(key)
    if found is None:
        if len(_DIGESTS) > 50_000:
            _DIGESTS.clear()
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        found = _DIGESTS[key] = digest or 1  # 0 marks a slot never used
    return found


class SharedFileStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """Counters in a memory-mapped file: an open-addressed table of (key digest, expiry,
    count) slots, read and written under an exclusive ``flock`` (and a lock for this process's
    threads). Expired slots are reused; a full neighbourhood admits (counts nothing) rather
    than refusing. URI: ``rapport-file:///absolute/path``."""

    STORAGE_SCHEME = [FILE_SCHEME]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        path = Path(urllib.parse.urlparse(uri or "").path)
        if not path.name:
            raise ConfigurationError(f"{FILE_SCHEME}:// needs a file path, got {uri!r}")
        slots = int(options.get("slots", DEFAULT_SLOTS))
        path.parent.mkdir(parents=True, exist_ok=True)
        size = _HEADER_BYTES + slots * _SLOT_BYTES
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._thread_lock = threading.Lock()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            existing = os.fstat(self._fd).st_size
            if existing >= _HEADER_BYTES:
                magic, found_slots = _HEADER.unpack(os.pread(self._fd, _HEADER.size, 0))
                if magic == _MAGIC:
                    slots, size = found_slots, _HEADER_BYTES + found_slots * _SLOT_BYTES
                else:
                    existing = 0
            if existing < size:
                os.ftruncate(self._fd, size)
                os.pwrite(self._fd, _HEADER.pack(_MAGIC, slots), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._slots = slots
        self._map = mmap.mmap(self._fd, size)
        # (counter key, window) -> (window index, previous and current windows' digests)
        self._window_digests: dict[tuple[str, int], tuple[int, int, int]] = {}
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return OSError

    # Every public method holds both locks for its whole read-modify-write.
    def _locked(self) -> _Locked:
        return _Locked(self._thread_lock, self._fd)

    def _find(self, digest: int, now: float, *, create: bool) -> int | None:
        """The slot offset holding ``digest`` (live), or, with ``create``, one to take."""
        start = digest % self._slots
        reusable: int | None = None
        for step in range(_MAX_PROBE):
            offset = _HEADER_BYTES + ((start + step) % self._slots) * _SLOT_BYTES
            held, expires, _count = _SLOT.unpack_from(self._map, offset)
            if held == digest:
                if expires > now or create:
                    return offset
                return None
            if held == 0:
                return (reusable if reusable is not None else offset) if create else None
            if reusable is None and expires <= now:
                reusable = offset
        return reusable if create else None

    def _get(self, key: str, now: float) -> int:
        return self._count_of(_key_digest(key), now)

    def _count_of(self, digest: int, now: float) -> int:
        offset = self._find(digest, now, create=False)
        if offset is None:
            return 0
        _held, expires, count = _SLOT.unpack_from(self._map, offset)
        return int(count) if expires > now else 0

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        return self._add(_key_digest(key), expiry, amount, now)

    def _add(self, digest: int, expiry: float, amount: int, now: float) -> int:
        offset = self._find(digest, now, create=True)
        if offset is None:
            return amount  # no room nearby: admit rather than refuse
        held, expires, count = _SLOT.unpack_from(self._map, offset)
        if held != digest or expires <= now:
            expires, count = now + expiry, 0
        count += amount
        _SLOT.pack_into(self._map, offset, digest, expires, count)
        return int(count)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        with self._locked():
            return self._incr(key, expiry, amount, time.time())

    def get(self, key: str) -> int:
        with self._locked():
            return self._get(key, time.time())

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._locked():
            offset = self._find(_key_digest(key), now, create=False)
            if offset is None:
                return now
            return float(_SLOT.unpack_from(self._map, offset)[1])

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._locked():
            self._map[_HEADER_BYTES:] = bytes(len(self._map) - _HEADER_BYTES)
        return None

    def clear(self, key: str) -> None:
        with self._locked():
            offset = self._find(_key_digest(key), time.time(), create=False)
            if offset is not None:
                held = _SLOT.unpack_from(self._map, offset)[0]
                _SLOT.pack_into(self._map, offset, held, 0.0, 0)

    # The sliding window counter: the check and the increment in one turn at the lock, so
    # processes racing at the limit cannot both pass.
    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        with self._locked():
            now = time.time()
            previous, previous_ttl, current, _ = self._window(key, expiry, now)
            if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
                return False
            self._incr(self.sliding_window_keys(key, expiry, now)[1], 2 * expiry, amount, now)
            return True

    def acquire_with_window(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, int, float, int, float]:
        """:meth:`acquire_sliding_window_entry` and then :meth:`get_sliding_window`, in one
        turn at the lock: what a request pays for its limit on the hot path."""
        now = time.time()
        index = int(now / expiry)
        found = self._window_digests.get((key, expiry))
        if found is None or found[0] != index:
            previous_key, current_key = self.sliding_window_keys(key, expiry, now)
            found = (index, _key_digest(previous_key), _key_digest(current_key))
            self._window_digests[(key, expiry)] = found
        _, previous_digest, current_digest = found
        self._thread_lock.acquire()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            previous = self._count_of(previous_digest, now)
            current = self._count_of(current_digest, now)
            previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
            allowed = math.floor(previous * previous_ttl / expiry + current) + amount <= limit
            if allowed:
                current = self._add(current_digest, 2 * expiry, amount, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._thread_lock.release()
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return allowed, previous, previous_ttl, current, current_ttl

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        with self._locked():
            return self._window(key, expiry, time.time())

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._get(previous_key, now)
        current = self._get(current_key, now)
        previous_ttl = 0.0 if previous == 0 else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous, previous_ttl, current, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        for window_key in self.sliding_window_keys(key, expiry, time.time()):
            self.clear(window_key)


class _Locked:
    __slots__ = ("_fd", "_lock")

    def __init__(self, lock: threading.Lock, fd: int) -> None:
        self._lock = lock
        self._fd = fd

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


# --- the limits of API keys -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Policy:
    item: RateLimitItem
    name: str
    header: str  # this policy's RateLimit-Policy item
    window: int


@dataclass(frozen=True, slots=True)
class _Plan:
    """A key's policies, and their RateLimit-Policy field (the same on every answer)."""

    policies: tuple[_Policy, ...]
    policy_field: str
    policy_bytes: bytes


def _policies(items: list[RateLimitItem], *, prefix: str = "key") -> _Plan:
    found = []
    for item in items:
        window = item.get_expiry()
        name = f"{prefix}-{window}s"
        found.append(_Policy(item, name, f'"{name}";q={item.amount};w={window}', window))
    field = ", ".join(policy.header for policy in found)
    return _Plan(tuple(found), field, field.encode())


class ApiRateLimits:
    """Counts each API key's requests against its policies (its own limit, else the default);
    and the coupon codes they look up against the tighter ``coupons`` policies, per key."""

    def __init__(self, *, default: str, storage: Storage, coupons: str = "") -> None:
        self.default = _policies(parse_limit(default, field="RAPPORT_API_RATE_LIMIT"))
        self.coupons = (
            _policies(parse_limit(coupons, field="RAPPORT_COUPON_RATE_LIMIT"), prefix="coupons")
            if coupons.strip()
            else None
        )
        self.storage = storage
        self.strategy: RateLimiter = (
            SlidingWindowCounterRateLimiter(storage)
            if isinstance(storage, SlidingWindowCounterSupport)
            else FixedWindowRateLimiter(storage)
        )
        self._own: dict[str, _Plan] = {}
        self._file = storage if isinstance(storage, SharedFileStorage) else None
        self._counter_keys: dict[tuple[str, str], str] = {}

    def policies_for(self, own_limit: str | None) -> _Plan:
        if not own_limit:
            return self.default
        found = self._own.get(own_limit)
        if found is None:
            try:
                found = _policies(parse_limit(own_limit))
            except InvalidInput:
                log.warning("an API key's rate limit %r is invalid; using the default", own_limit)
                found = self.default
            self._own[own_limit] = found
        return found

    def hit(self, key_id: str, own_limit: str | None) -> list[tuple[bytes, bytes]]:
        """Count one request of ``key_id``: the RateLimit header fields to answer with, or
        :class:`TooManyRequests` (its headers included) when a policy is used up."""
        return self._hit(self.policies_for(own_limit), key_id)

    def hit_coupons(
        self, key_id: str, counted: list[tuple[bytes, bytes]] | None, *, codes: int
    ) -> list[tuple[bytes, bytes]] | None:
        """Count ``codes`` coupon codes looked up by ``key_id`` against its coupon policies
        only, for a request that its key's limit counted already (``counted``: the RateLimit
        fields that gave, kept ahead of the coupon policies' own). The fields to answer with,
        or :class:`TooManyRequests` (and nothing counted) when the codes do not fit."""
        if self.coupons is None:
            return counted
        return self._hit(
            self.coupons, key_id, earlier=dict(counted) if counted else None, cost=codes
        )

    def _hit(
        self,
        plan: _Plan,
        key_id: str,
        *,
        earlier: dict[bytes, bytes] | None = None,
        cost: int = 1,
    ) -> list[tuple[bytes, bytes]]:
        policy_field, policy_bytes = plan.policy_field, plan.policy_bytes
        if earlier and b"ratelimit-policy" in earlier:
            policy_field = f"{earlier[b'ratelimit-policy'].decode()}, {policy_field}"
            policy_bytes = policy_field.encode()
        now = time.time()
        states: list[str] = []
        if earlier and b"ratelimit" in earlier:
            states.append(earlier[b"ratelimit"].decode())
        violated: list[_Policy] = []
        retry_after = 0
        for policy in plan.policies:
            allowed, remaining, reset_at = self._count(policy, key_id, now, cost)
            seconds = max(0, math.ceil(reset_at - now))
            if not allowed:
                violated.append(policy)
                retry_after = max(retry_after, seconds, 1)
            states.append(f'"{policy.name}";r={remaining};t={seconds}')
        state_field = states[0] if len(states) == 1 else ", ".join(states)
        if violated:
            names = [policy.name for policy in violated]
            refusal = TooManyRequests(
                f"This API key made more requests than its limit allows ({', '.join(names)});"
                f" retry in {retry_after} s",
                field="Authorization",
                headers={
                    "Retry-After": str(retry_after),
                    "RateLimit-Policy": policy_field,
                    "RateLimit": state_field,
                },
            )
            # The draft's problem member for the policies used up (not a Python name).
            refusal.extra["violated-policies"] = names
            raise refusal
        return [(b"ratelimit-policy", policy_bytes), (b"ratelimit", state_field.encode())]

    def _count(
        self, policy: _Policy, key_id: str, now: float, cost: int = 1
    ) -> tuple[bool, int, float]:
        """``cost`` (one request, or as many coupon codes) against ``policy``: admitted, how
        much is left, when the window resets."""
        if self._file is None:
            allowed = self.strategy.hit(policy.item, key_id, cost=cost)
            reset_at, remaining = self.strategy.get_window_stats(policy.item, key_id)
            return allowed, remaining, reset_at
        counter_key = self._counter_keys.get((policy.name, key_id))
        if counter_key is None:
            if len(self._counter_keys) > 10_000:
                self._counter_keys.clear()
            counter_key = self._counter_keys[(policy.name, key_id)] = policy.item.key_for(key_id)
        # The file storage takes and reads the window in one turn at its lock; what follows
        # is SlidingWindowCounterRateLimiter.get_window_stats on those figures.
        allowed, previous, previous_ttl, current, current_ttl = self._file.acquire_with_window(
            counter_key, policy.item.amount, policy.window, cost
        )
        weighted = previous * previous_ttl / policy.window + current
        remaining = max(0, policy.item.amount - math.floor(weighted))
        resets_in = math.inf
        if previous:
            resets_in = previous_ttl % (policy.window / previous)
        if current:
            resets_in = min(resets_in, current_ttl % policy.window)
        return allowed, remaining, now + (0.0 if math.isinf(resets_in) else resets_in)


def from_settings(
    *, limit: str, storage: str, data_dir: Path, coupons: str = ""
) -> ApiRateLimits | None:
    """The limits an app applies, or ``None`` when ``limit`` is empty (no limits)."""
    if not limit.strip():
        return None
    uri = storage or f"{FILE_SCHEME}://{(data_dir / STORAGE_FILE).resolve()}"
    try:
        backend = storage_from_string(uri)
    except ConfigurationError as error:  # its client library is not installed, say
        raise InvalidInput(str(error), field="RAPPORT_RATE_LIMIT_STORAGE") from None
    if not isinstance(backend, Storage):
        raise ConfigurationError(f"RAPPORT_RATE_LIMIT_STORAGE {storage!r} is an async storage")
    return ApiRateLimits(default=limit, storage=backend, coupons=coupons)


# Where an admitted request's RateLimit fields wait for its answer (the ASGI scope's state).
STATE_KEY = "rate_limit_headers"


class RateLimitHeaders:
    """Add the RateLimit fields that :func:`rapport.platform.auth.admit` left in the request's
    state to its answer (a 429 carries its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state")
                fields = state.get(STATE_KEY) if state else None
                if fields:
                    message["headers"] = [*message.get("headers", ()), *fields]
            await send(message)

        await self.app(scope, receive, with_fields)
