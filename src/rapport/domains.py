"""The composition root's list of domains: where their tables, routers, admin pages and jobs
are mounted. The one module (with the CLI) allowed to import a domain's entry points besides
its ``service`` and ``events`` faces (see docs/architecture.md).

Imports sit inside the functions so that loading the tables (migrations, tests) does not
import every router.
"""

from __future__ import annotations

from types import ModuleType

# Order matters where noted: privacy requests walk the domains in this order, and the admin
# navigation follows it.
DOMAINS = (
    "platform",
    "events",
    "customers",
    "catalog",
    "orders",
    "loyalty",
    "recommend",
    "feedback",
    "campaigns",
)


def load_models() -> None:
    """Import every domain's tables so that ``Base.metadata`` knows them all."""
    import rapport.campaigns.models
    import rapport.catalog.models
    import rapport.customers.models
    import rapport.events.models
    import rapport.feedback.models
    import rapport.loyalty.models
    import rapport.orders.models
    import rapport.platform.models
    import rapport.recommend.models  # noqa: F401


def load_event_types() -> None:
    """Import every domain's typed events (``events.py``), so that the API reference
    publishes them all."""
    import rapport.campaigns.events
    import rapport.customers.events
    import rapport.feedback.events
    import rapport.loyalty.events
    import rapport.orders.events  # noqa: F401


def load_tasks() -> None:
    """Import every domain's jobs, schedules and event processors."""
    import rapport.campaigns.tasks
    import rapport.customers.tasks
    import rapport.events.tasks
    import rapport.feedback.tasks
    import rapport.flows.privacy  # the erasure's sweep
    import rapport.loyalty.tasks
    import rapport.orders.tasks
    import rapport.recommend.tasks  # noqa: F401


def routers() -> list[ModuleType]:
    """Every domain's API router module."""
    from rapport.campaigns import api as campaigns
    from rapport.catalog import api as catalog
    from rapport.customers import api as customers
    from rapport.events import api as events
    from rapport.feedback import api as feedback
    from rapport.loyalty import api as loyalty
    from rapport.orders import api as orders
    from rapport.platform import api as platform
    from rapport.recommend import api as recommend

    return [platform, events, customers, catalog, orders, loyalty, recommend, feedback, campaigns]


def admin_pages() -> list[ModuleType]:
    """Every domain's admin page module, in navigation order (the overview leads)."""
    from rapport.analytics import admin as analytics
    from rapport.campaigns import admin as campaigns
    from rapport.catalog import admin as catalog
    from rapport.customers import admin as customers
    from rapport.events import admin as events
    from rapport.feedback import admin as feedback
    from rapport.loyalty import admin as loyalty
    from rapport.orders import admin as orders
    from rapport.recommend import admin as recommend

    return [analytics, events, customers, catalog, orders, loyalty, recommend, feedback, campaigns]
