"""No recommendation request can hold a server: empty and unknown carts, stores, items and
customers answer at once on every placement, and a request that runs past its time budget
answers 503 instead of spinning."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert
from rapport.main import create_app
from rapport.platform import budget, clock
from rapport.platform.db import get_db
from rapport.platform.settings import Settings
from rapport.recommend import ranking, service
from tests.conftest import auth

from .factories import NOW, STORES, seed_shop, shop_bundle

PLACEMENTS = ("home", "product_similar", "product_complements", "cart", "email")
# What each placement needs to be a valid request, bound to a store (every item in stock).
VALID = {
    "home": {},
    "email": {},
    "product_similar": {"item_id": "W-CHIANTI"},
    "product_complements": {"item_id": "W-CHIANTI"},
    "cart": {"cart": "W-RIOJA"},
}
ANSWERED_WITHIN_S = 10.0


@pytest.fixture
def shop(db: Session, settings: Settings) -> dict[str, str]:
    clock.set_clock(clock.FrozenClock(NOW))
    ids = seed_shop(db)
    service.train_model(db, data_dir=settings.data_dir, trained_by="test")
    return ids


def get_within(client: TestClient, url: str, params: Any, headers: dict[str, str]) -> Any:
    """The answer to one GET, failing the test (rather than hanging it) when none comes."""
    answers: list[Any] = []
    asking = threading.Thread(
        target=lambda: answers.append(client.get(url, params=params, headers=headers)),
        daemon=True,
    )
    started = time.monotonic()
    asking.start()
    asking.join(ANSWERED_WITHIN_S)
    assert answers, f"no answer within {ANSWERED_WITHIN_S} s to {url} {params}"
    assert time.monotonic() - started < ANSWERED_WITHIN_S
    return answers[0]


# (name, what the request gets on top of the valid one, {placement: (status, field)})
CASES: list[tuple[str, dict[str, str], dict[str, tuple[int, str | None]]]] = [
    (
        "empty cart",
        {"cart": "", "store_id": STORES[0]},
        {p: (422, "cart") if p == "cart" else (200, None) for p in PLACEMENTS},
    ),
    (
        "unknown cart sku",
        {"cart": "NOT-A-SKU", "store_id": STORES[0]},
        dict.fromkeys(PLACEMENTS, (200, None)),
    ),
    (
        "unknown store",
        {"store_id": "st-nowhere"},
        dict.fromkeys(PLACEMENTS, (404, "store_id")),
    ),
    (
        "unknown item",
        {"item_id": "NOT-A-PRODUCT", "store_id": STORES[0]},
        # a placement not about one product refuses any item_id, known or not
        {
            p: (404, "item_id")
            if p in ("product_similar", "product_complements")
            else (422, "item_id")
            for p in PLACEMENTS
        },
    ),
    (
        "unknown customer",
        {"customer_id": "cus_nobody", "store_id": STORES[0]},
        dict.fromkeys(PLACEMENTS, (404, "customer_id")),
    ),
]


@pytest.mark.parametrize(("case", "extra", "expected"), CASES, ids=[c[0] for c in CASES])
def test_empty_and_unknown_inputs_answer_at_once_on_every_placement(
    client: TestClient,
    api_key,
    shop: dict[str, str],
    case: str,
    extra: dict[str, str],
    expected: dict[str, tuple[int, str | None]],
) -> None:
    headers = auth(api_key("read"))
    for placement in PLACEMENTS:
        # Given a trained shop and a store-bound request that is valid but for one empty or
        # unknown input
        params = {"placement": placement, **VALID[placement], **extra}
        # When it is asked
        response = get_within(client, "/v1/recommendations", params, headers)
        # Then it answers at once: 200, or a 4xx naming the field
        status, field = expected[placement]
        assert response.status_code == status, (placement, response.text)
        if field is not None:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["field"] == field, placement
    # And the server still answers the next request
    again = get_within(
        client,
        "/v1/recommendations",
        {"placement": "product_complements", "item_id": "W-CHIANTI"},
        headers,
    )
    assert again.status_code == 200


def test_a_cart_item_added_after_training_gets_its_category_complements(
    client: TestClient, api_key, shop: dict[str, str], db: Session
) -> None:
    # Given a red wine added to the catalogue after the model was trained
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku="W-NEW",
                name="Nero d'Avola",
                category_path="Wine/Red",
                price_minor=1300,
                cost_minor=700,
                currency="EUR",
            )
        ],
    )
    # When it alone is in the cart
    response = get_within(
        client,
        "/v1/recommendations",
        {"placement": "cart", "cart": "W-NEW", "store_id": STORES[0]},
        auth(api_key("read")),
    )
    # Then what goes with red wine is recommended
    assert response.status_code == 200
    assert {i["sku"] for i in response.json()["items"]} & {"K-CORK", "K-GLASS"}


def test_the_stock_search_ends_when_no_candidate_is_left() -> None:
    # Given a cart of SKUs the model does not know (no complement at all: only best sellers)
    # and a store where nothing is in stock
    bundle = shop_bundle()
    context = ranking.Context("cart", cart=("", "NOT-A-SKU"), store_id=STORES[0])
    asked: list[list[str]] = []

    def nothing_in_stock(skus: list[str]) -> set[str]:
        asked.append(skus)
        return set()

    # When it is ranked, Then nothing is found and the stock was asked about at most once
    assert ranking.rank(bundle, context, [], available=nothing_in_stock) == []
    assert len(asked) <= 1


# ------------------------------------------------------------------------ the time budget


@pytest.fixture
def tight_app(settings: Settings, db: Session) -> FastAPI:
    """The application with a budget of half a second per request."""
    application = create_app(
        settings.model_copy(update={"request_timeout_seconds": 0.5}), run_worker=False
    )
    application.dependency_overrides[get_db] = lambda: db
    return application


@pytest.fixture
def tight_client(tight_app: FastAPI) -> Any:
    with TestClient(tight_app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_out_of_time(response: Any) -> None:
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == str(budget.RETRY_AFTER_SECONDS)
    assert response.json()["type"].endswith("/out-of-time")


def test_a_recommendation_that_loops_answers_503_within_its_budget(
    tight_client: TestClient, api_key, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fault that keeps the stock search from ever getting further (every round finds
    # the same single candidate), the bug class behind requests that spun for good
    def stuck(scores: Any, count: int) -> list[int]:
        return [int(np.flatnonzero(np.isfinite(scores))[0])]

    monkeypatch.setattr(ranking, "_best", stuck)
    headers = auth(api_key("read"))
    # When a store-bound request runs into it (on SQLite on the event loop itself, on
    # PostgreSQL in a worker thread)
    started = time.monotonic()
    response = get_within(
        tight_client,
        "/v1/recommendations",
        {"placement": "cart", "cart": "W-RIOJA", "store_id": STORES[0]},
        headers,
    )
    # Then it answers 503 with Retry-After once its half second is spent
    assert_out_of_time(response)
    assert time.monotonic() - started < 5
    # And once the fault is gone the server answers as before
    monkeypatch.undo()
    time.sleep(0.6)  # a worker thread stuck in the loop stops at its own deadline
    again = get_within(
        tight_client,
        "/v1/recommendations",
        {"placement": "cart", "cart": "W-RIOJA", "store_id": STORES[0]},
        headers,
    )
    assert again.status_code == 200


def test_a_read_stuck_waiting_answers_503_at_its_deadline(
    tight_client: TestClient, api_key, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a read whose handler waits (in a worker thread) far longer than its budget
    real_list_rules = service.list_rules

    def slow_list_rules(db: Session, **page: Any) -> Any:
        time.sleep(2)
        return real_list_rules(db, **page)

    monkeypatch.setattr(service, "list_rules", slow_list_rules)
    headers = auth(api_key("read"))
    # When it is asked
    started = time.monotonic()
    response = get_within(tight_client, "/v1/recommendations/rules", None, headers)
    # Then the client gets 503 at the deadline, not when the handler is done
    assert_out_of_time(response)
    assert time.monotonic() - started < 1.5
    time.sleep(1.6)  # let the abandoned handler finish with the test's session


def test_a_command_is_not_cut_off_by_the_budget(
    tight_client: TestClient, api_key, shop: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the shop's catalogue, and a command that takes longer than the budget
    real_create_rule = service.create_rule

    def slow_create_rule(db: Session, **kwargs: Any) -> Any:
        time.sleep(0.8)
        return real_create_rule(db, **kwargs)

    monkeypatch.setattr(service, "create_rule", slow_create_rule)
    headers = {**auth(api_key("read", "write")), "Idempotency-Key": "slow-rule"}
    rule = {"name": "Rioja first", "action": "pin", "sku": "W-RIOJA", "position": 1}
    # When it is sent
    response = tight_client.post("/v1/recommendations/rules", json=rule, headers=headers)
    # Then it completes and says so: a 503 could land after its commit
    assert response.status_code == 201
    assert tight_client.get("/v1/recommendations/rules", headers=headers).json()["items"][0][
        "name"
    ] == ("Rioja first")


def test_work_outside_a_request_has_no_deadline_and_inside_one_stops() -> None:
    # Given no request: checking the budget does nothing
    budget.check()
    assert budget.remaining() is None
    # Given a deadline already passed: the ranking loops stop with 503
    bundle = shop_bundle()
    with budget.deadline(-1.0), pytest.raises(budget.OutOfTime):
        ranking.rank(bundle, ranking.Context("home", limit=5), [])
