"""Taking a return on a customer's orders page, in headless Chromium at a phone's width: a
refused quantity comes back beside its line with what was typed kept, then the return is
recorded and the page says so."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from rapport.orders import service as orders
from rapport.orders.models import ReturnLine
from rapport.orders.schemas import OrderIn
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import sign_in_as, wait_until_settled
from tests.loyalty.factories import make_customer
from tests.orders.factories import CHIANTI, order_body, seed_catalog

PASSWORD = "correct horse battery"


def _agent_and_order(page, live_server, *, width: int = 1280) -> str:  # type: ignore[no-untyped-def]
    """An agent signed in on a customer's orders page, at ``width`` px, with their shipped
    order of two Chianti and a corkscrew: the order's id."""
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="agent@example.com", password=PASSWORD)
        seed_catalog(db, stock=50)
        customer_id = make_customer(db)
        order_id = orders.place_order(
            db, order=OrderIn.model_validate(order_body(customer_id=customer_id))
        ).order_id
    page.set_viewport_size({"width": width, "height": 844})
    path = f"/admin/orders/customer/{customer_id}"
    sign_in_as(page, live_server.base_url, "agent@example.com", PASSWORD, at=path)
    wait_until_settled(page)
    return str(order_id)


def test_a_return_taken_on_the_orders_page_at_390_px(page, live_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # given an agent and a customer's shipped order of two Chianti and a corkscrew
    order_id = _agent_and_order(page, live_server, width=390)

    # when the agent asks to take back 3 of the 2 bottles bought
    page.get_by_text("Record a return").click()
    form = page.get_by_test_id(f"return-{order_id}")
    form.locator('[name="quantity_1"]').fill("3")
    form.get_by_label("Reason").select_option("damaged")
    form.get_by_role("button", name="Record return").click()
    wait_until_settled(page)

    # then the message is beside that line, the form open with what was typed
    form = page.get_by_test_id(f"return-{order_id}")
    assert form.locator('[data-field-error="quantity_1"]').inner_text() == (
        f"Only 2 of {CHIANTI} can still be returned"
    )
    assert form.locator('[name="quantity_1"]').input_value() == "3"
    assert form.get_by_label("Reason").input_value() == "damaged"
    # and the page fits the phone's width
    page.screenshot(path=str(tmp_path / "return-refused-390.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390

    # when the agent corrects it to the 2 bottles
    form.locator('[name="quantity_1"]').fill("2")
    form.get_by_role("button", name="Record return").click()
    wait_until_settled(page)

    # then the page says the return was recorded
    said = page.get_by_test_id("order-message").inner_text()
    assert said.startswith("Return ret_")
    assert f"recorded for order {order_id}: 2 units, " in said
    page.screenshot(path=str(tmp_path / "return-recorded-390.png"), full_page=True)
    with open_session(live_server.database_url) as db:
        returned = db.scalars(select(ReturnLine).where(ReturnLine.order_id == order_id)).all()
        assert [(r.sku, r.quantity, r.reason) for r in returned] == [(CHIANTI, 2, "damaged")]


def test_a_double_click_on_record_return_records_one_return(page, live_server) -> None:  # type: ignore[no-untyped-def]
    # given an agent and a customer's shipped order of two Chianti and a corkscrew
    order_id = _agent_and_order(page, live_server)

    # when the agent double-clicks Record return for one bottle
    page.get_by_text("Record a return").click()
    form = page.get_by_test_id(f"return-{order_id}")
    form.locator('[name="quantity_1"]').fill("1")
    form.get_by_label("Reason").select_option("damaged")
    form.get_by_role("button", name="Record return").dblclick()
    wait_until_settled(page)

    # then the page confirms the return, and one bottle came back once
    assert f"recorded for order {order_id}: 1 unit, " in (
        page.get_by_test_id("order-message").inner_text()
    )
    with open_session(live_server.database_url) as db:
        returned = db.scalars(select(ReturnLine).where(ReturnLine.order_id == order_id)).all()
        assert [(r.sku, r.quantity) for r in returned] == [(CHIANTI, 1)]


def test_record_return_is_disabled_once_the_form_is_sent(page, live_server) -> None:  # type: ignore[no-untyped-def]
    order_id = _agent_and_order(page, live_server)
    page.get_by_text("Record a return").click()
    form = page.get_by_test_id(f"return-{order_id}")
    # (the page stays: this sending is held back, to look at the button after it)
    form.evaluate("f => f.addEventListener('submit', (e) => e.preventDefault())")
    button = form.get_by_role("button", name="Record return")
    assert button.is_enabled()

    button.click()

    page.wait_for_function(
        "f => f.querySelector('button[type=submit]').disabled", arg=form.element_handle()
    )
    assert button.is_disabled()
