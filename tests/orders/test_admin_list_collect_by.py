"""The admin orders list says until when each pick-up is kept at its store (its collect_by,
as the customer's orders page says it), and nothing for an order that is shipped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from tests.orders.factories import order_body, seed_catalog

# Placed on 2 March at 10:00 UTC: kept the 7 days after (RAPPORT_PICKUP_HOLD_DAYS), to 9 March.
PLACED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _order(order_id: str, **overrides: Any) -> OrderIn:
    return OrderIn(**order_body(order_id=order_id, **overrides))


def _cells(html: str) -> dict[str, str]:
    """Each order's collect-by cell, as text."""
    return {
        order_id: re.sub(r"<[^>]+>", "", cell).strip()
        for order_id, cell in re.findall(
            r'<tr data-order="([^"]+)">.*?<td class="num" data-testid="collect-by">(.*?)</td>',
            html,
            re.DOTALL,
        )
    }


def test_the_orders_list_shows_each_pick_ups_collect_by_and_nothing_for_others(
    admin: TestClient, db: Session
) -> None:
    clock.set_clock(lambda: PLACED)
    seed_catalog(db)
    orders.place_order(
        db,
        order=_order(
            "O-PICKUP",
            fulfilment="pickup_in_store",
            store_id="st-par-01",
            shipping_minor=0,
            total_minor=3000,
            payments=[{"method": "card", "amount_minor": 3000}],
        ),
    )
    orders.place_order(db, order=_order("O-SHIPPED"))
    db.commit()

    page = admin.get("/admin/orders/list")

    assert page.status_code == 200
    assert ">Collect by</th>" in page.text
    assert _cells(page.text) == {"O-PICKUP": "9 Mar 2026", "O-SHIPPED": ""}
