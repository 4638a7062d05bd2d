"""The Python client (clients/python, ``rapport_client``) against a live Rapport: the README's
five lines, every route it calls documented by the server, retries that apply a command once,
``Retry-After`` honoured, problem answers as typed errors, and the asyncio client alike."""

from __future__ import annotations

import asyncio
import importlib.metadata
import itertools
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import rapport_client
from rapport_client import (
    AsyncRapport,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidInput,
    NotFound,
    Rapport,
    RateLimited,
    Unauthorized,
)
from rapport_client import _endpoints as endpoints

from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, serve_rapport

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "python"
SOCKS = {
    "name": "Wool socks",
    "category_path": "Clothing/Socks",
    "price_minor": 1200,
    "cost_minor": 400,
    "currency": "EUR",
}


def make_key(server: LiveServer, *scopes: str, rate_limit: str | None = None) -> str:
    with open_session(server.database_url) as db:
        issued = platform.create_api_key(
            db,
            name=f"client test {'+'.join(scopes)}",
            scopes=[platform.Scope(scope) for scope in scopes],
            rate_limit=rate_limit,
        )
        db.commit()
    return issued.secret


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Rapport served for this whole module, like ``live_server`` but started once (an app
    takes seconds to build); each test uses customers of its own."""
    with serve_rapport(tmp_path_factory.mktemp("client")) as server:
        yield server


@pytest.fixture(scope="module")
def shop(shared_server: LiveServer) -> tuple[LiveServer, str]:
    """The live server with a key for the shop and the products its orders buy."""
    key = make_key(shared_server, "read", "write", "ingest")
    with Rapport(shared_server.base_url, api_key=key) as rapport:
        rapport.request("PUT", "/v1/products/W-1", json=SOCKS)
        rapport.request("PUT", "/v1/products/W-2", json={**SOCKS, "name": "Wool hat"})
    return shared_server, key


BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class LoseFirstAnswer:
    """A TCP proxy in front of the live server: it forwards every request, but on its first
    connection it throws the server's answer away, as a network or gateway failure after the
    server did the work would: it closes the connection, or sends ``instead`` (a gateway's
    502) and closes it. It keeps each connection's request bytes."""

    def __init__(self, upstream: str, *, instead: bytes | None = None) -> None:
        self._instead = instead
        host, port = upstream.removeprefix("http://").split(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests: list[bytearray] = []
        self._drops_left = 1
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream)
        with self._lock:
            drop = self._drops_left > 0
            self._drops_left -= 1
            received = bytearray()
            self.requests.append(received)
        threading.Thread(
            target=self._forward, args=(client, upstream, received), daemon=True
        ).start()
        with client, upstream:
            while data := _receive(upstream):
                if drop:  # the command ran and answered; the answer is lost on the way
                    if self._instead is not None:
                        client.sendall(self._instead)
                    client.shutdown(socket.SHUT_RDWR)
                    return
                client.sendall(data)

    @staticmethod
    def _forward(client: socket.socket, upstream: socket.socket, received: bytearray) -> None:
        while data := _receive(client):
            received.extend(data)
            try:
                upstream.sendall(data)
            except OSError:
                return

    def idempotency_keys(self) -> list[str]:
        keys = []
        for raw in self.requests:
            match = re.search(rb"(?im)^idempotency-key: *(\S+)\r$", bytes(raw))
            if match:
                keys.append(match.group(1).decode())
        return keys


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def readme_blocks(heading: str) -> list[str]:
    """The Python code blocks of the README's section under ``heading``."""
    readme = (CLIENT_DIR / "README.md").read_text()
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


T = TypeVar("T")


