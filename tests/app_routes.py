"""The application's routes as one list: FastAPI keeps included routers nested."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def every_route(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each route with its full path, walking into included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from every_route(inner.routes, prefix + getattr(context, "prefix", ""))
        elif hasattr(route, "path"):
            yield prefix + route.path, route
