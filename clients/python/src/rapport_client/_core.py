"""What the sync and async clients share, written once: the options, how a call becomes an
HTTP request, when and how long to wait before retrying, and how an answer becomes a result or
an error. The retry loop is a generator that yields what to do next (send this request, sleep
this long) and is sent what happened; each client only drives it with its own transport."""

from __future__ import annotations

import email.utils
import json
import random
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import httpx

from rapport_client._endpoints import Endpoint, Repeat, known_repeat
from rapport_client._version import __version__
from rapport_client.errors import ConnectionFailed, FieldError, RapportError, error_class

T = TypeVar("T")

USER_AGENT = f"rapport-client/{__version__}"
IDEMPOTENCY_HEADER = "Idempotency-Key"
COMMANDS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Gateways answer these when the server behind them did not (or may not have) answered.
GATEWAY_STATUSES = frozenset({502, 504})

QueryValue = str | int | float | bool | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class Options:
    """How a client talks to Rapport (see :class:`rapport_client.Rapport` for each one)."""

    base_url: str
    api_key: str
    timeout: float = 10.0
    max_attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the ``httpx.Client`` / ``httpx.AsyncClient`` underneath."""
        return {
            "base_url": self.base_url.rstrip("/"),
            "timeout": self.timeout,
            "headers": {
                "Authorization": f"Bearer {self.api_key}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json, application/problem+json",
            },
        }


def _identity(body: Any) -> Any:
    return body


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call, ready to send: what the typed methods build and the clients execute.
    ``parse`` turns the decoded JSON answer into the method's result."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, QueryValue] | None = None
    idempotency_key: str | None = None
    repeat: Repeat = "none"
    parse: Callable[[Any], T] = field(default=cast(Callable[[Any], T], _identity))

    @classmethod
    def to(
        cls,
        endpoint: Endpoint,
        *,
        path: str | None = None,
        json: Any = None,
        params: Mapping[str, QueryValue] | None = None,
        idempotency_key: str | None = None,
        parse: Callable[[Any], T] | None = None,
    ) -> Call[T]:
        """A call of ``endpoint`` (``path``: the template filled in, when it has placeholders)."""
        unknown = set(params or {}) - set(endpoint.query)
        if unknown:  # the endpoint table is what the OpenAPI test checks; keep to it
            raise ValueError(f"{endpoint.template} takes no query parameter {sorted(unknown)}")
        return cls(
            method=endpoint.method,
            path=path or endpoint.template,
            json=json,
            params=params,
            idempotency_key=idempotency_key,
            repeat=endpoint.repeat,
            parse=parse or cast(Callable[[Any], T], _identity),
        )


def generic_call(
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, QueryValue] | None = None,
    idempotency_key: str | None = None,
    repeat: Repeat | None = None,
) -> Call[Any]:
    """A call of any route; how a repeat is answered comes from ``repeat``, else the endpoint
    table, else the method (reads and PUTs repeat harmlessly; other commands may not)."""
    method = method.upper()
    if repeat is None:
        by_method: Repeat = "natural" if method in ("GET", "HEAD", "PUT") else "none"
        repeat = known_repeat(method, path) or by_method
    return Call(
        method=method,
        path=path,
        json=json,
        params=params,
        idempotency_key=idempotency_key,
        repeat=repeat,
    )


@dataclass(frozen=True, slots=True)
class Send:
    """Send this request (the driver answers with the ``httpx.Response`` or the
    ``httpx.TransportError`` it got)."""

    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds (the driver answers with ``None``)."""

    seconds: float


Step = Send | Sleep
Outcome = httpx.Response | httpx.TransportError | None
Plan = Generator[Step, Outcome, Any]