def in_own_thread(work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own: code that calls ``asyncio.run`` needs a thread with
    no running event loop, and the browser tests' Playwright keeps one in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def run_readme_code(code: str, server: LiveServer, key: str) -> dict[str, Any]:
    """Run README code as written, against this server with this key."""
    runnable = code.replace("http://127.0.0.1:8000", server.base_url).replace("rk_...", key)
    assert runnable != code
    namespace: dict[str, Any] = {}
    in_own_thread(lambda: exec(compile(runnable, "README.md", "exec"), namespace))
    return namespace


def test_the_readme_code_runs_as_written_and_its_five_lines_earn_points(shop, capsys) -> None:
    server, key = shop
    (five_lines,) = readme_blocks("Earn points for an order in five lines")
    assert len([line for line in five_lines.splitlines() if line.strip()]) == 5
    # the project's README shows the same five lines
    assert f"```python\n{five_lines}```" in (CLIENT_DIR.parents[1] / "README.md").read_text()

    namespace = run_readme_code(five_lines, server, key)

    assert namespace["posted"]["balance"] == 24
    with Rapport(server.base_url, api_key=key) as rapport:
        customer = rapport.customers.lookup("external_id", "C-100")["customer_id"]
        (order,) = rapport.orders.list(customer)["items"]
        assert order["total_minor"] == 2400
        assert rapport.loyalty.balance(customer) == 24
        (movement,) = rapport.loyalty.ledger(customer)["items"]
        assert movement["order_id"] == order["order_id"]

    sync_example, async_example = readme_blocks("Usage")
    run_readme_code(sync_example, server, key)
    run_readme_code(async_example, server, key)

    # The balance, the ledger, the NotFound, then the ledger from the async client.
    balance, movement_line, not_found, async_movement = capsys.readouterr().out.splitlines()
    assert balance == "24"
    assert movement_line.endswith(" earn 24")
    assert not_found == "404 Not found order_id"
    assert async_movement == f"earn 24 {order['order_id']}"
    with Rapport(server.base_url, api_key=key) as rapport:
        assert rapport.customers.lookup("email", "ada@example.com")["customer_id"] == customer
        assert (
            len(list(rapport.orders.iter_list("C-100", page_size=1))) == 2
        )  # the five lines' order, the async one


def test_every_route_the_client_calls_is_in_the_servers_openapi_document(shop) -> None:
    server, _ = shop
    # Building the document takes the server seconds the first time.
    document = httpx.get(f"{server.base_url}/openapi.json", timeout=60).json()
    routes = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path)): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    for endpoint in endpoints.ALL:
        route = (endpoint.method, re.sub(r"\{[^}]+\}", "{}", endpoint.template))
        assert route in routes, f"{route} is not in /openapi.json"
        parameters = routes[route].get("parameters", [])
        query = {p["name"] for p in parameters if p["in"] == "query"}
        assert set(endpoint.query) <= query, (route, set(endpoint.query) - query)
        takes_key = any(p["name"] == "Idempotency-Key" for p in parameters)
        # "key" promises the server replays a repeat; retries after a lost answer rely on it.
        assert takes_key == (endpoint.repeat == "key"), route
    assert importlib.metadata.version("rapport-client") == rapport_client.__version__


@pytest.mark.parametrize("instead", [None, BAD_GATEWAY], ids=["dropped", "bad-gateway"])
def test_a_command_whose_answer_was_lost_is_retried_with_its_key_and_applied_once(
    shop, instead: bytes | None
) -> None:
    server, key = shop
    with Rapport(server.base_url, api_key=key) as rapport:
        customer = rapport.customers.upsert(identities={"external_id": "C-200"})["customer_id"]
        before = rapport.loyalty.balance(customer)
    proxy = LoseFirstAnswer(server.base_url, instead=instead)
    try:
        with Rapport(proxy.base_url, api_key=key, backoff=0.05) as rapport:
            posted = rapport.loyalty.earn(customer, points=10, reason="Order O-7")
            assert posted["balance"] == before + 10
            assert rapport.loyalty.balance(customer) == before + 10  # earned once, not twice
    finally:
        proxy.close()
    first, retry = proxy.idempotency_keys()
    assert first == retry
    request = bytes(proxy.requests[0]).lower()
    assert f"user-agent: rapport-client/{rapport_client.__version__}".encode() in request
    assert f"authorization: bearer {key}".lower().encode() in request


def test_a_new_customer_whose_answer_was_lost_is_created_once(shop) -> None:
    server, key = shop
    proxy = LoseFirstAnswer(server.base_url)
    try:
        with Rapport(proxy.base_url, api_key=key, backoff=0.05) as rapport:
            created = rapport.customers.create(external_id="C-300")
    finally:
        proxy.close()
    # the retry carried the first try's key, and was answered with the first answer
    first, retry = proxy.idempotency_keys()
    assert first == retry
    with Rapport(server.base_url, api_key=key) as rapport:
        assert (
            rapport.customers.lookup("external_id", "C-300")["customer_id"]
            == (created["customer_id"])
        )


def test_a_call_that_may_apply_twice_is_not_repeated_after_a_lost_answer(shop) -> None:
    server, key = shop
    proxy = LoseFirstAnswer(server.base_url)
    try:
        with (
            Rapport(proxy.base_url, api_key=key, backoff=0.05) as rapport,
            pytest.raises(ConnectionFailed) as lost,
        ):
            # A route the caller says a repeat could apply twice (one the client does not know)
            rapport.request("POST", "/v1/customers", json={"external_id": "C-301"}, repeat="none")
    finally:
        proxy.close()
    assert lost.value.status is None
    assert len(proxy.requests) == 1
    with Rapport(server.base_url, api_key=key) as rapport:
        assert rapport.customers.lookup("external_id", "C-301")["external_id"] == "C-301"


