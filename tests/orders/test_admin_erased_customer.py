"""An erased customer's orders page says they were erased, as their customer page does (404),
never "No orders yet"."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from tests.orders.factories import order_body, seed_catalog


def test_an_erased_customers_orders_page_says_they_were_erased(
    admin: TestClient, db: Session
) -> None:
    # given a customer with an order, erased on 3 December 2026
    seed_catalog(db, stock=50)
    clock.set_clock(clock.FrozenClock(datetime(2026, 12, 3, 10, 30, tzinfo=UTC)))
    customer_id = customers.identify_customer(
        db, identities={"email": "wren.aldous@example.org"}, profile={"first_name": "Wren"}
    ).customer_id
    orders.place_order(db, order=OrderIn.model_validate(order_body(customer_id=customer_id)))
    privacy.erase_customer(db, customer_id=customer_id, requested_by="dpo@example.com")
    clock.reset_clock()

    # when their orders page is opened
    answer = admin.get(f"/admin/orders/customer/{customer_id}")

    # then it says they were erased, when, and that nothing personal is kept
    assert answer.status_code == 404
    assert (
        f"Customer {customer_id} was erased on 3 Dec 2026; nothing personal is kept." in answer.text
    )
    assert "No orders yet" not in answer.text
    assert "Wren" not in answer.text
