"""Every route that takes coupon codes counts toward the key's coupon lookup limit
(RAPPORT_COUPON_RATE_LIMIT), not only coupon validation: an order or a checkout carrying codes
is a lookup too, so codes cannot be guessed through them past the limit. Requests without
codes count toward the key's general limit only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.main import create_app
from rapport.platform.db import get_db
from tests.conftest import auth
from tests.loyalty.rewards.test_checkout_api import cart, order_from, paying_member
from tests.orders.factories import order_body

BOTH_POLICIES = '"key-60s";q=1000;w=60, "coupons-60s";q=2;w=60'


@pytest.fixture
def coupon_limited(settings, db) -> Iterator[Callable[[], TestClient]]:  # type: ignore[no-untyped-def]
    """A client of an app whose keys may make 1,000 requests but 2 coupon lookups a minute."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        # The sliding window weighs the previous minute's count and rounds down: just after a
        # minute boundary, 2 lookups made before it count as 1. A test that straddled one
        # would see a third lookup admitted, so each starts with a quarter minute to spare.
        into_minute = time.time() % 60
        if into_minute > 45:
            time.sleep(60.5 - into_minute)
        changes = {"api_rate_limit": "1000/minute", "coupon_rate_limit": "2/minute"}
        application = create_app(settings.model_copy(update=changes), run_worker=False)
        application.dependency_overrides[get_db] = lambda: db
        clients.append(TestClient(application, raise_server_exceptions=False).__enter__())
        return clients[-1]

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _order(
    client: TestClient, key: dict[str, str], member: str, codes: list[str], number: int
) -> Any:
    checkout = client.post("/v1/loyalty/checkout", json=cart(member), headers=key)
    assert checkout.status_code == 200, checkout.text
    return client.post(
        "/v1/orders",
        json=order_from(checkout.json(), member, codes, 0),
        headers={**key, "Idempotency-Key": f"order-{number}"},
    )


def _assert_refused_for_coupons(refused: Any) -> None:
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == BOTH_POLICIES
    assert '"coupons-60s";r=0;' in refused.headers["RateLimit"]
    assert refused.json()["violated-policies"] == ["coupons-60s"]


def test_orders_with_coupon_codes_count_toward_the_coupon_limit(
    coupon_limited, api_key, db: Session
) -> None:
    # given a member, and a key allowed 2 coupon lookups a minute
    client = coupon_limited()
    member = paying_member(db)
    key = auth(api_key("write"))

    # when the key places three orders, each trying a guessed coupon code
    guesses = [_order(client, key, member, [f"GUESS{n}"], n) for n in range(3)]

    # then the first two are placed (the guesses are unknown, so nothing is taken off) and the
    # third is refused for the coupon policy, saying when to come back
    assert [g.status_code for g in guesses[:2]] == [201, 201], guesses[1].text
    assert guesses[0].headers["RateLimit-Policy"] == BOTH_POLICIES
    assert '"coupons-60s";r=1;' in guesses[0].headers["RateLimit"]
    _assert_refused_for_coupons(guesses[2])

    # and orders without codes (none given, or an empty list) are still placed
    plain = client.post(
        "/v1/orders",
        json=order_body(customer_id=member),
        headers={**key, "Idempotency-Key": "order-plain"},
    )
    assert plain.status_code == 201, plain.text
    assert plain.headers["RateLimit-Policy"] == '"key-60s";q=1000;w=60'
    empty = _order(client, key, member, [], 10)
    assert empty.status_code == 201, empty.text
    assert "coupons-60s" not in empty.headers["RateLimit-Policy"]


def test_checkout_orders_and_validation_share_one_coupon_count(
    coupon_limited, api_key, db: Session
) -> None:
    # given a member, and a key allowed 2 coupon lookups a minute
    client = coupon_limited()
    member = paying_member(db)
    key = auth(api_key("read", "write"))

    # when the key validates a code, prices a cart with a code, then places an order with one
    validated = client.post("/v1/loyalty/coupons/validate", json={"codes": ["GUESS0"]}, headers=key)
    priced = client.post("/v1/loyalty/checkout", json=cart(member, coupons=["GUESS1"]), headers=key)
    ordered = _order(client, key, member, ["GUESS2"], 1)

    # then the first two are answered and the order is the third lookup: refused
    assert (validated.status_code, priced.status_code) == (200, 200)
    assert priced.json()["refused_coupons"] == {"GUESS1": "unknown"}
    _assert_refused_for_coupons(ordered)
    # and a checkout with a code is refused too, while one without codes is answered
    again = client.post("/v1/loyalty/checkout", json=cart(member, coupons=["GUESS3"]), headers=key)
    _assert_refused_for_coupons(again)
    assert client.post("/v1/loyalty/checkout", json=cart(member), headers=key).status_code == 200


def test_each_code_counts_so_many_codes_in_one_request_are_no_way_around(
    coupon_limited, api_key, db: Session
) -> None:
    # given a member, and keys allowed 2 coupon lookups a minute
    client = coupon_limited()
    member = paying_member(db)
    key = auth(api_key("read", "write"))
    other = auth(api_key("read", "write"))

    # when one key validates two codes in one request, then orders with one more
    pair = client.post(
        "/v1/loyalty/coupons/validate", json={"codes": ["GUESS0", "GUESS1"]}, headers=key
    )
    ordered = _order(client, key, member, ["GUESS2"], 1)

    # then the two codes used the whole allowance: the order is refused
    assert pair.status_code == 200
    assert '"coupons-60s";r=0;' in pair.headers["RateLimit"]
    _assert_refused_for_coupons(ordered)

    # when another key sends three codes at once, then two
    three = client.post(
        "/v1/loyalty/checkout", json=cart(member, coupons=["A1", "A2", "A3"]), headers=other
    )
    two = client.post(
        "/v1/loyalty/checkout", json=cart(member, coupons=["A1", "A2"]), headers=other
    )

    # then three do not fit (and count nothing), two do
    assert three.status_code == 429
    assert three.json()["violated-policies"] == ["coupons-60s"]
    assert two.status_code == 200, two.text
