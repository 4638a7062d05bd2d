"""Webhook deliveries (a retailer's push or SMS gateway, any system) with httpx.

Each try POSTs the message as JSON with two headers:

- ``Rapport-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``: the
  receiver recomputes it over the raw body with the endpoint's secret, compares in constant
  time and refuses old timestamps (replays);
- ``Rapport-Delivery-Id``: the same on every try of a delivery, so that receivers
  de-duplicate (a try whose answer was lost is sent again).

5xx answers, 408, 429, timeouts and connection errors are retried with exponential backoff
(``next_attempt_at``); after the endpoint's ``max_attempts`` the delivery is ``dead`` and can
be replayed from the admin page or the API. Other 4xx answers are final. Every try is stored
in ``campaign_webhook_attempts`` with its status code and duration.

Webhooks do not reach inside the host's own networks unless the operator lists them in
``RAPPORT_WEBHOOK_ALLOWED_NETWORKS``: an endpoint whose host is in one of IANA's
special-purpose ranges that are not globally reachable (``_DENIED``: loopback, private,
link-local (cloud metadata), documentation, 192.0.0.0/24 …), ``localhost``, or an IPv4 address
in a numeric shorthand (``2130706433``, ``0177.0.0.1``) or written as IPv6 (``::ffff:127.0.0.1``,
refused whatever the setting) is refused when it is saved (``check_url``),
and each try resolves the host itself, refuses it if any of its addresses is such an address
and connects to the address it checked (``GuardedBackend``), so a name that resolves to
another address between the check and the connection (DNS rebinding) gets nowhere. A refused
try is final (``dead``, replayable once the operator allowed the network) and stores no
timing. The client takes no proxy from the environment.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.models import Delivery, DeliveryStatus, WebhookAttempt, WebhookEndpoint
from rapport.customers import service as customers
from rapport.platform import clock
from rapport.platform.errors import Conflict, InvalidInput, NotFound
from rapport.platform.idempotency import BeforeCommit
from rapport.platform.settings import (
    WEBHOOK_ALLOWED_NETWORKS_SETTING,
    Network,
    Settings,
    get_settings,
)

SIGNATURE_HEADER = "Rapport-Signature"
DELIVERY_HEADER = "Rapport-Delivery-Id"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
RETRIED_STATUS = frozenset({408, 429})


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ranges(*pairs: tuple[str, str]) -> tuple[tuple[Network, str], ...]:
    return tuple((ipaddress.ip_network(cidr), kind) for cidr, kind in pairs)


# IANA's special-purpose ranges that are not globally reachable, each with what it is, listed
# rather than left to ``ipaddress``'s flags (Python 3.11.7 calls 192.0.0.8 global); the first
# range holding an address names it. Addresses outside them that ``ipaddress`` still does not
# call global are refused as reserved.
_DENIED = _ranges(
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a 'this network' address (0.0.0.0/8)"),
    ("10.0.0.0/8", "a private network address (10.0.0.0/8)"),
    ("100.64.0.0/10", "a shared carrier-grade NAT address (100.64.0.0/10)"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
    ("172.16.0.0/12", "a private network address (172.16.0.0/12)"),
    ("192.0.0.0/24", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address (192.0.2.0/24)"),
    ("192.88.99.0/24", "a 6to4 relay anycast address (192.88.99.0/24)"),
    ("192.168.0.0/16", "a private network address (192.168.0.0/16)"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
    ("198.51.100.0/24", "a documentation address (198.51.100.0/24)"),
    ("203.0.113.0/24", "a documentation address (203.0.113.0/24)"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address (64:ff9b:1::/48)"),
    ("100::/64", "a discard-only address (100::/64)"),
    ("2001:db8::/32", "a documentation address (2001:db8::/32)"),
    ("3fff::/20", "a documentation address (3fff::/20)"),
    ("fec0::/10", "a site-local address (fec0::/10, deprecated: private use)"),
    ("2001::/23", "an IETF protocol assignment address (2001::/23)"),
    ("fc00::/7", "a unique local (private network) address (fc00::/7)"),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
)
# IPv6 ranges that carry an IPv4 address a gateway reaches: they are what that address is.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


class DestinationRefused(Exception):
    """A webhook's host is, or resolves to, an address inside the host's own networks."""


def address_refusal(address: IPAddress, allowed: Sequence[Network]) -> str | None:
    """What ``address`` is when a webhook may not reach it ("a loopback address"), or None
    when it may: a public address, or one inside a network of ``allowed``. An IPv4 address
    written as IPv6 (``::ffff:127.0.0.1``) is refused whatever ``allowed`` says, saying how
    to write it, so that one address is judged in one form only."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"an IPv4 address written as IPv6 (write it as {address.ipv4_mapped})"
    if any(address.version == network.version and address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address) and (address in _NAT64 or address in _SIXTOFOUR):
        carried = address.sixtofour or ipaddress.IPv4Address(address.packed[-4:])
        which = "a NAT64" if address in _NAT64 else "a 6to4"
        refused = address_refusal(carried, allowed)
        return refused and f"{which} address carrying {carried}, {refused}"
    kind = next((kind for network, kind in _DENIED if address in network), None)
    if kind is None and (address.is_reserved or not address.is_global):
        kind = "a reserved address (not globally reachable)"
    return kind


