"""The list of domains, so that models, routers, jobs and admin pages are found in one place."""

from __future__ import annotations

import importlib
from types import ModuleType

DOMAINS = (
    "platform",
    "events",
    "customers",
    "catalog",
    "orders",
    "loyalty",
    "recommend",
    "feedback",
)


def _import_each(module: str) -> list[ModuleType]:
    found = []
    for domain in DOMAINS:
        try:
            found.append(importlib.import_module(f"rapport.{domain}.{module}"))
        except ModuleNotFoundError as error:
            if error.name != f"rapport.{domain}.{module}":
                raise
    return found


def load_models() -> None:
    """Import every domain's tables so that ``Base.metadata`` knows them all."""
    _import_each("models")


def load_tasks() -> None:
    """Import every domain's job handlers and schedules."""
    _import_each("tasks")


def routers() -> list[ModuleType]:
    return _import_each("api")


def admin_pages() -> list[ModuleType]:
    return _import_each("admin")
