"""Catalogue and order fixtures for order tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.catalog.schemas import ProductUpsert, StoreUpsert

CHIANTI = "W-CHIANTI"
CORKSCREW = "K-CORK"


def seed_catalog(db: Session, *, stock: int = 5) -> None:
    catalog.upsert_products(
        db,
        products=[
            ProductUpsert(
                sku=CHIANTI,
                name="Chianti Classico",
                category_path="Wine/Red",
                price_minor=1200,
                cost_minor=700,
                currency="EUR",
            ),
            ProductUpsert(
                sku=CORKSCREW,
                name="Corkscrew",
                category_path="Kitchen/Tools",
                price_minor=900,
                cost_minor=300,
                currency="EUR",
            ),
        ],
    )
    catalog.upsert_stores(
        db,
        stores=[
            StoreUpsert(
                store_id="st-par-01",
                name="Paris Rivoli",
                city="Paris",
                address="1 rue de Rivoli",
                country="FR",
                latitude=48.857,
                longitude=2.352,
            ),
            StoreUpsert(
                store_id="st-lyo-01",
                name="Lyon Bellecour",
                city="Lyon",
                address="2 place Bellecour",
                country="FR",
                latitude=45.757,
                longitude=4.832,
            ),
            StoreUpsert(
                store_id="web",
                name="Online warehouse",
                city="Online",
                address="Lille",
                country="FR",
            ),
        ],
    )
    catalog.set_stock(
        db,
        levels=[
            (CHIANTI, "st-par-01", stock),
            (CORKSCREW, "st-par-01", stock),
            (CHIANTI, "st-lyo-01", 1),
            # Sales now take their units (tests/orders/test_stock_moves.py): the warehouse
            # holds at least what a store is given.
            (CHIANTI, "web", max(100, stock)),
        ],
    )


def order_body(**overrides: Any) -> dict[str, Any]:
    """Two Chianti and a corkscrew, shipped: 2 x 1200 + 900 = 3300, minus 300, plus 490 shipping."""
    body: dict[str, Any] = {
        "customer_id": "C-100",
        "channel": "web",
        "fulfilment": "ship",
        "currency": "EUR",
        "lines": [
            {"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1200},
            {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
        ],
        "discount_minor": 300,
        "shipping_minor": 490,
        "subtotal_minor": 3300,
        "total_minor": 3490,
        "payments": [{"method": "card", "amount_minor": 3490}],
    }
    body.update(overrides)
    return body


def run_at_once(*calls: Callable[[], str]) -> list[str]:
    """Each call in a thread of its own, all let go at the same moment; what each answered, in
    the order given (an error other than a refusal is raised here)."""
    barrier = threading.Barrier(len(calls))
    answers: list[str | BaseException] = [""] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = calls[index]()
        except BaseException as error:
            answers[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [str(answer) for answer in answers]
