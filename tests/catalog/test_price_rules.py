"""Price rules over time: a new rule for a place ends the one in force there, so the newest
wins and the history stays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.models import ChannelPrice
from rapport.platform import clock
from tests.catalog.factories import add_products
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, order_body, seed_catalog


def _product(db: Session, sku: str = "APP-3", price_minor: int = 2400) -> None:
    add_products(db, sku, price_minor=price_minor)


def _rules(db: Session, sku: str) -> list[ChannelPrice]:
    return list(db.scalars(select(ChannelPrice).where(ChannelPrice.sku == sku).order_by("id")))


def test_a_newer_rule_for_the_same_place_ends_the_one_in_force(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given an app price rule
    _product(db)
    writer, reader = api_key("write"), auth(api_key("read"))
    first = {"sku": "APP-3", "channel": "app", "price_minor": 2500, "reason": "app launch"}
    assert client.post("/v1/prices/channel", json=first, headers=command(writer)).status_code == 201

    # when a corrected rule for the same SKU and channel is recorded
    second = {**first, "price_minor": 2600, "reason": "app launch, corrected"}
    assert (
        client.post("/v1/prices/channel", json=second, headers=command(writer)).status_code == 201
    )

    # then the app price is the newer one, now and at any moment after it began
    assert catalog.effective_price(db, sku="APP-3", channel="app") == 2600
    old, new = _rules(db, "APP-3")
    assert new.valid_to is None
    assert old.valid_to is not None
    assert clock.as_utc(old.valid_to) <= clock.now()
    price, rule = catalog.price_on(2400, [old, new], channel="app", store_id=None, at=clock.now())
    assert (price, rule.reason if rule else None) == (2600, "app launch, corrected")
    # and the consistency report lists only the rule in force
    report = client.get("/v1/prices/consistency", headers=reader).json()
    assert [(d["price_minor"], d["reason"]) for d in report["items"]] == [
        (2600, "app launch, corrected")
    ]
    # while a rule for another place is left alone
    web = catalog.set_channel_price(db, sku="APP-3", channel="web", price_minor=2000, reason="w")
    catalog.set_channel_price(db, sku="APP-3", channel="app", price_minor=2700, reason="again")
    assert db.get(ChannelPrice, web.id).valid_to is None  # type: ignore[union-attr]
    assert catalog.effective_price(db, sku="APP-3", channel="web") == 2000


def test_of_two_rules_for_one_place_both_open_the_one_recorded_last_decides(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given two open rules for the app recorded by an earlier version, which ended none
    _product(db)
    db.add_all(
        [
            ChannelPrice(sku="APP-3", channel="app", price_minor=2500, reason="app launch"),
            ChannelPrice(sku="APP-3", channel="app", price_minor=2600, reason="corrected"),
        ]
    )
    db.commit()

    # then the later one sets the price, and the report lists it alone
    assert catalog.effective_price(db, sku="APP-3", channel="app") == 2600
    price, rule = catalog.price_on(
        2400, _rules(db, "APP-3"), channel="app", store_id=None, at=clock.now()
    )
    assert (price, rule.reason if rule else None) == (2600, "corrected")
    report = client.get("/v1/prices/consistency", headers=auth(api_key("read"))).json()
    assert [d["reason"] for d in report["items"]] == ["corrected"]
    assert catalog.count_price_differences(db) == (1, 1)


def test_a_rule_begins_when_it_is_recorded_and_never_prices_earlier_orders(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given an app order placed last week at the catalogue price (12.00)
    seed_catalog(db)
    writer, reader = auth(api_key("write")), auth(api_key("read"))
    placed_then = (clock.now() - timedelta(days=5)).isoformat()
    body = order_body(channel="app", placed_at=placed_then, lines=[
        {"sku": CHIANTI, "quantity": 1, "unit_price_minor": 1200},
    ], subtotal_minor=1200, discount_minor=0, total_minor=1690, payments=[])  # fmt: skip
    placed = client.post("/v1/orders", json=body, headers=command(writer))
    assert placed.status_code == 201, placed.text

    # when an app promotion from today is recorded
    before = clock.now()
    rule = {"sku": CHIANTI, "channel": "app", "price_minor": 1300, "reason": "promo from today"}
    answer = client.post("/v1/prices/channel", json=rule, headers=command(writer))

    # then it begins now (the answer says so, with the rule's id) ...
    assert answer.status_code == 201, answer.text
    recorded = answer.json()
    assert {k: recorded[k] for k in rule} == rule
    assert recorded["valid_to"] is None
    assert before <= datetime.fromisoformat(recorded["valid_from"]) <= clock.now()
    assert db.get(ChannelPrice, recorded["rule_id"]) is not None
    # ... today's app price is the rule's, last week's order is not judged by it
    assert catalog.effective_price(db, sku=CHIANTI, channel="app") == 1300
    report = client.get("/v1/orders/reports/price-consistency", headers=reader).json()
    assert report["lines_checked"] == 1
    assert report["differences"] == []


@pytest.mark.parametrize(
    ("channel", "store_id", "says"),
    [
        ("store", "st-nope", "'st-nope' is unknown"),
        ("store", "web", "online warehouse"),
        ("web", "st-par-01", "channel 'store'"),
        ("app", "st-nope", "channel 'store'"),
    ],
)
def test_a_rule_names_a_store_only_on_the_store_channel_and_only_a_known_one(
    client: TestClient, db: Session, api_key: Callable[..., str], channel: str, store_id: str,
    says: str,
) -> None:  # fmt: skip
    # given a catalogue with the store st-par-01 (and the web warehouse)
    seed_catalog(db)
    body = {"sku": CHIANTI, "channel": channel, "store_id": store_id, "price_minor": 1100,
            "reason": "Clapham promo"}  # fmt: skip

    # when a rule names a store that is not there, or a store on another channel
    refused = client.post("/v1/prices/channel", json=body, headers=command(api_key("write")))

    # then it is refused naming store_id, saying what fits, and nothing is recorded
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "store_id"
    assert says in refused.json()["detail"]
    assert _rules(db, CHIANTI) == []
    assert catalog.count_price_differences(db) == (0, 0)


def test_a_rule_for_a_store_of_the_catalogue_is_recorded(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    seed_catalog(db)
    body = {"sku": CHIANTI, "channel": "store", "store_id": "st-par-01", "price_minor": 1100,
            "reason": "Rivoli promo"}  # fmt: skip
    answer = client.post("/v1/prices/channel", json=body, headers=command(api_key("write")))
    assert answer.status_code == 201, answer.text
    assert catalog.effective_price(db, sku=CHIANTI, channel="store", store_id="st-par-01") == 1100
    assert catalog.effective_price(db, sku=CHIANTI, channel="store", store_id="st-x") == 1200


def test_a_rule_ended_over_the_api_stays_as_history_and_prices_no_more(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given a store promo and an app price, in force
    seed_catalog(db)
    writer, reader = api_key("write"), auth(api_key("read"))
    promo = {"sku": CHIANTI, "channel": "store", "store_id": "st-par-01", "price_minor": 1000,
             "reason": "Rivoli promo"}  # fmt: skip
    app = {"sku": CHIANTI, "channel": "app", "price_minor": 1100, "reason": "app"}
    rule_id = client.post("/v1/prices/channel", json=promo, headers=command(writer)).json()[
        "rule_id"
    ]
    client.post("/v1/prices/channel", json=app, headers=command(writer))
    listed = client.get("/v1/prices/consistency", headers=reader).json()["items"]
    assert rule_id in [d["rule_id"] for d in listed]

    # when the promo is ended
    ended = client.delete(f"/v1/prices/channel/{rule_id}", headers=auth(writer))

    # then the answer says when, the store's price is the catalogue's again, the report
    # lists only the app price, and the rule is kept with its window
    assert ended.status_code == 200, ended.text
    assert ended.json()["rule_id"] == rule_id
    assert ended.json()["valid_to"] is not None
    assert catalog.effective_price(db, sku=CHIANTI, channel="store", store_id="st-par-01") == 1200
    listed = client.get("/v1/prices/consistency", headers=reader).json()["items"]
    assert [d["reason"] for d in listed] == ["app"]
    assert db.get(ChannelPrice, rule_id) is not None
    # ending it again changes nothing; an unknown rule is 404 naming rule_id
    again = client.delete(f"/v1/prices/channel/{rule_id}", headers=auth(writer))
    assert again.json() == ended.json()
    unknown = client.delete("/v1/prices/channel/999999", headers=auth(writer))
    assert (unknown.status_code, unknown.json()["field"]) == (404, "rule_id")
    # and a key that may only read may not end one
    assert client.delete(f"/v1/prices/channel/{rule_id}", headers=reader).status_code == 403
