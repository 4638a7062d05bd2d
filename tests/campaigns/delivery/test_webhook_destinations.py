"""Webhooks do not reach inside the host's own networks unless the operator allows them
(RAPPORT_WEBHOOK_ALLOWED_NETWORKS): an endpoint on a loopback, private, link-local (metadata),
unspecified or numeric-shorthand address is refused when subscribed, and a host name that
resolves to such an address is refused when a delivery is sent, recorded as a final failure
that says why and nothing of what answered there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.campaigns.subscriptions.processor import deliver_events
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.events import service as events
from rapport.events.models import Event
from rapport.loyalty import service as loyalty
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from rapport.platform.settings import Settings, get_settings
from tests.campaigns.receivers import WebhookReceiver
from tests.conftest import auth

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
URL = "/v1/webhooks/subscriptions"
SETTING = "RAPPORT_WEBHOOK_ALLOWED_NETWORKS"
INSIDE = [
    "http://127.0.0.1:8772/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:8771/metrics",
    "http://10.0.0.1/x",
    "http://192.168.1.20/x",
    "http://172.16.5.4/x",
    "http://[::1]:8772/x",
    "http://0.0.0.0:8772/x",
    "http://[::]/x",
    "http://[fc00::1]/x",
    "http://[fe80::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://224.0.0.1/x",
    "http://240.0.0.1/x",
    "http://100.64.0.1/x",
]
SHORTHANDS = ["http://2130706433/x", "http://0x7f.1/x", "http://017700000001/x", "http://127.1/x"]


def _allow(monkeypatch: pytest.MonkeyPatch, networks: str | None) -> None:
    if networks is None:
        monkeypatch.delenv(SETTING, raising=False)
    else:
        monkeypatch.setenv(SETTING, networks)
    get_settings.cache_clear()


def _subscribe(client: TestClient, admin: dict[str, str], url: str, key: str) -> Response:
    return client.post(
        URL,
        json={"name": f"ERP {key}", "url": url, "event_types": ["points_earned"]},
        headers={**admin, "Idempotency-Key": f"dest-{key}"},
    )


@pytest.mark.parametrize("url", INSIDE + SHORTHANDS)
def test_an_address_inside_the_hosts_networks_is_refused_when_subscribed(
    client: TestClient,
    api_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    # given no network allowed (the default)
    _allow(monkeypatch, None)
    # when an admin subscribes an endpoint inside the host's networks
    answer = _subscribe(client, auth(api_key("admin")), url, "off")
    # then it is a problem naming url, saying why and which setting allows it
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["field"] == "url"
    if url in SHORTHANDS:
        assert "write it 127.0.0.1" in problem["detail"]
    else:
        assert SETTING in problem["detail"]
        assert "address" in problem["detail"] or "name" in problem["detail"]


@pytest.mark.parametrize("url", INSIDE)
def test_an_allowed_network_may_be_subscribed(
    client: TestClient,
    api_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    # given the operator allowed every network
    _allow(monkeypatch, "0.0.0.0/0, ::/0")
    # when an admin subscribes an endpoint inside the host's networks, it is taken
    answer = _subscribe(client, auth(api_key("admin")), url, "on")
    assert answer.status_code == 201, answer.text


def test_a_public_host_is_taken_without_any_network_allowed(
    client: TestClient, api_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _allow(monkeypatch, None)
    for n, url in enumerate(
        ["https://crm.example/hooks", "http://8.8.8.8/x", "http://[2606:4700::1]/x"]
    ):
        answer = _subscribe(client, auth(api_key("admin")), url, f"public-{n}")
        assert answer.status_code == 201, answer.text


def _earn_and_dispatch(db: Session) -> Delivery:
    start = int(db.scalar(select(func.coalesce(func.max(Event.position), 0))) or 0)
    customer = customers.create_customer(
        db, customer=CustomerIn(first_name="Noor", email="noor@example.org")
    )
    db.flush()
    loyalty.earn(db, customer_id=customer.customer_id, points=5, reason="Visit")
    deliver_events(db, events.events_after(db, position=start, limit=500))
    db.commit()
    dispatch_batch(db, worker="w1")
    delivery = db.scalar(select(Delivery).order_by(Delivery.id.desc()).limit(1))
    assert delivery is not None
    db.refresh(delivery)
    return delivery


def _subscribe_localhost(
    client: TestClient,
    api_key: Callable[..., str],
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription to the receiver by the name localhost, with loopback allowed."""
    clock.set_clock(FrozenClock(T0))
    _allow(monkeypatch, "127.0.0.0/8, ::1/128")
    url = receiver.url.replace("127.0.0.1", "localhost")
    assert _subscribe(client, auth(api_key("admin")), url, "local").status_code == 201


def test_a_name_resolving_to_loopback_is_refused_when_sent(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a subscription to localhost, taken while loopback was allowed
    _subscribe_localhost(client, api_key, webhook_receiver, monkeypatch)
    # when the operator no longer allows it and an event is sent
    _allow(monkeypatch, None)
    delivery = _earn_and_dispatch(db)
    # then nothing reached the receiver, and the delivery failed for good saying why
    assert webhook_receiver.requests == []
    assert delivery.status == "dead"
    detail = client.get(f"/v1/deliveries/{delivery.id}", headers=auth(api_key("read"))).json()
    [attempt] = detail["webhook_attempts"]
    assert attempt["error"].startswith("refused: localhost resolves to an address that is a")
    assert "loopback address" in attempt["error"]
    assert SETTING in attempt["error"]
    # with nothing of what answered there: no status code, no timing
    assert attempt["status_code"] is None
    assert attempt["duration_ms"] == 0.0


def test_a_name_resolving_to_an_allowed_network_is_sent(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given loopback allowed, a subscription to localhost is delivered there
    _subscribe_localhost(client, api_key, webhook_receiver, monkeypatch)
    delivery = _earn_and_dispatch(db)
    assert delivery.status == "sent"
    [request] = webhook_receiver.requests
    assert request.headers["host"].startswith("localhost:")


def test_the_setting_refuses_what_is_not_a_network() -> None:
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33' is not a network"):
        Settings(webhook_allowed_networks="10.0.0.0/8, 10.0.0.0/33")
    assert [
        str(n) for n in Settings(webhook_allowed_networks="10.1.2.3, fd00::/8").webhook_networks
    ] == [
        "10.1.2.3/32",
        "fd00::/8",
    ]
