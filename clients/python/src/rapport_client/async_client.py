"""The asynchronous client, :class:`AsyncRapport`: the shared core driven by an
``httpx.AsyncClient``; the same methods as :class:`~rapport_client.Rapport`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from rapport_client import _calls
from rapport_client._calls import Pages
from rapport_client._core import Call, Core, Options, QueryValue, Send, generic_call
from rapport_client._endpoints import Repeat
from rapport_client._methods import AsyncResource, async_method, async_pager

T = TypeVar("T")


class Customers(AsyncResource):
    """``rapport.customers``: profiles, consents, preferences, export and erasure."""

    create = async_method(_calls.create_customer)
    upsert = async_method(_calls.upsert_customer)
    get = async_method(_calls.get_customer)
    lookup = async_method(_calls.lookup_customer)
    set_consent = async_method(_calls.set_consent)
    consents = async_method(_calls.get_consents)
    consent_history = async_method(_calls.consent_history)
    iter_consent_history = async_pager(_calls.consent_history_pages)
    set_preferences = async_method(_calls.set_preferences)
    export = async_method(_calls.export_customer)
    erase = async_method(_calls.erase_customer)


class Events(AsyncResource):
    """``rapport.events``: tracking events, one or a batch."""

    track = async_method(_calls.track)
    track_batch = async_method(_calls.track_batch)


class Orders(AsyncResource):
    """``rapport.orders``: place, read, return and cancel orders."""

    place = async_method(_calls.place_order)
    get = async_method(_calls.get_order)
    list = async_method(_calls.list_orders)
    iter_list = async_pager(_calls.order_pages)
    record_return = async_method(_calls.record_return)
    cancel = async_method(_calls.cancel_order)


class Loyalty(AsyncResource):
    """``rapport.loyalty``: balances, the ledger, and earning, redeeming and adjusting points."""

    member = async_method(_calls.get_member)
    balance = async_method(_calls.get_balance)
    ledger = async_method(_calls.get_ledger_page)
    iter_ledger = async_pager(_calls.ledger_pages)
    earn = async_method(_calls.earn)
    redeem = async_method(_calls.redeem)
    adjust = async_method(_calls.adjust)


class Recommend(AsyncResource):
    """``rapport.recommendations``: items to show, with the page's context."""

    get = async_method(_calls.recommendations)
    for_customer = async_method(_calls.recommendations_for)


class AsyncRapport:
    """An asyncio client for Rapport's API (``async with AsyncRapport(...) as rapport``).

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(transport=transport, **options.client_arguments())
        self.customers = Customers(self)
        self.events = Events(self)
        self.orders = Orders(self)
        self.loyalty = Loyalty(self)
        self.recommendations = Recommend(self)

    async def request(
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
        return await self.execute(call)

    def paginate(
        self, path: str, *, params: Mapping[str, QueryValue] | None = None
    ) -> AsyncIterator[Any]:
        """Every item of a cursor-paged list (``{"items", "next_cursor"}``), page by page."""

        def page(cursor: str | None) -> Call[Any]:
            return generic_call("GET", path, params={**(params or {}), "cursor": cursor})

        return self.iterate(page)

    async def execute(self, call: Call[T]) -> T:
        """Send ``call`` through the shared retry plan, with this client's transport."""
        plan = self._core.plan(call)
        step = next(plan)
        while True:
            outcome: httpx.Response | httpx.TransportError | None = None
            if isinstance(step, Send):
                try:
                    outcome = await self._http.request(**step.request)
                except httpx.TransportError as error:
                    outcome = error
            else:
                await asyncio.sleep(step.seconds)
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                result: T = done.value
                return result

    async def iterate(self, pages: Pages[T]) -> AsyncIterator[T]:
        """Every item of a cursor-paged list, fetching the next page when needed."""
        cursor: str | None = None
        while True:
            page = await self.execute(pages(cursor))
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRapport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