def host_refusal(host: str, allowed: Sequence[Network]) -> str | None:
    """Why a webhook may not be sent to ``host`` as written in its URL, or None: a loopback
    name, an IPv4 address in a numeric shorthand, or an address ``address_refusal`` refuses.
    A host name's addresses are checked at each try (``GuardedBackend``)."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        refused = address_refusal(ipaddress.IPv4Address("127.0.0.1"), allowed)
        return refused and "a loopback name"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        dotted = dotted_quad(name)
        return dotted and shorthand_refusal(dotted)  # None: a host name
    return address_refusal(address, allowed)


def dotted_quad(host: str) -> str | None:
    """``host`` as a dotted IPv4 address when the C library reads it as one (``127.1``,
    ``0177.0.0.1``, ``2130706433``), else None."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def shorthand_refusal(dotted: str) -> str:
    return f"an IPv4 address in a numeric shorthand (write it as {dotted})"


def refusal_text(host: str, refusal: str) -> str:
    """The message of a refused destination: what ``host`` is, and what to do about it."""
    if "(write it as " in refusal:  # refused whatever the networks allowed
        return (
            f"{host} is {refusal}: webhooks take an IPv4 address only as four decimal numbers"
            f" with dots, which {WEBHOOK_ALLOWED_NETWORKS_SETTING} is checked against"
            " (docs/webhooks.md)"
        )
    return (
        f"{host} is {refusal}: webhooks do not reach the host's own networks. An operator "
        f"allows a network by listing it in {WEBHOOK_ALLOWED_NETWORKS_SETTING} "
        "(docs/webhooks.md)"
    )


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses ``address_refusal`` lets through: it resolves the host,
    refuses the connection when any of its addresses is refused, and connects to the
    addresses it checked (TLS still names the URL's host)."""

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"{host}: {error}") from error
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
        for address in addresses:
            if refused := address_refusal(address, self.allowed):
                raise DestinationRefused(
                    refusal_text(f"{host} resolves to an address that", refused)
                )
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure or httpcore.ConnectError(f"{host} has no address")


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport whose connections go through ``GuardedBackend``, no proxy."""

    def __init__(self, allowed: Sequence[Network], *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx takes no network backend; its transport sends through ``_pool`` (httpx 0.28,
        # 0.29). tests/campaigns/delivery/test_webhook_destinations.py fails if that changes.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allowed),
        )


def client(settings: Settings | None = None, *, limits: httpx.Limits | None = None) -> httpx.Client:
    """The HTTP client webhooks are sent with: no redirects followed, no proxy from the
    environment, only the destinations ``RAPPORT_WEBHOOK_ALLOWED_NETWORKS`` lets through."""
    allowed = (settings or get_settings()).webhook_networks
    transport = GuardedTransport(allowed, limits=limits or httpx.Limits())
    return httpx.Client(timeout=TIMEOUT, transport=transport, trust_env=False)


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The ``Rapport-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (in Python): the signature matches and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def backoff(attempt: int) -> timedelta:
    """The wait after failed try number ``attempt`` (1-based): 30 s, 1 min, 2 min … 6 h."""
    wait: timedelta = BACKOFF_BASE * (2 ** max(attempt - 1, 0))
    return min(wait, BACKOFF_CAP)


@dataclass(frozen=True)
class WebhookOutcome:
    delivered: bool
    retry: bool
    status_code: int | None
    reason: str
    duration_ms: float


@dataclass(frozen=True)
class Target:
    """Where and how to sign: plain values, safe to hand to sending threads (an ORM row is
    not)."""

    url: str
    secret: str

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> Target:
        return cls(url=endpoint.url, secret=endpoint.secret)


def post(
    client: httpx.Client, endpoint: Target, payload: dict[str, Any], delivery_id: str
) -> WebhookOutcome:
    """One signed POST of ``payload`` to ``endpoint`` (thread-safe)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, body, timestamp=int(clock.now().timestamp())),
        DELIVERY_HEADER: delivery_id,
        "User-Agent": "Rapport-Webhooks/1",
    }
    started = time.perf_counter()
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
    except DestinationRefused as error:  # final, and nothing of the address's answer
        return WebhookOutcome(False, False, None, f"refused: {error}"[:300], 0.0)
    except httpx.TimeoutException as error:
        return WebhookOutcome(False, True, None, f"timeout: {error}"[:300], _ms(started))
    except httpx.HTTPError as error:
        return WebhookOutcome(False, True, None, f"connection: {error}"[:300], _ms(started))
    code = response.status_code
    if 200 <= code < 300:
        return WebhookOutcome(True, False, code, "", _ms(started))
    retry = code >= 500 or code in RETRIED_STATUS
    return WebhookOutcome(False, retry, code, f"HTTP {code}", _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def record_attempt(
    db: Session, *, endpoint_id: int, delivery_id: int, attempt: int, outcome: WebhookOutcome
) -> None:
    db.add(
        WebhookAttempt(
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
            attempt=attempt,
            status_code=outcome.status_code,
            error=outcome.reason[:500],
            duration_ms=outcome.duration_ms,
            at=clock.now(),
        )
    )


# ---------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def refuse_taken_name(db: Session, name: str, *, other_than: int | None = None) -> None:
    """409 naming ``name`` when another endpoint holds it, saying which: an endpoint of a
    deleted subscription is kept, inactive, with its delivery history, and keeps its name."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.name == name)
    if other_than is not None:
        query = query.where(WebhookEndpoint.id != other_than)
    holder = db.scalars(query.limit(1)).first()
    if holder is None:
        return
    which = (
        f"endpoint {holder.id}"
        if holder.active
        else f"inactive endpoint {holder.id} (kept with its delivery history after its "
        "subscription was deleted)"
    )
    raise Conflict(f"The name {name!r} is taken by {which}: choose another name", field="name")


def check_url(url: str, *, allowed: Sequence[Network] | None = None) -> str:
    """``url`` stripped, or 422 naming ``url``: an http:// or https:// address with a host of
    letters, digits, dots, hyphens (an IPv6 address in brackets) and no space or control
    character anywhere (``http://x y.example/`` is refused, where httpx quietly made it
    ``x%20y.example``), whose host ``host_refusal`` lets through with the ``allowed``
    networks (by default ``RAPPORT_WEBHOOK_ALLOWED_NETWORKS``)."""
    url = url.strip()
    said = "An http:// or https:// URL without spaces, such as https://crm.example/hooks"
    if len(url) > 2000 or any(c.isspace() or not c.isprintable() for c in url):
        raise InvalidInput(said, field="url")
    try:
        parsed = httpx.URL(url) if url.startswith(("http://", "https://")) else None
    except httpx.InvalidURL:
        # httpx refuses some IPv4 shorthands (0177.0.0.1, 127.000.000.001) it cannot read
        try:
            typed_host = urlsplit(url).hostname or ""
        except ValueError:
            typed_host = ""
        if dotted := dotted_quad(typed_host):
            said_host = refusal_text(typed_host, shorthand_refusal(dotted))
            raise InvalidInput(said_host, field="url") from None
        parsed = None
    host = parsed.host if parsed is not None else ""
    if not host or not all(c.isalnum() or c in ".-_:" for c in host):
        raise InvalidInput(said, field="url")
    networks = get_settings().webhook_networks if allowed is None else allowed
    if refused := host_refusal(host, networks):
        raise InvalidInput(refusal_text(host, refused), field="url")
    return url


def create_endpoint(
    db: Session,
    *,
    name: str,
    url: str,
    consent_purpose: str = "marketing_push",
    max_attempts: int = 6,
    before_commit: BeforeCommit | None = None,
) -> CreatedEndpoint:
    """A new endpoint with a generated signing secret (returned once) and commit."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("A name of 1 to 200 characters", field="name")
    url = check_url(url)
    if consent_purpose not in customers.CONSENT_PURPOSES:
        raise InvalidInput(f"Unknown consent purpose {consent_purpose!r}", field="consent_purpose")
    if not 1 <= max_attempts <= 20:
        raise InvalidInput("max_attempts between 1 and 20", field="max_attempts")
    refuse_taken_name(db, name)
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        name=name,
        url=url,
        secret=secret,
        consent_purpose=consent_purpose,
        max_attempts=max_attempts,
        active=True,
        created_at=clock.now(),
    )
    db.add(endpoint)
    db.flush()
    created = CreatedEndpoint(endpoint, secret)
    if before_commit is not None:
        before_commit(db, created)
    db.commit()
    return created