def clean_params(params: Mapping[str, QueryValue] | None) -> dict[str, Any]:
    """Query parameters without the ``None``s, booleans as ``true``/``false``."""
    cleaned: dict[str, Any] = {}
    for name, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            cleaned[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            cleaned[name] = value
        else:
            cleaned[name] = list(value)
    return cleaned


def iso(moment: datetime | str | None) -> str | None:
    """A moment as ISO 8601 text (Rapport refuses naive times, so they stay naive here and the
    server names the field)."""
    if moment is None or isinstance(moment, str):
        return moment
    return moment.isoformat()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def without_none(**values: Any) -> dict[str, Any]:
    """A JSON body without the arguments left out (so the server's defaults apply)."""
    return {name: value for name, value in values.items() if value is not None}


class Core:
    """The shared half of :class:`Rapport` and :class:`AsyncRapport`."""

    def __init__(self, options: Options, *, random_source: random.Random | None = None) -> None:
        self.options = options
        self._random = random_source or random.Random()

    def plan(self, call: Call[T]) -> Plan:
        """Send ``call``, retrying what is safe to retry; return its parsed result or raise."""
        request = self._request(call)
        attempt = 0
        while True:
            attempt += 1
            outcome = yield Send(request)
            assert outcome is not None
            delay = self._retry_delay(call, attempt, outcome)
            if delay is None:
                return self._result(call, outcome)
            yield Sleep(delay)

    def _request(self, call: Call[Any]) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if call.method in COMMANDS:
            # One key for the call, reused by every retry: the server answers a repeat with
            # the stored result instead of applying it again.
            headers[IDEMPOTENCY_HEADER] = call.idempotency_key or str(uuid.uuid4())
        request: dict[str, Any] = {
            "method": call.method,
            "url": call.path,
            "headers": headers,
            "params": clean_params(call.params),
        }
        if call.json is not None:
            request["content"] = json.dumps(call.json, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        return request

    def _retry_delay(self, call: Call[Any], attempt: int, outcome: Outcome) -> float | None:
        """Seconds to wait before trying ``call`` again, or ``None`` to stop here."""
        if attempt >= self.options.max_attempts:
            return None
        if isinstance(outcome, httpx.TransportError):
            if _never_sent(outcome) or call.repeat != "none":
                return self._backoff(attempt)
            return None  # it may have been applied, and a repeat could apply it twice
        assert isinstance(outcome, httpx.Response)
        status = outcome.status_code
        # Answers that say nothing was done: over the rate limit, out of time, or the same
        # key's command still running (Rapport's 409 names the Idempotency-Key).
        not_done = status in (429, 503) or (
            status == 409 and _problem(outcome).get("field") == IDEMPOTENCY_HEADER
        )
        if not (not_done or (status in GATEWAY_STATUSES and call.repeat != "none")):
            return None
        wait = retry_after(outcome)
        if wait is None:
            return self._backoff(attempt)
        if wait > self.options.max_retry_after:
            return None
        return wait + self._random.uniform(0, min(1.0, wait / 10))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: half the step fixed, half random."""
        step: float = min(self.options.max_backoff, self.options.backoff * 2.0 ** (attempt - 1))
        return step / 2 + self._random.uniform(0, step / 2)

    def _result(self, call: Call[T], outcome: Outcome) -> T:
        if isinstance(outcome, httpx.TransportError):
            detail = f"{type(outcome).__name__}: {outcome}"
            raise ConnectionFailed(None, "No answer from Rapport", detail) from outcome
        assert isinstance(outcome, httpx.Response)
        if outcome.is_success:
            body = outcome.json() if outcome.content else None
            return call.parse(body)
        raise problem_error(outcome)


def _never_sent(error: httpx.TransportError) -> bool:
    """Whether the request surely did not reach the server (so any method may be retried)."""
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (given as seconds or as an HTTP date), if the answer has it."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def problem_error(response: httpx.Response) -> RapportError:
    """The exception for an error answer, from its problem+json body where it has one."""
    problem = _problem(response)
    status = response.status_code
    errors = problem.get("errors")
    return error_class(status)(
        status,
        str(problem.get("title") or response.reason_phrase or "Error"),
        str(problem.get("detail") or ""),
        type=str(problem.get("type") or "about:blank"),
        field=problem.get("field") if isinstance(problem.get("field"), str) else None,
        errors=cast(list[FieldError], errors) if isinstance(errors, list) else None,
        instance=problem.get("instance") if isinstance(problem.get("instance"), str) else None,
        retry_after=retry_after(response),
        body=problem,
    )
