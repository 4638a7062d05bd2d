"""Return risk before the sale, served from a model trained on the orders Rapport holds."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo, load_demo_orders
from rapport.orders import service as orders
from rapport.orders.history import ImportedLine, ImportedOrder, ImportedReturn
from rapport.orders.models import Order
from rapport.orders.return_risk import (
    Basket,
    BasketLine,
    BoostingParams,
    ReturnHistory,
    ReturnRiskModel,
)
from rapport.orders.return_risk import serving as risk
from rapport.platform import budget, clock
from rapport.platform.db import open_session
from tests.conftest import auth, command

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


def small_model() -> ReturnRiskModel:
    """One candidate setting and two calibration folds: the real pipeline, test-sized."""
    return ReturnRiskModel(grid=[BoostingParams(0.1, 40, 7, 20, 1.0)], calibration_folds=2)


@pytest.fixture
def demo_history(db):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW)
    risk.forget_cached_models()
    retailer = DemoRetailer(seed=21, customers=400)
    load_demo(db, retailer=retailer)
    load_demo_orders(db, retailer=retailer)
    yield retailer
    risk.forget_cached_models()


def _web_order(
    order_id: str,
    customer_external_id: str | None,
    line: ImportedLine,
    returns: tuple[ImportedReturn, ...] = (),
) -> ImportedOrder:
    """A shipped web order of three days ago, as an import records it."""
    return ImportedOrder(
        order_id=order_id,
        customer_external_id=customer_external_id,
        channel="web",
        fulfilment="ship",
        store_id=None,
        placed_at=NOW - timedelta(days=3),
        currency="EUR",
        lines=[line],
        returns=list(returns),
    )


def _basket(retailer: DemoRetailer) -> list[dict[str, int | str]]:
    apparel = [p for p in retailer.products() if p.category_path.startswith("Apparel")][:2]
    return [{"sku": p.sku, "quantity": 1, "unit_price_minor": p.price_minor} for p in apparel]


def test_without_a_model_the_history_baseline_answers(
    client, api_key, demo_history, settings
) -> None:
    response = client.post(
        "/v1/orders/return-risk",
        json={"customer_id": "C0000001", "lines": _basket(demo_history)},
        headers=auth(api_key("read")),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "history_baseline"
    assert body["probability"] == body["baseline_probability"]
    assert 0.0 < body["probability"] < 1.0


def test_trained_model_scores_explains_and_is_deterministic(
    client, api_key, db, demo_history, settings
) -> None:
    # given a model trained twice with the same seed on the demo's orders and returns
    first = risk.train_return_risk(db, data_dir=settings.data_dir, seed=3, model=small_model())
    assert first is not None
    clock.set_clock(lambda: NOW.replace(second=1))
    second = risk.train_return_risk(db, data_dir=settings.data_dir, seed=3, model=small_model())
    assert second is not None
    assert first.read_bytes() == second.read_bytes()
    # when a basket is scored for the customer who returns most and for one who never did
    returners = sorted(
        demo_history.histories(), key=lambda h: sum(len(o.returns) for o in h.orders), reverse=True
    )
    heavy = returners[0].customer.external_id
    keeper = next(h for h in returners[::-1] if len(h.orders) >= 3).customer.external_id
    key = auth(api_key("read"))
    answers = {}
    for external_id in (heavy, keeper):
        response = client.post(
            "/v1/orders/return-risk",
            json={
                "customer_id": external_id,
                "lines": _basket(demo_history),
                "return_cost_minor": 2500,
            },
            headers=key,
        )
        assert response.status_code == 200
        answers[external_id] = response.json()
    # then the served model is the newest file, the heavy returner scores higher, with reasons
    assert answers[heavy]["model"] == second.name
    assert answers[heavy]["probability"] > answers[keeper]["probability"]
    assert len(answers[heavy]["reasons"]) >= 1
    assert all(isinstance(reason, str) and reason for reason in answers[heavy]["reasons"])


def test_a_basket_in_another_currency_is_not_scored_as_the_shops_money(
    client, api_key, db, demo_history, settings
) -> None:
    # given a model trained on the demo shop's orders, all in EUR
    trained = risk.train_return_risk(db, data_dir=settings.data_dir, seed=3, model=small_model())
    assert trained is not None
    sku = _basket(demo_history)[0]["sku"]
    customer = "C0000002"
    key = auth(api_key("read"))

    # when one item at 15000 minor units is scored in EUR (150.00 EUR) and in KRW (15,000
    # KRW, about 10 EUR)
    def scored(currency: str) -> Any:
        lines = [{"sku": sku, "quantity": 1, "unit_price_minor": 15000}]
        body = {"customer_id": customer, "currency": currency, "lines": lines}
        response = client.post("/v1/orders/return-risk", json=body, headers=key)
        assert response.status_code == 200, response.text
        return response.json()

    eur, krw = scored("EUR"), scored("KRW")

    # then the KRW basket's amounts are not read as EUR: it scores differently, and the
    # amounts the model saw for it, and the reasons, are not 150.00 of anything
    assert krw["probability"] != eur["probability"]
    with risk._lock:
        row = risk._cache[str(settings.data_dir)].history.features(
            Basket(
                basket_id="pending",
                customer_id=str(customers.resolve_customer_ref(db, ref=customer)),
                placed_at=clock.now(),
                lines=(BasketLine(str(sku), "", 1, 15000),),
                currency="KRW",
            )
        )
    assert (row.shop_currency, row.value_minor, row.max_unit_price_minor) == ("EUR", None, None)
    assert not any("150.00" in reason for reason in krw["reasons"])
    assert all("not compared" in reason for reason in krw["reasons"] if "KRW" in reason), krw[
        "reasons"
    ]


def test_incentive_only_when_it_pays(client, api_key, demo_history) -> None:
    key = auth(api_key("read"))
    lines = _basket(demo_history)
    free_returns = client.post(
        "/v1/orders/return-risk",
        json={"customer_id": "C0000002", "lines": lines, "return_cost_minor": 0},
        headers=key,
    ).json()
    assert free_returns["incentive"] is None
    costly = client.post(
        "/v1/orders/return-risk",
        json={"customer_id": "C0000002", "lines": lines, "return_cost_minor": 1_000_000},
        headers=key,
    ).json()
    assert costly["incentive"]["expected_saving_minor"] > 0


def test_unknown_sku_is_named(client, api_key, demo_history) -> None:
    response = client.post(
        "/v1/orders/return-risk",
        json={
            "customer_id": "C0000002",
            "lines": [{"sku": "NOPE", "quantity": 1, "unit_price_minor": 10}],
        },
        headers=auth(api_key("read")),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "lines.0.sku"


def _risk(client: Any, key: dict[str, str], customer: str | None, lines: Any) -> Any:
    body: dict[str, Any] = {"lines": lines, "return_cost_minor": 2500}
    if customer is not None:
        body["customer_id"] = customer
    return client.post("/v1/orders/return-risk", json=body, headers=key)


def test_the_customer_is_resolved_as_every_endpoint_resolves_one(
    client, api_key, db, demo_history
) -> None:
    # given the demo shop, a customer who returns a lot, and no model (the history answers)
    key = auth(api_key("read"))
    lines = _basket(demo_history)
    returner = max(
        demo_history.histories(), key=lambda h: sum(len(o.returns) for o in h.orders)
    ).customer.external_id
    by_number = _risk(client, key, returner, lines)
    assert by_number.status_code == 200, by_number.text
    rapport_id = customers.resolve_customer_ref(db, ref=returner)

    # when a customer number nobody has is scored
    unknown = _risk(client, key, "NOPE", lines)
    # then it is 404 naming customer_id, not scored as a new customer
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["field"] == "customer_id"
    assert "NOPE" in unknown.json()["detail"]

    # a guest's basket (no customer) is scored as a new customer's
    guest = _risk(client, key, None, lines)
    assert guest.status_code == 200, guest.text
    assert guest.json()["probability"] != by_number.json()["probability"]

    # Rapport's id answers as the number does
    assert _risk(client, key, rapport_id, lines).json() == by_number.json()

    # when the customer is erased, their Rapport id is 404 "was erased", not scored on history
    erased = client.post(
        f"/v1/customers/{rapport_id}/erase",
        json={"requested_by": "test"},
        headers=command(api_key("admin")),
    )
    assert erased.status_code == 200, erased.text
    gone = _risk(client, key, rapport_id, lines)
    assert gone.status_code == 404, gone.text
    assert gone.json()["field"] == "customer_id"
    assert "was erased" in gone.json()["detail"]


def test_a_merged_customer_is_scored_as_the_profile_they_went_into(
    client, api_key, db, demo_history
) -> None:
    key = auth(api_key("read"))
    lines = _basket(demo_history)
    histories = sorted(demo_history.histories(), key=lambda h: len(h.orders), reverse=True)
    kept_number, merged_number = (h.customer.external_id for h in histories[:2])
    kept = customers.resolve_customer_ref(db, ref=kept_number)
    merged = customers.resolve_customer_ref(db, ref=merged_number)
    customers.merge_customers(
        db, source_customer_id=merged, target_customer_id=kept, reason="same person", actor="t"
    )
    assert _risk(client, key, merged, lines).json() == _risk(client, key, kept, lines).json()


def test_risk_distribution_bands_every_recent_basket(db, demo_history, settings) -> None:
    assert risk.recent_risk_distribution(db, data_dir=settings.data_dir)["model"] is None
    risk.train_return_risk(db, data_dir=settings.data_dir, seed=1, model=small_model())
    distribution = risk.recent_risk_distribution(db, data_dir=settings.data_dir, last=300)
    assert distribution["model"].startswith("return-risk-")
    assert sum(distribution["counts"]) == 300
    assert len(distribution["bands"]) == 10
    # and it says which model won at training, with every candidate's validation figures
    summary = distribution["summary"]
    kinds = {"boosted_trees", "logistic_regression", "blend"}
    assert summary["kind"] in kinds
    assert [c["kind"] for c in summary["candidates"]] == [
        "boosted_trees",
        "logistic_regression",
        "blend",
    ]
    assert [c["kind"] for c in summary["candidates"] if c["chosen"]] == [summary["kind"]]


def test_the_returned_share_is_judged_only_on_orders_whose_window_closed(
    db, demo_history, settings
) -> None:
    # given a trained model, and orders placed in the last 30 days that may still come back
    model_path = risk.train_return_risk(db, data_dir=settings.data_dir, seed=1, model=small_model())
    assert model_path is not None
    baskets = list(risk.labelled_baskets(db))
    settled_before = NOW - risk.LABEL_WINDOW
    assert baskets[-1].basket.placed_at > settled_before

    # when the orders page asks for the risk bands of the last 300 orders
    distribution = risk.recent_risk_distribution(db, data_dir=settings.data_dir, last=300)

    # then every one of the last 300 orders is banded, but the share that came back is that
    # of the last 300 placed at least 30 days ago, each scored from what was known before it
    assert sum(distribution["counts"]) == 300
    assert distribution["settled_before"] == settled_before
    model = ReturnRiskModel.load(model_path)
    rows = ReturnHistory.stream(baskets, model.history_config)
    settled = [
        (row, item.returned)
        for row, item in zip(rows, baskets, strict=True)
        if item.basket.placed_at <= settled_before
    ][-300:]
    assert distribution["settled"] == len(settled) == 300
    judged, came_back = [0] * 10, [0] * 10
    for score, (_, returned) in zip(
        model.predict_features([row for row, _ in settled]), settled, strict=True
    ):
        band = min(int(score * 10), 9)
        judged[band] += 1
        came_back[band] += returned
    assert distribution["judged"] == judged
    assert distribution["returned_share"] == [
        round(r / n, 3) if n >= risk.MIN_BAND_ORDERS else None
        for r, n in zip(came_back, judged, strict=True)
    ]
    # and the bands the model puts most orders in are judged, the thin ones left blank
    assert any(share is not None for share in distribution["returned_share"])


def test_a_model_file_from_an_older_version_waits_for_the_next_training(
    client, api_key, db, demo_history, settings
) -> None:
    # given only a model file written for other features (an older Rapport)
    directory = risk.models_directory(settings.data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"format": "rapport.return_risk", "version": 1})
    np.savez(directory / "return-risk-20260101T000000.npz", header=np.array(header))

    # when a basket is scored and the orders page asks for the risk bands
    response = client.post(
        "/v1/orders/return-risk",
        json={"customer_id": "C0000001", "lines": _basket(demo_history)},
        headers=auth(api_key("read")),
    )

    # then the history baseline answers, and the page shows no model rather than failing
    assert response.status_code == 200
    assert response.json()["model"] == "history_baseline"
    assert risk.recent_risk_distribution(db, data_dir=settings.data_dir)["model"] is None


def test_orders_know_when_they_came_back(db, demo_history) -> None:
    # the first return within the window dates the return; no return before the order
    baskets = list(risk.labelled_baskets(db))
    returned = [b for b in baskets if b.returned]
    assert returned
    assert all(b.returned_at is not None for b in returned)
    assert all(
        b.basket.placed_at <= b.returned_at <= b.basket.placed_at + risk.LABEL_WINDOW
        for b in returned
        if b.returned_at is not None
    )
    assert all(b.returned_at is None for b in baskets if not b.returned)


def test_the_history_streams_every_order_with_its_lines_oldest_first(db, demo_history) -> None:
    # given the demo's orders, and a guest's order besides (no customer: no basket)
    from sqlalchemy import select

    from rapport.orders.models import Order, OrderLine

    guest_order = _web_order("guest-1", None, ImportedLine("APP-00001", 1, 1000))
    assert orders.import_orders(db, orders=[guest_order]) == 1
    orders_with_customer = {
        order_id: (customer_id, placed_at)
        for order_id, customer_id, placed_at in db.execute(
            select(Order.order_id, Order.customer_id, Order.placed_at).where(
                Order.customer_id.is_not(None)
            )
        )
    }
    lines: dict[str, list[tuple[str, int, int]]] = {}
    for order_id, sku, quantity, price in db.execute(
        select(
            OrderLine.order_id, OrderLine.sku, OrderLine.quantity, OrderLine.unit_price_minor
        ).order_by(OrderLine.order_id, OrderLine.line_no)
    ):
        if order_id in orders_with_customer:
            lines.setdefault(order_id, []).append((sku, quantity, price))

    # when the history reads them as baskets, one at a time
    baskets = risk.labelled_baskets(db)
    assert not isinstance(baskets, list)  # a stream: never every order line at once
    read = list(baskets)

    # then each order with a customer and a line is one basket, whole, oldest first
    assert sorted(b.basket.basket_id for b in read) == sorted(lines)
    assert "guest-1" not in {b.basket.basket_id for b in read}
    for item in read:
        basket = item.basket
        assert [(line.sku, line.quantity, line.unit_price_minor) for line in basket.lines] == (
            lines[basket.basket_id]
        )
        assert (basket.customer_id, basket.placed_at) == orders_with_customer[basket.basket_id]
    times = [(b.basket.placed_at, b.basket.basket_id) for b in read]
    assert times == sorted(times)
    # and the count the replay plans its last baskets' features by is that number
    assert risk._basket_count(db) == len(read)


@dataclass
class CommittedShop:
    """A demo shop in a database whose commits every connection sees (the history is read
    by a thread of its own), scored as the API and the admin pages score it."""

    url: str
    data_dir: Path
    retailer: DemoRetailer

    def score(self, customer_id: str, product: Any, *, wait: bool = True) -> dict[str, object]:
        with open_session(self.url) as db:
            return risk.assess_return_risk(
                db,
                customer_id=customer_id,
                lines=[risk.RiskLine(product.sku, 1, product.price_minor)],
                channel="web",
                currency="EUR",
                return_cost_minor=2500,
                data_dir=self.data_dir,
                wait=wait,
            )

    def distribution(self) -> dict[str, Any]:
        with open_session(self.url) as db:
            return risk.recent_risk_distribution(db, data_dir=self.data_dir)


@pytest.fixture
def committed_shop(committed_url: str, settings):  # type: ignore[no-untyped-def]
    """Call with a number of customers: a demo shop of that size, committed."""

    def load(customers: int) -> CommittedShop:
        retailer = DemoRetailer(seed=21, customers=customers)
        with open_session(committed_url) as db:
            load_demo(db, retailer=retailer)
            load_demo_orders(db, retailer=retailer)
            db.commit()
        return CommittedShop(committed_url, settings.data_dir, retailer)

    clock.set_clock(lambda: NOW)
    risk.forget_cached_models()
    yield load
    risk.forget_cached_models()


def test_a_stale_history_is_rebuilt_while_requests_keep_answering(
    committed_shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a shop with a trained model, fewer orders than the orders page bands, and a
    # basket scored once (which builds the history)
    shop = committed_shop(150)
    with open_session(shop.url) as db:
        assert risk.train_return_risk(db, data_dir=shop.data_dir, seed=1, model=small_model())
    regular = next(h for h in shop.retailer.histories() if len(h.orders) >= 3).customer.external_id
    product = shop.retailer.products()[0]

    def score() -> dict[str, object]:
        return shop.score(regular, product)

    def banded() -> int:
        return sum(shop.distribution()["counts"])

    # (the orders page does not wait for the first history: it says it is reading it)
    with risk._build_lock, ThreadPoolExecutor(1) as pool:
        first_view = pool.submit(shop.distribution).result(timeout=20)
    assert first_view["loading"] is True
    assert first_view["model"] is None

    before = score()
    orders_before = banded()
    assert orders_before < risk.RECENT_BASKETS

    # when the customer orders again, and the history has aged
    with open_session(shop.url) as db:
        added = orders.import_orders(
            db,
            orders=[
                _web_order(
                    "late-1",
                    regular,
                    ImportedLine(product.sku, 2, product.price_minor),
                    (ImportedReturn(product.sku, 2, "too small", NOW - timedelta(days=1), "web"),),
                )
            ],
        )
        db.commit()
    assert added == 1
    monkeypatch.setattr(risk, "HISTORY_MAX_AGE_SECONDS", 0.0)

    # then, while the next history cannot finish, requests answer at once from the old one
    with risk._build_lock, ThreadPoolExecutor(1) as pool:
        assert pool.submit(score).result(timeout=20) == before
        assert pool.submit(banded).result(timeout=20) == orders_before
    # and once it is built, the new order is in it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and banded() == orders_before:
        time.sleep(0.2)
    assert banded() == orders_before + 1


def test_nightly_training_reads_while_the_shop_is_writing(committed_shop, backend) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL locks rows, not the database: a reader never waits for writers")
    # given a shop, and a writer in the middle of a transaction (an import, a checkout)
    shop = committed_shop(150)

    def train() -> Path | None:
        with open_session(shop.url) as db:
            return risk.train_return_risk(db, data_dir=shop.data_dir, seed=1, model=small_model())

    with open_session(shop.url) as writer, ThreadPoolExecutor(1) as pool:
        writer.execute(select(func.count()).select_from(Order))  # begins writing: holds the lock
        # when the nightly training reads every order meanwhile
        training = pool.submit(train)
        try:
            # then it does not wait for that writer to finish
            path = training.result(timeout=60)
        finally:
            writer.rollback()
    assert path is not None
    assert path.exists()


def test_the_first_basket_waits_for_the_history_no_longer_than_its_budget(
    committed_shop,
) -> None:
    # given a shop whose history no process has read yet
    shop = committed_shop(60)
    customer = next(iter(shop.retailer.histories())).customer.external_id
    product = shop.retailer.products()[0]

    # when the first basket is scored while the history cannot be finished within its budget
    started = time.monotonic()
    with risk._build_lock, budget.deadline(0.05), pytest.raises(budget.OutOfTime) as refused:
        shop.score(customer, product)
    waited = time.monotonic() - started

    # then it is refused once its budget is spent, with a time to retry, and the next
    # request finds the history built
    assert waited < 2.0
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": str(budget.RETRY_AFTER_SECONDS)}
    assert "still reading the order history" in str(refused.value.detail)
    assert shop.score(customer, product)["model"] == "history_baseline"


def test_a_panel_does_not_wait_for_the_first_history(committed_shop) -> None:
    # given a shop whose history no process has read yet
    shop = committed_shop(60)
    customer = next(iter(shop.retailer.histories())).customer.external_id
    product = shop.retailer.products()[0]

    # when the customer's panel asks without waiting, it is told at once the history is loading
    started = time.monotonic()
    with risk._build_lock, pytest.raises(risk.HistoryLoading):
        shop.score(customer, product, wait=False)
    assert time.monotonic() - started < 2.0

    # and once the history is read (the build it started), the same call answers
    answer = None
    deadline = time.monotonic() + 60
    while answer is None and time.monotonic() < deadline:
        try:
            answer = shop.score(customer, product, wait=False)
        except risk.HistoryLoading:
            time.sleep(0.1)
    assert answer is not None, "the history was not read within 60 s"
    assert answer["model"] == "history_baseline"


def test_a_starting_server_reads_the_history_and_loads_the_model_before_any_request(
    committed_shop, settings
) -> None:
    # given a shop with a trained return-risk model and a recommendation model
    from fastapi.testclient import TestClient

    from rapport.main import create_app
    from rapport.recommend import service as recommend

    shop = committed_shop(150)
    with open_session(shop.url) as db:
        assert risk.train_return_risk(db, data_dir=shop.data_dir, seed=1, model=small_model())
        recommend.train_model(db, data_dir=shop.data_dir, trained_by="test")
        db.commit()
    risk.forget_cached_models()
    regular = next(h for h in shop.retailer.histories() if len(h.orders) >= 3).customer.external_id
    product = shop.retailer.products()[0]

    # when a server starts as `rapport serve` starts it, and nobody asks it anything yet
    with TestClient(create_app(settings, run_worker=False, warm=True)):
        deadline = time.monotonic() + 60
        while str(shop.data_dir) not in risk._cache:
            assert time.monotonic() < deadline, "the history was not read at start"
            time.sleep(0.05)

        # then the first basket is scored from it at once, and the model is already loaded
        assert shop.score(regular, product, wait=False)["model"] is not None
        assert recommend.holder(shop.data_dir).ready()


def test_an_order_dated_in_the_future_is_left_out_and_every_basket_is_scored(
    client, api_key, db, demo_history
) -> None:
    # given an order dated 2099 already in the database (written before the importers
    # refused such dates)
    line = ImportedLine(sku=demo_history.products()[0].sku, quantity=1, unit_price_minor=100)
    future = replace(_web_order("T8", "I-1", line), placed_at=datetime(2099, 3, 1, tzinfo=UTC))
    orders.import_orders(db, orders=[future])
    db.commit()
    risk.forget_cached_models()
    # when baskets are scored for its customer and for another one
    for customer_id in ("I-1", "C0000001"):
        response = client.post(
            "/v1/orders/return-risk",
            json={"customer_id": customer_id, "lines": _basket(demo_history)},
            headers=auth(api_key("read")),
        )
        # then both are scored, the future order left out of the history
        assert response.status_code == 200, response.text
    assert [b.basket.basket_id for b in risk.labelled_baskets(db, placed_by=NOW)][-1] != "T8"


def test_a_history_ahead_of_the_clock_scores_the_basket_as_of_the_history(
    client, api_key, demo_history
) -> None:
    # given a history built, then the clock set back an hour
    basket = {"customer_id": "C0000001", "lines": _basket(demo_history)}
    assert client.post(
        "/v1/orders/return-risk", json=basket, headers=auth(api_key("read"))
    ).is_success
    clock.set_clock(lambda: NOW - timedelta(hours=1))
    # when a basket is scored, then it is, not 500
    response = client.post("/v1/orders/return-risk", json=basket, headers=auth(api_key("read")))
    assert response.status_code == 200, response.text
