"""Webhooks do not reach inside the host's own networks unless the operator allows them
(RAPPORT_WEBHOOK_ALLOWED_NETWORKS): an endpoint on a loopback, private, link-local (metadata),
unspecified or numeric-shorthand address is refused when subscribed, and a host name that
resolves to such an address is refused when a delivery is sent, recorded as a final failure
that says why and nothing of what answered there."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import unescape

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery import webhooks
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.delivery.webhooks import WebhookOutcome
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
from tests.platform.admin_forms import page_form, post_form, typed

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
    "http://224.0.0.1/x",
    "http://240.0.0.1/x",
    "http://100.64.0.1/x",
]
# A representative of each IANA special-purpose range that is not globally reachable, with
# what the refusal calls it (Python 3.11.7's ipaddress calls some of them global).
RANGES = [
    ("0.1.2.3", "a 'this network' address (0.0.0.0/8)"),
    ("0.0.0.0", "an unspecified address"),
    ("10.1.2.3", "a private network address (10.0.0.0/8)"),
    ("100.64.0.1", "a shared carrier-grade NAT address (100.64.0.0/10)"),
    ("127.0.0.2", "a loopback address"),
    ("169.254.169.254", "a link-local address"),
    ("172.16.0.1", "a private network address (172.16.0.0/12)"),
    ("192.0.0.8", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.0.170", "an IETF protocol assignment address (192.0.0.0/24)"),
    ("192.0.2.1", "a documentation address (192.0.2.0/24)"),
    ("192.88.99.1", "a 6to4 relay anycast address (192.88.99.0/24)"),
    ("192.168.0.1", "a private network address (192.168.0.0/16)"),
    ("198.18.0.1", "a benchmarking address (198.18.0.0/15)"),
    ("198.51.100.1", "a documentation address (198.51.100.0/24)"),
    ("203.0.113.1", "a documentation address (203.0.113.0/24)"),
    ("224.0.0.251", "a multicast address"),
    ("240.0.0.1", "a reserved address (240.0.0.0/4)"),
    ("255.255.255.255", "the broadcast address"),
    ("[::]", "an unspecified address"),
    ("[::1]", "a loopback address"),
    ("[64:ff9b::a00:1]", "a NAT64 address carrying 10.0.0.1, a private network address"),
    ("[64:ff9b::c000:8]", "a NAT64 address carrying 192.0.0.8, an IETF protocol assignment"),
    ("[64:ff9b:1::1]", "a local-use NAT64 address (64:ff9b:1::/48)"),
    ("[100::1]", "a discard-only address (100::/64)"),
    ("[2001::1]", "an IETF protocol assignment address (2001::/23)"),
    ("[2001:10::1]", "an IETF protocol assignment address (2001::/23)"),
    ("[2001:db8::1]", "a documentation address (2001:db8::/32)"),
    ("[3fff::1]", "a documentation address (3fff::/20)"),
    ("[3fff:fff::1]", "a documentation address (3fff::/20)"),
    ("[fec0::5]", "a site-local address (fec0::/10, deprecated: private use)"),
    ("[2002:7f00:1::1]", "a 6to4 address carrying 127.0.0.1, a loopback address"),
    ("[2002:c000:8::1]", "a 6to4 address carrying 192.0.0.8, an IETF protocol assignment"),
    ("[fd12:3456::1]", "a unique local (private network) address (fc00::/7)"),
    ("[fe80::1]", "a link-local address"),
    ("[ff02::1]", "a multicast address"),
    ("[::7f00:1]", "a reserved address (not globally reachable)"),
]
SHORTHANDS = [
    "http://2130706433/x",
    "http://0x7f.1/x",
    "http://017700000001/x",
    "http://127.1/x",
    "http://0177.0.0.1/x",
    "http://127.000.000.001/x",
]
# An IPv4 address written as IPv6 is refused whatever the setting, saying how to write it.
MAPPED = [
    ("http://[::ffff:127.0.0.1]/x", "127.0.0.1"),
    ("http://[::ffff:169.254.169.254]/x", "169.254.169.254"),
    ("http://[::ffff:8.8.8.8]/x", "8.8.8.8"),
]
PUBLIC = [
    "https://crm.example/hooks",
    "http://8.8.8.8/x",
    "http://[2606:4700::1]/x",
    "http://[64:ff9b::808:808]/x",
    "http://[2002:808:808::1]/x",
]


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
        assert "write it as 127.0.0.1" in problem["detail"]
        assert "spaces" not in problem["detail"]
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
    for n, url in enumerate(PUBLIC):
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


@pytest.mark.parametrize(("host", "kind"), RANGES)
def test_each_special_purpose_range_is_refused_when_subscribed(
    client: TestClient,
    api_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    kind: str,
) -> None:
    # given no network allowed, when an endpoint on an address of the range is subscribed
    _allow(monkeypatch, None)
    answer = _subscribe(client, auth(api_key("admin")), f"http://{host}/x", "range")
    # then it is refused naming url, saying what the address is and which setting allows it
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "url"
    assert problem["detail"].startswith(f"url: {host.strip('[]')} is {kind}"), problem["detail"]
    assert SETTING in problem["detail"]


def _send(url: str) -> WebhookOutcome:
    with webhooks.client(get_settings()) as sender:
        return webhooks.post(sender, webhooks.Target(url=url, secret="s"), {"n": 1}, "dest-1")


@pytest.mark.parametrize(("host", "kind"), RANGES)
def test_each_special_purpose_range_is_refused_when_sent(
    monkeypatch: pytest.MonkeyPatch, host: str, kind: str
) -> None:
    # given an endpoint on an address of the range, stored before the check (or the setting)
    _allow(monkeypatch, None)
    # when a delivery is sent there, the try is refused before any connection, for good
    outcome = _send(f"http://{host}:9/x")
    assert (outcome.delivered, outcome.retry, outcome.status_code) == (False, False, None)
    assert outcome.reason.startswith(f"refused: {host.strip('[]')} resolves to an address that")
    assert kind in outcome.reason
    assert outcome.duration_ms == 0.0


@pytest.mark.parametrize("networks", [None, "127.0.0.0/8", "0.0.0.0/0, ::/0"])
@pytest.mark.parametrize(("url", "dotted"), MAPPED)
def test_an_ipv4_address_written_as_ipv6_is_refused_whatever_the_setting(
    client: TestClient,
    api_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    networks: str | None,
    url: str,
    dotted: str,
) -> None:
    # given any setting, even one allowing the IPv4 network or everything
    _allow(monkeypatch, networks)
    # when an endpoint on an IPv4 address written as IPv6 is subscribed, or sent to
    answer = _subscribe(client, auth(api_key("admin")), url, "mapped")
    outcome = _send(url)
    # then both refuse it the same way, saying how to write the address
    assert answer.status_code == 422, answer.text
    said = f"is an IPv4 address written as IPv6 (write it as {dotted})"
    assert said in answer.json()["detail"]
    assert said in outcome.reason
    assert outcome.reason.startswith("refused: ")


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    assert found is not None, html
    return unescape(found.group(1))


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "http://192.0.0.8/",
            "URL: 192.0.0.8 is an IETF protocol assignment address (192.0.0.0/24): webhooks do"
            " not reach the host's own networks. An operator allows a network by listing it in"
            f" {SETTING}",
        ),
        ("http://0177.0.0.1/", "URL: 0177.0.0.1 is an IPv4 address in a numeric shorthand"),
        ("http://[::ffff:127.0.0.1]/", "(write it as 127.0.0.1)"),
    ],
)
def test_the_admin_forms_say_what_the_api_says_of_an_address(
    admin: TestClient,
    api_key: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    said: str,
) -> None:
    # given no network allowed
    _allow(monkeypatch, None)
    # when an endpoint and a subscription on an inside address are added in the admin forms
    endpoint_form = page_form(admin.get("/admin/webhooks").text, action="/admin/webhooks")
    endpoint = post_form(
        admin, "/admin/webhooks", typed(typed(endpoint_form, "name", "ERP"), "url", url)
    )
    page = "/admin/webhooks/subscriptions"
    subscription_form = typed(
        typed(page_form(admin.get(page).text, action=page), "name", "ERP"), "url", url
    )
    subscription = post_form(admin, page, [*subscription_form, ("type_tier_changed", "true")])
    api = _subscribe(admin, auth(api_key("admin")), url, "form")
    # then each says beside the URL what the API says: what the address is, what allows it
    assert (endpoint.status_code, subscription.status_code, api.status_code) == (422, 422, 422)
    for answer in (endpoint, subscription):
        message = _field_error(answer.text, "url")
        assert said in message
        assert message.removeprefix("URL: ") == api.json()["detail"].removeprefix("url: ")
        assert "give an http" not in message
        assert "spaces" not in message
