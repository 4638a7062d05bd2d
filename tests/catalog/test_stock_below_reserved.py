"""A count below the units reserved for pick-up is recorded as it is (a reserved unit broke:
the physical count is the truth): the level shows 0 available, never a negative number, and
says how many reserved units it is short, in the API and on the product's admin page; the
reservation it cannot meet is refused at the till rather than handed over from nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rapport.catalog import service as catalog
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.errors import Conflict
from tests.conftest import auth
from tests.orders.factories import CHIANTI, order_body, seed_catalog
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in


def _pickup(order_id: str, quantity: int) -> OrderIn:
    total = quantity * 1200
    return OrderIn(
        **order_body(
            order_id=order_id,
            fulfilment="pickup_in_store",
            store_id="st-par-01",
            lines=[{"sku": CHIANTI, "quantity": quantity, "unit_price_minor": 1200}],
            subtotal_minor=total,
            discount_minor=0,
            shipping_minor=0,
            total_minor=total,
            payments=[{"method": "card", "amount_minor": total}],
        )
    )


def _paris(client, api_key) -> dict:  # type: ignore[no-untyped-def,type-arg]
    answer = client.get(f"/v1/stock/{CHIANTI}", headers=auth(api_key("read")))
    assert answer.status_code == 200, answer.text
    (paris,) = [level for level in answer.json() if level["store_id"] == "st-par-01"]
    return paris


def test_a_count_below_the_reservations_is_recorded_and_shows_the_shortfall(
    client, db, api_key
) -> None:
    # given two Chianti of Paris's five reserved for a pick-up
    clock.set_clock(lambda: datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    placed = orders.place_order(db, order=_pickup("O-HELD", 2))
    # when staff count one bottle left (one reserved bottle broke)
    counted = client.put(
        "/v1/stock",
        json={"levels": [{"sku": CHIANTI, "store_id": "st-par-01", "on_hand": 1}]},
        headers=auth(api_key("write")),
    )
    # then the count is recorded, with nothing available and the shortfall said
    assert counted.status_code == 200, counted.text
    paris = _paris(client, api_key)
    assert (paris["on_hand"], paris["reserved"], paris["available"]) == (1, 2, 0)
    assert paris["short_by"] == 1
    assert catalog.available_at(db, store_id="st-par-01", skus=[CHIANTI]) == {CHIANTI: 0}
    # and nothing more can be reserved or sold there
    with pytest.raises(Conflict) as refused:
        orders.place_order(db, order=_pickup("O-MORE", 1))
    assert refused.value.field == "lines.0.quantity"
    # and the till cannot hand over the two reserved bottles: refused, nothing moves
    with pytest.raises(Conflict) as short:
        orders.confirm_pickup(
            db, order_id="O-HELD", pickup_code=placed.pickup_code or "", store_id="st-par-01"
        )
    db.rollback()
    assert short.value.field == "lines.0.quantity"
    assert "short of its reservations" in short.value.detail
    assert orders.get_order(db, order_id="O-HELD").status == "ready_for_pickup"
    paris = _paris(client, api_key)
    assert (paris["on_hand"], paris["reserved"], paris["short_by"]) == (1, 2, 1)
    # when the order is cancelled, the reservation goes and the bottle left is on sale again
    orders.cancel_order(db, order_id="O-HELD", reason="a reserved bottle broke")
    paris = _paris(client, api_key)
    assert (paris["on_hand"], paris["reserved"], paris["available"], paris["short_by"]) == (
        1,
        0,
        1,
        0,
    )


def test_the_product_page_shows_the_shortfall(client, db) -> None:
    clock.set_clock(lambda: datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    orders.place_order(db, order=_pickup("O-HELD", 2))
    catalog.set_stock(db, levels=[(CHIANTI, "st-par-01", 0)])
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    db.commit()
    assert sign_in(client).status_code == 303
    page = client.get(f"/admin/catalog/products/{CHIANTI}").text
    assert 'data-testid="short-by-st-par-01">short by 2 reserved for pick-up' in page
    assert "-2" not in page
