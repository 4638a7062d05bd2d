"""The tracking SDKs shops already run, unchanged and with their default settings, against a
running Rapport: Segment's ``segment-analytics-python`` and RudderStack's ``rudder-sdk-python``
(which gzips its batches and sends identify traits in ``context.traits``). Each SDK makes one
call of every kind; every message arrives once, and traits, alias and group land on the
profile as docs/tracking.md says."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import CustomerGroup
from rapport.events.models import Event
from rapport.events.processors import registered_processors, run_batch
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.customers.factories import process  # noqa: F401  (registers the profile processor)


def _ingest_key(database_url: str) -> str:
    with open_session(database_url) as db:
        return platform.create_api_key(db, name="sdk", scopes=[platform.Scope.INGEST]).secret


def _process_profiles(database_url: str) -> None:
    profile = next(p for p in registered_processors() if p.name == "customers.profile")
    with open_session(database_url) as db:
        while run_batch(db, profile):
            pass


@pytest.fixture
def segment_sdk(live_server, monkeypatch) -> Iterator[ModuleType]:
    """``segment.analytics`` configured as Segment's docs say (write key and host only)."""
    from segment import analytics

    monkeypatch.setattr(analytics, "write_key", _ingest_key(live_server.database_url))
    monkeypatch.setattr(analytics, "host", live_server.base_url)
    monkeypatch.setattr(analytics, "default_client", None)
    yield analytics
    if analytics.default_client is not None:
        analytics.shutdown()  # its consumer thread stops with the test


@pytest.fixture
def rudder_sdk(live_server, monkeypatch) -> Iterator[ModuleType]:
    """``rudderstack.analytics`` configured as RudderStack's docs say (write key and data
    plane URL only): it gzips every batch by default."""
    import rudderstack.analytics as analytics

    monkeypatch.setattr(analytics, "write_key", _ingest_key(live_server.database_url))
    monkeypatch.setattr(analytics, "dataPlaneUrl", live_server.base_url, raising=False)
    monkeypatch.setattr(analytics, "default_client", None)
    yield analytics
    if analytics.default_client is not None:
        analytics.shutdown()


def _one_of_each(sdk: ModuleType, prefix: str) -> list[str]:
    """What a shop's code does: a visitor browses, signs up, is aliased, tracked and grouped.
    Returns the message ids sent."""
    visitor, user = f"{prefix}-visitor", f"{prefix}-user"
    sdk.page(
        None,
        "Shop",
        "Home",
        {"url": "https://shop.example/"},
        anonymous_id=visitor,
        message_id=f"{prefix}-page",
    )
    sdk.identify(
        user,
        {"email": f"{prefix}@example.com", "firstName": "Ann", "plan": "pro", "age": 41},
        message_id=f"{prefix}-identify",
    )
    sdk.alias(visitor, user, message_id=f"{prefix}-alias")
    sdk.track(
        user,
        "Product Viewed",
        {"sku": "W-1"},
        context={"traits": {"newsletter": True}},
        message_id=f"{prefix}-track",
    )
    sdk.screen(user, None, "Basket", {"items": 2}, message_id=f"{prefix}-screen")
    sdk.group(
        user, f"{prefix}-household", {"name": "The Smiths", "size": 4}, message_id=f"{prefix}-group"
    )
    sdk.flush()
    sdk.shutdown()
    calls = ("page", "identify", "alias", "track", "screen", "group")
    return [f"{prefix}-{call}" for call in calls]


def _check_landed(database_url: str, prefix: str, sent: list[str]) -> dict[str, Any]:
    _process_profiles(database_url)
    with open_session(database_url) as db:
        stored = list(
            db.execute(select(Event.event_id, Event.type).where(Event.event_id.like(f"{prefix}-%")))
        )
        # every message once, under its messageId
        assert sorted(event_id for event_id, _ in stored) == sorted(sent)
        assert {type_ for _, type_ in stored} == {
            "page_viewed",
            "identified",
            "aliased",
            "product_viewed",
            "screen_viewed",
            "grouped",
        }
        customer = customers.find_customer(db, kind="external_id", value=f"{prefix}-user")
        assert customer is not None
        # the visitor's profile was merged into the user's by the alias
        visitor = customers.find_customer(db, kind="anonymous_id", value=f"{prefix}-visitor")
        assert visitor is not None
        assert visitor.customer_id == customer.customer_id
        timeline = customers.get_timeline(db, customer_id=customer.customer_id, limit=20)
        group = db.get(CustomerGroup, f"{prefix}-household")
        return {
            "email": customer.email,
            "first_name": customer.first_name,
            "attributes": customer.attributes,
            "group_id": customer.group_id,
            "group_traits": group.traits if group else None,
            "history": sorted(e.event_id for e in timeline if e.event_id.startswith(prefix)),
        }


def _expected(prefix: str, sent: list[str]) -> dict[str, Any]:
    return {
        "email": f"{prefix}@example.com",
        "first_name": "Ann",
        "attributes": {"plan": "pro", "age": 41, "newsletter": True},
        "group_id": f"{prefix}-household",
        "group_traits": {"name": "The Smiths", "size": 4},
        "history": sorted(sent),
    }


def test_segment_sdk_with_its_defaults(live_server, segment_sdk) -> None:
    # given Segment's SDK pointed at Rapport
    # when the shop's code makes one call of each kind
    sent = _one_of_each(segment_sdk, "seg")

    # then each arrived once, and the profile holds the traits, the alias and the group
    assert _check_landed(live_server.database_url, "seg", sent) == _expected("seg", sent)


def test_rudderstack_sdk_with_its_defaults(live_server, rudder_sdk) -> None:
    # given RudderStack's SDK pointed at Rapport: it gzips, and sends traits in context.traits
    assert rudder_sdk.gzip is True
    # when the shop's code makes one call of each kind
    sent = _one_of_each(rudder_sdk, "rs")

    # then each arrived once, and the profile holds the traits, the alias and the group
    assert _check_landed(live_server.database_url, "rs", sent) == _expected("rs", sent)