def test_rate_limited_calls_wait_for_retry_after_then_succeed(shop) -> None:
    server, _ = shop
    key = make_key(server, "read", "write", rate_limit="1/3 seconds")
    with Rapport(server.base_url, api_key=key, max_attempts=1) as impatient:
        impatient.request("GET", "/v1/products/W-1")
        with pytest.raises(RateLimited) as limited:
            impatient.request("GET", "/v1/products/W-1")
    assert limited.value.status == 429
    assert limited.value.retry_after is not None
    assert limited.value.retry_after >= 1

    recorder = StatusRecorder()
    with Rapport(server.base_url, api_key=key, transport=recorder) as rapport:
        rapport.request("GET", "/v1/products/W-1")
        assert rapport.request("GET", "/v1/products/W-1")["name"] == "Wool socks"
    # Two calls within three seconds (a window wide enough for a busy machine): one of them (or
    # both) is answered 429 first, and is sent again only after Retry-After.
    statuses = [status for status, _, _ in recorder.answers]
    assert 429 in statuses
    assert statuses.count(200) == 2
    for (status, answered_at, retry_after), (_, next_answered_at, _) in itertools.pairwise(
        recorder.answers
    ):
        if status == 429:
            assert next_answered_at - answered_at >= float(retry_after)


class StatusRecorder(httpx.HTTPTransport):
    """httpx's own transport, noting each answer's status, time and Retry-After."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[int, float, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        retry_after = response.headers.get("Retry-After", "0")
        self.answers.append((response.status_code, time.monotonic(), retry_after))
        return response


def test_problem_answers_raise_typed_errors_naming_the_field(shop) -> None:
    server, key = shop
    with Rapport(server.base_url, api_key=key) as rapport:
        with pytest.raises(InvalidInput) as unknown_sku:
            rapport.orders.place(
                customer="C-400",
                channel="store",
                currency="EUR",
                lines=[{"sku": "NOPE", "quantity": 1, "unit_price_minor": 100}],
            )
        assert unknown_sku.value.status == 422
        assert unknown_sku.value.field == "lines.0.sku"

        with pytest.raises(InvalidInput) as invalid:
            rapport.loyalty.earn("C-400", points=0, reason="nothing")
        assert invalid.value.field == "points"
        assert [error["code"] for error in invalid.value.errors] == ["greater_than_equal"]

        with pytest.raises(NotFound) as missing:
            rapport.orders.get("ord_missing")
        assert missing.value.status == 404
        assert "ord_missing" in str(missing.value)

    read_key = make_key(server, "read")
    with Rapport(server.base_url, api_key=read_key) as reader:
        with pytest.raises(Forbidden) as forbidden:
            reader.loyalty.earn("C-400", points=5, reason="not allowed")
        assert forbidden.value.body.get("required_scope") == "write"
    with (
        Rapport(server.base_url, api_key="rk_unknown") as stranger,
        pytest.raises(Unauthorized),
    ):
        stranger.customers.get("C-400")


def test_customers_events_loyalty_and_recommendations_through_the_client(shop) -> None:
    server, key = shop
    admin_key = make_key(server, "admin")  # adjustments, exports and erasure need it
    with (
        Rapport(server.base_url, api_key=key) as rapport,
        Rapport(server.base_url, api_key=admin_key) as admin,
    ):
        profile = rapport.customers.create(
            external_id="C-500", email="grace@example.com", consents={"marketing_email": False}
        )
        customer = profile["customer_id"]
        same = rapport.customers.upsert(
            identities={"external_id": "C-500"}, first_name="Grace", last_name="Hopper"
        )
        assert same["customer_id"] == customer
        assert same["first_name"] == "Grace"
        assert rapport.customers.get(customer)["email"] == "grace@example.com"

        consent = rapport.customers.set_consent(customer, "marketing_email", granted=True)
        assert consent["granted"] is True
        assert {c["purpose"]: c["granted"] for c in rapport.customers.consents(customer)}[
            "marketing_email"
        ]
        history = rapport.customers.consent_history(customer)["items"]
        assert [change["granted"] for change in history][-1] is True
        paged = list(rapport.customers.iter_consent_history(customer, page_size=1))
        assert paged == history

        seen_at = datetime.now(UTC) - timedelta(minutes=1)
        receipt = rapport.events.track(
            "product_viewed",
            channel="web",
            customer=customer,
            properties={"sku": "W-1"},
            occurred_at=seen_at,
        )
        assert receipt["duplicate"] is False
        again = rapport.events.track(
            "product_viewed",
            channel="web",
            customer=customer,
            properties={"sku": "W-1"},
            event_id=receipt["event_id"],
            occurred_at=seen_at,
        )
        assert again["duplicate"] is True  # stored once, by its event_id
        batch = rapport.events.track_batch(
            [
                {"type": "page_viewed", "channel": "web", "customer_id": customer},
                {"type": "cart_updated", "channel": "app", "anonymous_id": "dev-1"},
            ]
        )
        assert (batch["accepted"], batch["rejected"]) == (2, 0)
        assert again["event_id"] == receipt["event_id"]

        for points in (5, 6, 7):
            rapport.loyalty.earn(customer, points=points, reason=f"Bonus {points}")
        rapport.loyalty.redeem(customer, points=4)
        admin.loyalty.adjust(customer, points=-1, reason="Correction")
        assert rapport.loyalty.member(customer)["balance"] == 13
        movements = list(rapport.loyalty.iter_ledger(customer, page_size=2))
        assert sorted(m["points"] for m in movements) == [-4, -1, 5, 6, 7]
        assert len(list(rapport.paginate(f"/v1/loyalty/members/{customer}/statement"))) == 5

        picks = rapport.recommendations.for_customer(customer, placement="cart", cart=["W-1"])
        assert picks["placement"] == "cart"
        assert all(item["sku"] != "W-1" for item in picks["items"])

        order = rapport.orders.place(
            customer=customer,
            channel="web",
            currency="EUR",
            lines=[{"sku": "W-2", "quantity": 2, "unit_price_minor": 1200}],
            idempotency_key="till-7-receipt-1",
        )
        replay = rapport.orders.place(
            customer=customer,
            channel="web",
            currency="EUR",
            lines=[{"sku": "W-2", "quantity": 2, "unit_price_minor": 1200}],
            idempotency_key="till-7-receipt-1",
        )
        assert replay["order_id"] == order["order_id"]
        returned = rapport.orders.record_return(
            order["order_id"],
            channel="store",
            lines=[{"sku": "W-2", "quantity": 1, "reason": "too_small"}],
        )
        assert returned["refund_minor"] == 1200
        assert (returned["money_refund_minor"], returned["points_refund_minor"]) == (1200, 0)
        unwanted = rapport.orders.place(
            customer=customer,
            channel="web",
            currency="EUR",
            lines=[{"sku": "W-1", "quantity": 1, "unit_price_minor": 1200}],
        )
        cancelled = rapport.orders.cancel(unwanted["order_id"], reason="ordered twice")
        assert cancelled["status"] == "cancelled"
        assert cancelled["status_history"][-1]["note"] == "ordered twice"
        with pytest.raises(Conflict):
            rapport.orders.cancel(unwanted["order_id"])

        export = admin.customers.export(customer)
        assert "grace@example.com" in str(export)
        erased = admin.customers.erase(customer, requested_by="support", reason="asked")
        assert erased["kind"] == "erasure"
        with pytest.raises(NotFound):
            rapport.customers.lookup("email", "grace@example.com")


def test_the_async_client_does_the_same_with_the_same_retries(shop) -> None:
    server, key = shop
    proxy = LoseFirstAnswer(server.base_url)

    async def main() -> tuple[list[Any], int]:
        async with AsyncRapport(proxy.base_url, api_key=key, backoff=0.05) as rapport:
            order = await rapport.orders.place(
                customer="C-600",
                channel="app",
                currency="EUR",
                lines=[{"sku": "W-1", "quantity": 1, "unit_price_minor": 1200}],
            )
            customer = order["customer_id"]
            assert customer is not None
            await rapport.loyalty.earn(
                customer, points=12, reason="Order", order_id=order["order_id"]
            )
            # Two tills sending one command at once with its key: whichever comes second is
            # answered 409 "still running" (retried after Retry-After) or the stored answer.
            same_key = uuid.uuid4().hex
            first, second = await asyncio.gather(
                *(
                    rapport.loyalty.earn(customer, points=3, reason="Two", idempotency_key=same_key)
                    for _ in range(2)
                )
            )
            assert first == second
            with pytest.raises(InvalidInput) as invalid:
                await rapport.loyalty.redeem(customer, points=-1)
            assert invalid.value.field == "points"
            movements = [m async for m in rapport.loyalty.iter_ledger(customer, page_size=1)]
            return movements, await rapport.loyalty.balance(customer)

    try:
        movements, balance = in_own_thread(lambda: asyncio.run(main()))
    finally:
        proxy.close()
    assert balance == 15
    assert sorted(m["points"] for m in movements) == [3, 12]
    first, retry = proxy.idempotency_keys()[:2]
    assert first == retry  # the dropped order was retried with its key, and placed once
    with Rapport(server.base_url, api_key=key) as rapport:
        customer = rapport.customers.lookup("external_id", "C-600")["customer_id"]
        assert len(rapport.orders.list(customer)["items"]) == 1
