"""Browsing as a serving signal: what a consenting customer viewed or put in their basket
lately (Segment's "Product Viewed", "Product Added", "Cart Viewed") steers their home and email
recommendations, bounded and explained; without consent, or once old, it does nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.domains import load_tasks
from rapport.events.processors import GAP_PATIENCE, registered_processors, run_batch
from rapport.platform import clock
from rapport.platform.settings import Settings
from rapport.recommend import service
from tests.conftest import auth
from tests.events.factories import basic_auth

from .factories import NOW, seed_shop

_numbers = itertools.count(1)


@pytest.fixture
def shop(db: Session, settings: Settings) -> dict[str, str]:
    clock.set_clock(clock.FrozenClock(NOW))
    ids = seed_shop(db)
    service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    return ids


def browse(client: TestClient, key: str, db: Session, *calls: tuple[str, dict[str, Any]]) -> None:
    """c9 browses the shop (Segment track calls), and the profile processor files the events
    under their profile."""
    basic = basic_auth(key)
    for minutes, (event, properties) in enumerate(calls):
        message = {
            "userId": "c9",
            "event": event,
            "properties": properties,
            "messageId": f"browse-{next(_numbers)}",
            "timestamp": (NOW - timedelta(minutes=60 - minutes)).isoformat(),
        }
        assert client.post("/v1/track", json=message, headers=basic).status_code == 200
    load_tasks()
    profile = next(p for p in registered_processors() if p.name == "customers.profile")
    # Later than the events by more than the processors' patience: on PostgreSQL, positions
    # other tests' rolled-back inserts took are holes that must not hold the batch back.
    clock.set_clock(clock.FrozenClock(NOW + 2 * GAP_PATIENCE))
    while run_batch(db, profile):
        pass
    clock.set_clock(clock.FrozenClock(NOW))


def home(client: TestClient, key: str, customer_id: str) -> list[tuple[str, str]]:
    response = client.get(
        "/v1/recommendations",
        params={"placement": "home", "customer_id": customer_id, "limit": 5},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    return [(item["sku"], item["reason"]) for item in response.json()["items"]]


def test_viewed_and_basket_items_lead_a_consenting_customers_home_page(
    client: TestClient, api_key, db: Session, shop: dict[str, str]
) -> None:
    # given c9, who buys pasta and white wine, and their home recommendations
    read = api_key("read")
    before = home(client, read, shop["c9"])
    assert "W-BAROLO" not in [sku for sku, _ in before]

    # when they look at a Barolo and put wine glasses in their basket
    browse(
        client,
        api_key("ingest"),
        db,
        ("Product Viewed", {"sku": "W-BAROLO", "name": "Barolo", "price": 15}),
        ("Product Added", {"product_id": "K-GLASS", "quantity": 1}),
        ("Product List Viewed", {"list_id": "red", "products": [{"sku": "W-RIOJA"}]}),
    )
    after = home(client, read, shop["c9"])

    # then the basket item and the viewed wine lead, each saying why, their staple still
    # there, and what goes with the basket follows (a list view alone steers nothing; a
    # personal list is ranked as measured, not spread across categories)
    assert after == [
        ("K-GLASS", "in_your_basket"),
        ("G-PASTA", "buy_again"),
        ("W-BAROLO", "recently_viewed"),
        ("W-CHIANTI", "goes_with_your_basket"),
        ("W-RIOJA", "goes_with_your_basket"),
    ]
    # and the customer's timeline says what they did, in words, latest first (the profile
    # was made when the processor read these events, after them)
    profile = customers.customer_profile(db, customer_id=shop["c9"], currency="EUR")
    labels = [profile["timeline_labels"][event.position] for event in profile["timeline"]]
    assert labels[:4] == [
        "Customer created",
        "Viewed a product list: 1 product",
        "Added to basket: K-GLASS",
        "Viewed a product: Barolo",
    ]


def test_browsing_is_not_used_without_consent_or_once_old(
    client: TestClient, api_key, db: Session, shop: dict[str, str]
) -> None:
    # given c9 put wine glasses in their basket
    read = api_key("read")
    before = home(client, read, shop["c9"])
    browse(client, api_key("ingest"), db, ("Cart Viewed", {"products": [{"sku": "K-GLASS"}]}))
    assert home(client, read, shop["c9"])[0] == ("K-GLASS", "in_your_basket")

    # when a week and a day have passed, then it no longer steers anything
    clock.set_clock(clock.FrozenClock(NOW + timedelta(days=8)))
    assert service.recently_browsed(db, customer_id=shop["c9"], at=clock.now()) == ()
    clock.set_clock(clock.FrozenClock(NOW))

    # and when they withdraw personalisation consent, their browsing is not used at all
    customers.set_consent(
        db, customer_id=shop["c9"], purpose="personalization", granted=False, source="test"
    )
    reasons = {reason for _, reason in home(client, read, shop["c9"])}
    assert not reasons & {"in_your_basket", "goes_with_your_basket", "recently_viewed"}
    assert before[0] == ("G-PASTA", "buy_again")


def test_recent_browsing_is_read_newest_first_and_bounded(
    client: TestClient, api_key, db: Session, shop: dict[str, str]
) -> None:
    # given c9 browsed a product twice, then another, among other events
    browse(
        client,
        api_key("ingest"),
        db,
        ("Product Viewed", {"sku": "W-BAROLO"}),
        ("Product Viewed", {"product_id": 4711}),
        ("Checkout Started", {"order_id": "X"}),
        ("Product Viewed", {"sku": "W-BAROLO"}),
        ("Product Added", {"sku": "K-GLASS"}),
    )

    # when their recent browsing is read
    browsed = service.recently_browsed(db, customer_id=shop["c9"], at=NOW)

    # then each product is there once, newest first, with what was done
    assert browsed == (("K-GLASS", "added"), ("W-BAROLO", "viewed"), ("4711", "viewed"))
