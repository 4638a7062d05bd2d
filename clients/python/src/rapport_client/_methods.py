"""Turn each operation of :mod:`rapport_client._calls` into a method of the sync and of the
async client with the operation's own signature and docstring (type checkers see both), so
the typed surface is written once."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from rapport_client._calls import Pages
from rapport_client._core import Call

if TYPE_CHECKING:
    from rapport_client.async_client import AsyncRapport
    from rapport_client.client import Rapport

P = ParamSpec("P")
T = TypeVar("T")


class SyncResource:
    """A group of methods of :class:`~rapport_client.Rapport` (``rapport.loyalty``, ...)."""

    def __init__(self, client: Rapport) -> None:
        self._client = client


class AsyncResource:
    """A group of methods of :class:`~rapport_client.AsyncRapport`."""

    def __init__(self, client: AsyncRapport) -> None:
        self._client = client


def _describe(method: Callable[..., Any], build: Callable[..., Any], returns: str) -> None:
    """Give ``method`` the signature ``help()`` and editors show: the operation's parameters
    after ``self``, returning what the method gives (``returns``, ``{}`` standing for the
    operation's result type) rather than the operation's ``Call[...]``."""
    functools.update_wrapper(method, build)
    signature = inspect.signature(build)
    result = re.sub(r"^(Call|Pages)\[(.*)\]$", r"\2", str(signature.return_annotation))
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_parameter, *signature.parameters.values()],
        return_annotation=returns.format(result),
    )


def sync_method(build: Callable[P, Call[T]]) -> Callable[Concatenate[SyncResource, P], T]:
    def method(self: SyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client.execute(build(*args, **kwargs))

    _describe(method, build, "{}")
    return method


def async_method(
    build: Callable[P, Call[T]],
) -> Callable[Concatenate[AsyncResource, P], Coroutine[Any, Any, T]]:
    async def method(self: AsyncResource, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client.execute(build(*args, **kwargs))

    _describe(method, build, "{}")
    return method


def sync_pager(build: Callable[P, Pages[T]]) -> Callable[Concatenate[SyncResource, P], Iterator[T]]:
    def method(self: SyncResource, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._client.iterate(build(*args, **kwargs))

    _describe(method, build, "Iterator[{}]")
    return method


def async_pager(
    build: Callable[P, Pages[T]],
) -> Callable[Concatenate[AsyncResource, P], AsyncIterator[T]]:
    def method(self: AsyncResource, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        return self._client.iterate(build(*args, **kwargs))

    _describe(method, build, "AsyncIterator[{}]")
    return method
