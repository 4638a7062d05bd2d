"""Segment's "Order Cancelled" from a shop's server cancels the order as
``POST /v1/orders/{id}/cancel`` does, once, when the order's customer sent it and the order was
not handed over; anything else is kept as a refusal with its reason. (It was refused at the
door as Rapport's own fact once cancellation existed, and before that changed nothing.)"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from rapport.customers.profile_view import timeline_label
from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.models import TrackedOrderEvent
from tests.conftest import auth
from tests.events.factories import basic_auth
from tests.orders.test_tracked_orders import (
    completed,
    process,
    refusals,
    shop,  # noqa: F401 (a fixture)
    track,
    tracking_key,
)


def _outcomes(db: Any) -> list[tuple[str | None, str]]:
    rows = db.scalars(select(TrackedOrderEvent).order_by(TrackedOrderEvent.id))
    return [(row.order_id, row.outcome) for row in rows]


@pytest.mark.usefixtures("shop")
def test_order_cancelled_cancels_the_order_and_takes_its_points_back(client, api_key, db) -> None:
    # given an order from tracking, with its points
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-C1"))
    process(db)
    customer_id = orders.get_order(db, order_id="W-C1").customer_id
    read = auth(api_key("read"))
    before = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()["balance"]

    # when the shop says it was cancelled, and says so again (another messageId)
    track(client, secret, "Order Cancelled", {"order_id": "W-C1", "reason": "out of stock"})
    track(client, secret, "Order Cancelled", {"order_id": "W-C1"})
    process(db)

    # then the order is cancelled once, with the shop's reason, as the API would have done
    order = orders.get_order(db, order_id="W-C1")
    assert order.status == "cancelled"
    history = orders.status_history(db, order_id="W-C1")
    assert (history[-1].status, history[-1].note) == ("cancelled", "out of stock")
    cancelled = db.scalars(select(Event).where(Event.type == "order_cancelled")).all()
    assert [e.properties["order_id"] for e in cancelled] == ["W-C1"]
    # the lines' points go (30: 33.00 of goods less 3.00 off, a point per euro), and so does
    # the first-purchase bonus: a cancelled order was never a purchase
    after = client.get(f"/v1/loyalty/members/{customer_id}", headers=read).json()["balance"]
    assert (before, after) == (30 + 200, 0)
    # the second message is kept as refused, saying why
    assert _outcomes(db)[-2:] == [("W-C1", "cancelled"), ("W-C1", "refused")]
    assert refusals(db) == [("W-C1", "not_cancellable", "properties.order_id")]
    # the raw message is an event of its own, never Rapport's fact
    raw = db.scalars(select(Event).where(Event.type == "tracked_order_cancelled")).all()
    assert len(raw) == 2
    # and the customer 360 timeline says both in words
    assert timeline_label(raw[0]) == "Cancelled an order (tracking): W-C1"
    assert timeline_label(cancelled[0]) == "Order cancelled: W-C1"


@pytest.mark.usefixtures("shop")
def test_order_cancelled_by_someone_else_or_for_no_order_is_refused(client, api_key, db) -> None:
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-C2"), user_id="C-100")
    process(db)

    track(client, secret, "Order Cancelled", {"order_id": "W-C2"}, user_id="C-200")
    track(client, secret, "Order Cancelled", {"order_id": "W-NONE"}, user_id="C-100")
    process(db)

    assert orders.get_order(db, order_id="W-C2").status == "placed"
    assert db.scalars(select(Event).where(Event.type == "order_cancelled")).all() == []
    assert refusals(db) == [
        ("W-C2", "not_the_customer", "userId"),
        ("W-NONE", "unknown_order", "properties.order_id"),
    ]


@pytest.mark.usefixtures("shop")
def test_order_cancelled_from_a_key_without_orders_is_stored_and_changes_nothing(
    client, api_key, db
) -> None:
    # given an order the shop posted, and a site key whose e-commerce events are not orders
    secret = tracking_key(db)
    track(client, secret, "Order Completed", completed("W-C3"))
    process(db)
    browser = tracking_key(db, server_side=False)

    # when the browser's key sends Order Cancelled (a public key cannot cancel orders)
    response = client.post(
        "/v1/track",
        json={"event": "Order Cancelled", "userId": "C-100", "properties": {"order_id": "W-C3"}},
        headers=basic_auth(browser),
    )
    process(db)

    # then it is accepted and stored, as every Segment event is, and cancels nothing
    assert response.status_code == 200, response.text
    assert orders.get_order(db, order_id="W-C3").status == "placed"
    stored = db.scalars(select(Event).where(Event.type == "tracked_order_cancelled")).all()
    assert len(stored) == 1
