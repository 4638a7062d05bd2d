"""A customer merge brings the merged-away profile's orders along: listed under either id,
with their returns, in the survivor's lifetime value and return risk; all in the merge's
transaction, by every road a merge takes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.models import Customer, CustomerMerge
from rapport.demo.generator import CustomerHistory, DemoRetailer
from rapport.demo.loader import load_demo, load_demo_orders
from rapport.domains import load_tasks
from rapport.orders import listing
from rapport.orders import service as orders
from rapport.orders.models import CustomerNotice, CustomerValueScore, Order, ReturnLine
from rapport.orders.return_risk import serving as risk
from rapport.platform import clock
from rapport.platform.db import create_db_engine
from rapport.platform.migrations_runner import alembic_config, upgrade
from tests.conftest import auth, make_database_url
from tests.conftest import command as command_headers

load_tasks()  # the orders domain registers its part of every merge with its tasks

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(db: Session) -> Iterator[DemoRetailer]:
    clock.set_clock(lambda: NOW)
    risk.forget_cached_models()
    retailer = DemoRetailer(seed=21, customers=200)
    load_demo(db, retailer=retailer)
    load_demo_orders(db, retailer=retailer)
    yield retailer
    risk.forget_cached_models()


def _two_buyers(retailer: DemoRetailer) -> tuple[CustomerHistory, CustomerHistory]:
    """The customer with the most orders among those who returned something (merged away),
    and another buyer (the survivor)."""
    histories = [h for h in retailer.histories() if h.orders]
    returners = [h for h in histories if any(order.returns for order in h.orders)]
    merged = max(returners, key=lambda h: len(h.orders))
    kept = next(h for h in histories if h is not merged and len(h.orders) >= 2)
    return merged, kept


def _order_ids(client: TestClient, key: dict[str, str], customer: str) -> list[str]:
    """Every order the API lists for ``customer``, page by page."""
    found: list[str] = []
    cursor: str | None = None
    while True:
        params = {"customer_id": customer, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/orders", params=params, headers=key)
        assert page.status_code == 200, page.text
        found += [item["order_id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


def _mine(db: Session, model: type[Order] | type[ReturnLine], customer_id: str) -> int:
    return int(
        db.scalar(select(func.count()).select_from(model).where(model.customer_id == customer_id))
        or 0
    )


def _risk(client: TestClient, key: dict[str, str], customer: str, retailer: DemoRetailer) -> Any:
    apparel = [p for p in retailer.products() if p.category_path.startswith("Apparel")][:2]
    lines = [{"sku": p.sku, "quantity": 1, "unit_price_minor": p.price_minor} for p in apparel]
    response = client.post(
        "/v1/orders/return-risk", json={"customer_id": customer, "lines": lines}, headers=key
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_merge_brings_the_orders_returns_value_and_return_risk_history(
    client: TestClient, api_key: Any, db: Session, shop: DemoRetailer, settings: Any
) -> None:
    # given two profiles of one person, both with orders, the one merged away with returns,
    # values fitted, and this process's return-risk history read
    merged_away, kept = _two_buyers(shop)
    source = customers.resolve_customer_ref(db, ref=merged_away.customer.external_id)
    target = customers.resolve_customer_ref(db, ref=kept.customer.external_id)
    read = auth(api_key("read"))
    before = {ref: _order_ids(client, read, ref) for ref in (source, target)}
    assert len(before[source]) == len(merged_away.orders) >= 2
    returned = {ref: _mine(db, ReturnLine, ref) for ref in (source, target)}
    assert returned[source] > 0
    assert orders.fit_customer_value(db) is not None
    risk_before = _risk(client, read, target, shop)
    seen_before = risk._scorer(db, settings.data_dir).history.customer_record(target)

    # when the duplicate is merged through the API
    merged = client.post(
        "/v1/customers/merge",
        json={"source_customer_id": source, "target_customer_id": target, "reason": "dup"},
        headers=command_headers(api_key("write")),
    )

    # then the merge says what of the orders domain moved
    assert merged.status_code == 200, merged.text
    moved = merged.json()["moved"]
    assert moved["orders"] == len(before[source])
    assert moved["return_lines"] == returned[source]
    assert moved["customer_value"] == 1
    # and either id lists every order of both, a page at a time
    every = sorted(before[source] + before[target])
    assert sorted(_order_ids(client, read, target)) == every
    assert sorted(_order_ids(client, read, source)) == every
    assert _mine(db, Order, source) == 0
    # the returns are the survivor's, and the 360's orders panel counts them all
    assert _mine(db, ReturnLine, source) == 0
    assert _mine(db, ReturnLine, target) == returned[source] + returned[target]
    view = listing.customer_orders_view(db, customer_id=target)
    assert view.total_orders == len(every)
    assert len(view.returns) == returned[source] + returned[target]
    # the survivor's value is worked out on all their orders, as a refit would summarise them
    assert db.get(CustomerValueScore, source) is None
    value = client.get(f"/v1/orders/customers/{source}/value", headers=read)
    assert value.status_code == 200, value.text
    assert value.json()["customer_id"] == target
    orders.fit_customer_value(db)
    refit = client.get(f"/v1/orders/customers/{target}/value", headers=read).json()
    for summary in ("frequency", "recency_days", "age_days", "monetary_minor"):
        assert value.json()[summary] == pytest.approx(refit[summary]), summary
    # and return risk reads the merged history at once: as a history built from scratch
    seen_after = risk._scorer(db, settings.data_dir).history.customer_record(target)
    assert seen_after[0] > seen_before[0]
    risk_after = _risk(client, read, target, shop)
    assert risk_after != risk_before
    risk.forget_cached_models()
    assert _risk(client, read, target, shop) == risk_after


def test_a_merge_by_a_shared_identity_brings_the_orders_too(
    client: TestClient, api_key: Any, db: Session, shop: DemoRetailer
) -> None:
    # given two profiles with orders, one known by its email, the other by the shop's number
    merged_away, kept = _two_buyers(shop)
    source = customers.resolve_customer_ref(db, ref=merged_away.customer.external_id)
    target = customers.resolve_customer_ref(db, ref=kept.customer.external_id)
    every = _mine(db, Order, source) + _mine(db, Order, target)

    # when the site identifies one person by both
    identified = client.post(
        "/v1/customers/identify",
        json={
            "identities": {
                "email": kept.customer.email,
                "external_id": merged_away.customer.external_id,
            }
        },
        headers=command_headers(api_key("write")),
    )

    # then the profiles are one, and so are their orders
    assert identified.status_code == 200, identified.text
    survivor = identified.json()["customer_id"]
    gone = source if survivor == target else target
    assert db.get(Customer, gone).status == "merged"  # type: ignore[union-attr]
    assert _mine(db, Order, survivor) == every
    assert _mine(db, Order, gone) == 0


def test_a_merge_that_fails_moves_no_order(db: Session, shop: DemoRetailer) -> None:
    # given two profiles with orders
    merged_away, kept = _two_buyers(shop)
    source = customers.resolve_customer_ref(db, ref=merged_away.customer.external_id)
    target = customers.resolve_customer_ref(db, ref=kept.customer.external_id)
    counts = {ref: (_mine(db, Order, ref), _mine(db, ReturnLine, ref)) for ref in (source, target)}

    # when the merge fails at its very end (its answer could not be stored)
    def fail(session: Session, merge: CustomerMerge) -> None:
        raise RuntimeError("the answer could not be stored")

    with pytest.raises(RuntimeError):
        customers.merge_customers(
            db,
            source_customer_id=source,
            target_customer_id=target,
            reason="dup",
            actor="t",
            before_commit=fail,
        )
    db.rollback()

    # then nothing of it happened: both profiles live, each with their own orders and returns
    assert db.get(Customer, source).status == "active"  # type: ignore[union-attr]
    assert db.scalar(select(func.count()).select_from(CustomerMerge)) == 0
    assert {
        ref: (_mine(db, Order, ref), _mine(db, ReturnLine, ref)) for ref in (source, target)
    } == counts


def test_orders_left_under_profiles_merged_earlier_go_to_the_survivor_on_upgrade(
    backend: str, tmp_path: Path
) -> None:
    # given a database where a profile was merged before merges moved orders: its orders,
    # return line, notice and value still under its own id
    url, remove = make_database_url(backend, tmp_path)
    engine = create_db_engine(url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        command.upgrade(alembic_config(url), "c19000000002")
        with engine.begin() as connection:
            connection.execute(
                insert(Customer.__table__),
                [
                    {
                        "customer_id": customer_id,
                        "status": status,
                        "merged_into": merged_into,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for customer_id, status, merged_into in (
                        ("cus_kept", "active", None),
                        ("cus_other", "active", None),
                        ("cus_gone", "merged", "cus_kept"),
                    )
                ],
            )
            connection.execute(
                insert(Order.__table__),
                [
                    {
                        "order_id": order_id,
                        "customer_id": customer_id,
                        "channel": "web",
                        "fulfilment": "ship",
                        "status": "delivered",
                        "currency": "EUR",
                        "subtotal_minor": 1000,
                        "total_minor": 1000,
                        "placed_at": at,
                        "created_at": at,
                        "updated_at": at,
                    }
                    for order_id, customer_id in (
                        ("O-1", "cus_gone"),
                        ("O-2", "cus_gone"),
                        ("O-3", "cus_kept"),
                        ("O-4", "cus_other"),
                        ("O-5", None),
                    )
                ],
            )
            connection.execute(
                insert(ReturnLine.__table__),
                {
                    "return_id": "R-1",
                    "order_id": "O-1",
                    "line_no": 1,
                    "sku": "W-1",
                    "quantity": 1,
                    "reason": "too_small",
                    "refund_minor": 1000,
                    "channel": "web",
                    "customer_id": "cus_gone",
                    "returned_at": at,
                },
            )
            connection.execute(
                insert(CustomerNotice.__table__),
                {
                    "order_id": "O-2",
                    "customer_id": "cus_gone",
                    "kind": "delivery_late",
                    "message": "late",
                    "created_at": at,
                },
            )
            connection.execute(
                insert(CustomerValueScore.__table__),
                [
                    {
                        "customer_id": customer_id,
                        "frequency": 1,
                        "recency_days": 1.0,
                        "age_days": 2.0,
                        "monetary_minor": 1000,
                        "expected_purchases_90d": 0.5,
                        "p_alive": 0.9,
                        "p_purchase_90d": 0.4,
                        "expected_spend_minor": 1000,
                        "predicted_value_minor": 2000,
                        "value_tier": "rest",
                        "fitted_at": at,
                    }
                    for customer_id in ("cus_gone", "cus_kept")
                ],
            )

        # when the database is upgraded
        upgrade(url)

        # then they are the survivor's; nobody else's moved, and the merged id keeps no value
        with engine.connect() as connection:
            owners = dict(connection.execute(select(Order.order_id, Order.customer_id)).all())
            assert owners == {
                "O-1": "cus_kept",
                "O-2": "cus_kept",
                "O-3": "cus_kept",
                "O-4": "cus_other",
                "O-5": None,
            }
            assert connection.scalar(select(ReturnLine.customer_id)) == "cus_kept"
            assert connection.scalar(select(CustomerNotice.customer_id)) == "cus_kept"
            assert connection.scalars(select(CustomerValueScore.customer_id)).all() == ["cus_kept"]
    finally:
        engine.dispose()
        remove()
