"""Late-delivery notices ask the consent gate (as service messages): a customer without
marketing consent is still told their parcel is late, an erased person never is, and a
notice recorded before an erasure is dropped, not stamped sent (the campaigns domain sends the
message and stamps the notice: tests/campaigns/producers/test_late_deliveries.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from rapport.customers import service as customers
from rapport.flows import privacy
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from tests.orders.factories import order_body, seed_catalog


def _late_order(db, order_id: str, customer: str) -> None:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    orders.place_order(
        db,
        order=OrderIn(
            **order_body(order_id=order_id, customer_id=customer, promised_delivery="2026-03-04")
        ),
    )
    orders.update_delivery_status(db, order_id=order_id, status="shipped")


def test_late_notices_reach_live_customers_only(db) -> None:
    # given late parcels for a customer who refused marketing and for one who was erased
    seed_catalog(db)
    _late_order(db, "O-NOMARKETING", "C-NOMKT")
    _late_order(db, "O-ERASED", "C-ERASED")
    erased = customers.find_customer(db, kind="external_id", value="C-ERASED")
    privacy.erase_customer(db, customer_id=erased.customer_id, requested_by="dpo")
    # when the promise passes and the late-delivery job runs
    clock.set_clock(lambda: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    flagged = orders.flag_late_deliveries(db)
    # then both are late, but only the live customer gets a notice
    assert sorted(flagged) == ["O-ERASED", "O-NOMARKETING"]
    assert len(orders.notices_for(db, order_id="O-NOMARKETING")) == 1
    assert orders.notices_for(db, order_id="O-ERASED") == []


def test_a_notice_recorded_before_an_erasure_is_dropped_not_stamped(db) -> None:
    # given a late notice queued for a customer
    seed_catalog(db)
    _late_order(db, "O-QUEUED", "C-QUEUED")
    clock.set_clock(lambda: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    orders.flag_late_deliveries(db)
    (notice,) = orders.notices_for(db, order_id="O-QUEUED")
    customer = customers.find_customer(db, kind="external_id", value="C-QUEUED")
    # when the customer is erased before the message goes out
    privacy.erase_customer(db, customer_id=customer.customer_id, requested_by="dpo")
    # then stamping it sent does nothing and the notice is gone
    assert orders.mark_notice_sent(db, notice_id=notice.id) is False
    assert orders.notices_for(db, order_id="O-QUEUED") == []
