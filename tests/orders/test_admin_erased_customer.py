"""An erased customer's orders page says they were erased, as their customer page does (404),
never "No orders yet"."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from tests.customers.factories import erased_customer, says_erased
from tests.orders.factories import order_body, seed_catalog


def test_an_erased_customers_orders_page_says_they_were_erased(
    admin: TestClient, db: Session
) -> None:
    # given a customer with an order, erased on 3 December 2026
    seed_catalog(db, stock=50)
    customer_id = erased_customer(
        db,
        before=lambda buyer: orders.place_order(
            db, order=OrderIn.model_validate(order_body(customer_id=buyer))
        ),
    )

    # when their orders page is opened
    answer = admin.get(f"/admin/orders/customer/{customer_id}")

    # then it says they were erased, when, and that nothing personal is kept
    assert answer.status_code == 404
    assert says_erased(answer.text, customer_id)
    assert "No orders yet" not in answer.text
    assert "Wren" not in answer.text
