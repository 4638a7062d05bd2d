"""The synchronous client, :class:`Rapport`: the shared core driven by an ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from rapport_client import _calls
from rapport_client._calls import Pages
from rapport_client._core import Call, Core, Options, QueryValue, Send, generic_call
from rapport_client._endpoints import Repeat
from rapport_client._methods import SyncResource, sync_method, sync_pager

T = TypeVar("T")


class Customers(SyncResource):
    """``rapport.customers``: profiles, consents, preferences, export and erasure."""

    create = sync_method(_calls.create_customer)
    upsert = sync_method(_calls.upsert_customer)
    get = sync_method(_calls.get_customer)
    lookup = sync_method(_calls.lookup_customer)
    set_consent = sync_method(_calls.set_consent)
    consents = sync_method(_calls.get_consents)
    consent_history = sync_method(_calls.consent_history)
    iter_consent_history = sync_pager(_calls.consent_history_pages)
    set_preferences = sync_method(_calls.set_preferences)
    export = sync_method(_calls.export_customer)
    erase = sync_method(_calls.erase_customer)


class Events(SyncResource):
    """``rapport.events``: tracking events, one or a batch."""

    track = sync_method(_calls.track)
    track_batch = sync_method(_calls.track_batch)


class Orders(SyncResource):
    """``rapport.orders``: place, read, return and cancel orders."""

    place = sync_method(_calls.place_order)
    get = sync_method(_calls.get_order)
    list = sync_method(_calls.list_orders)
    iter_list = sync_pager(_calls.order_pages)
    record_return = sync_method(_calls.record_return)
    cancel = sync_method(_calls.cancel_order)


class Loyalty(SyncResource):
    """``rapport.loyalty``: balances, the ledger, and earning, redeeming and adjusting points."""

    member = sync_method(_calls.get_member)
    balance = sync_method(_calls.get_balance)
    ledger = sync_method(_calls.get_ledger_page)
    iter_ledger = sync_pager(_calls.ledger_pages)
    earn = sync_method(_calls.earn)
    redeem = sync_method(_calls.redeem)
    adjust = sync_method(_calls.adjust)


class Recommend(SyncResource):
    """``rapport.recommendations``: items to show, with the page's context."""

    get = sync_method(_calls.recommendations)
    for_customer = sync_method(_calls.recommendations_for)


class Rapport:
    """A client for Rapport's API.

    ``base_url``: where Rapport answers (``http://127.0.0.1:8000``); ``api_key``: an ``rk_…``
    key, sent as a Bearer token; ``timeout``: seconds per attempt; ``max_attempts``: tries per
    call, the first included; ``backoff`` / ``max_backoff``: the first and the longest wait
    between tries (doubling, with jitter); ``max_retry_after``: the longest ``Retry-After`` the
    client waits for (a longer one raises at once); ``transport``: an ``httpx`` transport, to
    route or mount the connection yourself.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = Options(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
        )
        self._core = Core(options)
        self._http = httpx.Client(transport=transport, **options.client_arguments())
        self.customers = Customers(self)
        self.events = Events(self)
        self.orders = Orders(self)
        self.loyalty = Loyalty(self)
        self.recommendations = Recommend(self)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, QueryValue] | None = None,
        idempotency_key: str | None = None,
        repeat: Repeat | None = None,
    ) -> Any:
        """Call any route (``path`` from ``/v1/…``) and return its decoded JSON answer, with the
        same keys, retries and errors as the typed methods. ``repeat``: how the route answers a
        repeat (``"key"``, ``"natural"``, ``"none"``), when the client does not know it."""
        call = generic_call(
            method,
            path,
            json=json,
            params=params,
            idempotency_key=idempotency_key,
            repeat=repeat,
        )
        return self.execute(call)

    def paginate(
        self, path: str, *, params: Mapping[str, QueryValue] | None = None
    ) -> Iterator[Any]:
        """Every item of a cursor-paged list (``{"items", "next_cursor"}``), page by page."""

        def page(cursor: str | None) -> Call[Any]:
            return generic_call("GET", path, params={**(params or {}), "cursor": cursor})

        return self.iterate(page)

    def execute(self, call: Call[T]) -> T:
        """Send ``call`` through the shared retry plan, with this client's transport."""
        plan = self._core.plan(call)
        step = next(plan)
        while True:
            outcome: httpx.Response | httpx.TransportError | None = None
            if isinstance(step, Send):
                try:
                    outcome = self._http.request(**step.request)
                except httpx.TransportError as error:
                    outcome = error
            else:
                time.sleep(step.seconds)
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result

    def iterate(self, pages: Pages[T]) -> Iterator[T]:
        """Every item of a cursor-paged list, fetching the next page when needed."""
        cursor: str | None = None
        while True:
            page = self.execute(pages(cursor))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Rapport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
