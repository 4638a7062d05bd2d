"""Recording a return from the admin's customer orders page over HTTP: the same verb as
POST /v1/orders/{id}/returns (refund, points taken back), recorded as by the signed-in admin;
a quantity above what is left or none chosen comes back beside its field, typed values kept,
and nothing changes."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.events.processors import registered_processors, run_batch
from rapport.loyalty import service as ledger
from rapport.loyalty.tasks import expire_lots  # noqa: F401  (registers the processor)
from rapport.orders import service as orders
from rapport.orders.models import OrderLine, ReturnLine
from rapport.orders.schemas import OrderIn
from tests.loyalty.factories import make_customer
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, seed_catalog
from tests.platform.admin_forms import ADMIN_EMAIL, page_form, post_form, said_after, typed


def _process(db: Session) -> None:
    """Run every processor until the log is caught up (loyalty reads the returns)."""
    for processor in registered_processors():
        while run_batch(db, processor):
            pass


def _bought(db: Session) -> tuple[str, str]:
    """A customer's shipped order of ten Chianti (12.00 each, 120 points) and a corkscrew."""
    seed_catalog(db, stock=50)
    customer_id = make_customer(db)
    lines = [
        {"sku": CHIANTI, "quantity": 10, "unit_price_minor": 1200},
        {"sku": CORKSCREW, "quantity": 1, "unit_price_minor": 900},
    ]
    body = order_body(
        customer_id=customer_id,
        lines=lines,
        discount_minor=0,
        shipping_minor=0,
        subtotal_minor=12900,
        total_minor=12900,
        payments=[{"method": "card", "amount_minor": 12900}],
    )
    order_id = orders.place_order(db, order=OrderIn.model_validate(body)).order_id
    _process(db)
    return customer_id, order_id


def _return_form(admin: TestClient, customer_id: str, order_id: str) -> list[tuple[str, str]]:
    html = admin.get(f"/admin/orders/customer/{customer_id}").text
    return page_form(html, action=f"/admin/orders/{order_id}/returns?page=1")


def _error(html: str, field: str) -> str | None:
    found = re.search(rf'data-field-error="{field}">([^<]*)<', html)
    return unescape(found.group(1)) if found else None


def test_a_return_taken_on_the_customer_orders_page_is_recorded_as_the_api_records_it(
    admin: TestClient, db: Session
) -> None:
    # given a member's order of ten bottles that earned 12 points a bottle
    customer_id, order_id = _bought(db)
    before = ledger.balance(db, customer_id=customer_id)

    # when a service agent takes back 3 bottles, damaged, from the customer's orders page
    fields = _return_form(admin, customer_id, order_id)
    fields = typed(typed(fields, "quantity_1", "3"), "reason", "damaged")
    answer = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)

    # then the page says the return was recorded, with what to pay back
    assert answer.status_code == 303
    said = said_after(admin, answer)
    assert said is not None
    assert re.fullmatch(
        rf"Return ret_\w+ recorded for order {order_id}: 3 units, €36.00 to pay back\.", said
    ), said
    # and the return is the API's: 3 bottles at 12.00, by the call centre, not restocked
    db.expire_all()
    returned = db.scalars(select(ReturnLine).where(ReturnLine.order_id == order_id)).all()
    assert [
        (r.sku, r.quantity, r.reason, r.refund_minor, r.channel, r.restocked_to) for r in returned
    ] == [(CHIANTI, 3, "damaged", 3600, "call_center", None)]
    # recorded as by the signed-in admin
    logged = db.scalars(select(Event).where(Event.type == "order_returned")).one()
    assert logged.properties["recorded_by"] == ADMIN_EMAIL
    # and loyalty takes back the 36 points the three bottles earned
    _process(db)
    assert before - ledger.balance(db, customer_id=customer_id) == 36