def list_endpoints(db: Session) -> list[WebhookEndpoint]:
    return list(db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name).limit(500)))


def recent_attempts(
    db: Session, *, endpoint_id: int | None = None, limit: int = 50
) -> list[WebhookAttempt]:
    query = select(WebhookAttempt).order_by(WebhookAttempt.id.desc()).limit(min(limit, 500))
    if endpoint_id is not None:
        query = query.where(WebhookAttempt.endpoint_id == endpoint_id)
    return list(db.scalars(query))


def replay_delivery(
    db: Session,
    *,
    delivery_id: int,
    now: datetime | None = None,
    before_commit: BeforeCommit | None = None,
) -> Delivery:
    """Send a dead delivery again (its tries start over) and commit. ``before_commit`` runs
    last in the transaction, with the delivery."""
    delivery = db.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id}", field="delivery_id")
    if delivery.status != "dead":
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status}; only dead deliveries are replayed",
            field="delivery_id",
        )
    at = now or clock.now()
    delivery.status = "queued"
    delivery.reason = "replayed"
    delivery.attempts = 0
    delivery.claimed_by = None
    delivery.next_attempt_at = at
    delivery.updated_at = at
    db.add(DeliveryStatus(delivery_id=delivery.id, status="queued", reason="replayed", at=at))
    if before_commit is not None:
        db.flush()
        before_commit(db, delivery)
    db.commit()
    return delivery