@pytest.mark.parametrize(
    ("typed_in", "field", "message"),
    [
        ({"quantity_1": "11"}, "quantity_1", f"Only 10 of {CHIANTI} can still be returned"),
        (
            {},
            "lines",
            "Choose the units that came back: a quantity on at least one line",
        ),
        (
            {"quantity_2": "0"},
            "lines",
            "Choose the units that came back: a quantity on at least one line",
        ),
        ({"quantity_1": "two"}, "quantity_1", "A whole number of units, from 0 to 10"),
    ],
)
def test_a_refused_return_comes_back_beside_its_field_keeping_what_was_typed(
    admin: TestClient, db: Session, typed_in: dict[str, Any], field: str, message: str
) -> None:
    customer_id, order_id = _bought(db)
    fields = typed(_return_form(admin, customer_id, order_id), "reason", "wrong_item")
    for name, value in typed_in.items():
        fields = typed(fields, name, value)

    answer = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)

    # the page comes back with the message beside the field, inside the order's return form
    assert answer.status_code == 422
    assert _error(answer.text, field) == message
    form = answer.text[answer.text.index(f'data-testid="return-{order_id}"') :]
    assert form.index(f'data-field-error="{field}"') < form.index("</form>")
    # what was typed is kept
    for name, value in typed_in.items():
        assert re.search(rf'name="{name}" type="number" value="{value}"', answer.text)
    assert '<option value="wrong_item" selected>' in answer.text
    # and nothing changed
    db.expire_all()
    assert db.scalars(select(ReturnLine).where(ReturnLine.order_id == order_id)).all() == []
    assert [
        line.returned_quantity
        for line in db.scalars(select(OrderLine).where(OrderLine.order_id == order_id))
    ] == [0, 0]
    assert db.scalars(select(Event).where(Event.type == "order_returned")).all() == []


def test_a_cancelled_order_offers_no_return_form(admin: TestClient, db: Session) -> None:
    seed_catalog(db, stock=50)
    customer_id = make_customer(db)
    order_id = orders.place_order(
        db, order=OrderIn.model_validate(order_body(customer_id=customer_id))
    ).order_id
    orders.cancel_order(db, order_id=order_id, reason="out of stock")

    html = admin.get(f"/admin/orders/customer/{customer_id}").text

    assert f'data-testid="return-{order_id}"' not in html


def _returned(db: Session, order_id: str) -> list[tuple[str, int]]:
    db.expire_all()
    return [
        (r.sku, r.quantity)
        for r in db.scalars(select(ReturnLine).where(ReturnLine.order_id == order_id))
    ]


def test_the_same_return_form_sent_twice_records_one_return(admin: TestClient, db: Session) -> None:
    # given a member's order of ten bottles and the return form as the page gave it
    customer_id, order_id = _bought(db)
    before = ledger.balance(db, customer_id=customer_id)
    fields = _return_form(admin, customer_id, order_id)
    fields = typed(typed(fields, "quantity_1", "3"), "reason", "damaged")

    # when the form is sent twice as it is (same one-time token, same CSRF token)
    first = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)
    said_first = said_after(admin, first)
    second = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)
    said_second = said_after(admin, second)

    # then both lead to the confirmation of the one return
    assert (first.status_code, second.status_code) == (303, 303)
    assert said_first is not None
    assert said_second is not None
    assert said_second.startswith(said_first), (said_first, said_second)
    assert said_second.endswith("The form was sent twice; the return was recorded once.")
    # and three bottles came back once: one refund, one event, 36 points taken back once
    assert _returned(db, order_id) == [(CHIANTI, 3)]
    assert len(db.scalars(select(Event).where(Event.type == "order_returned")).all()) == 1
    _process(db)
    assert before - ledger.balance(db, customer_id=customer_id) == 36

    # and a fresh page's form records another return
    fields = _return_form(admin, customer_id, order_id)
    fields = typed(typed(fields, "quantity_1", "1"), "reason", "damaged")
    assert post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields).status_code == 303
    assert _returned(db, order_id) == [(CHIANTI, 3), (CHIANTI, 1)]


def test_a_return_form_without_its_one_time_token_records_nothing(
    admin: TestClient, db: Session
) -> None:
    customer_id, order_id = _bought(db)
    fields = _return_form(admin, customer_id, order_id)
    fields = [(name, value) for name, value in fields if name != "token"]
    fields = typed(typed(fields, "quantity_1", "3"), "reason", "damaged")

    answer = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)

    assert answer.status_code == 422
    assert _error(answer.text, "lines") == "This form has expired; open the orders page again"
    assert _returned(db, order_id) == []


@pytest.mark.parametrize("quantity", ["2147483648", "99999999999999999999", "10001", "²"])
def test_a_quantity_beyond_any_return_comes_back_beside_its_field(
    admin: TestClient, db: Session, quantity: str
) -> None:
    customer_id, order_id = _bought(db)
    fields = _return_form(admin, customer_id, order_id)
    fields = typed(typed(fields, "quantity_1", quantity), "reason", "damaged")

    answer = post_form(admin, f"/admin/orders/{order_id}/returns?page=1", fields)

    assert answer.status_code == 422
    assert _error(answer.text, "quantity_1") == "A whole number of units, from 0 to 10"
    assert _returned(db, order_id) == []
