"""A delivery is late by its times, not by the order its news came in: a parcel delivered
after its promised day is apologised for once, whether the check ran before the delivery was
reported or after."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from tests.orders.factories import order_body, seed_catalog


def _shipped(db, order_id: str) -> None:  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    orders.place_order(
        db, order=OrderIn(**order_body(order_id=order_id, promised_delivery="2026-03-04"))
    )
    orders.update_delivery_status(db, order_id=order_id, status="shipped")


def _late_reasons(db) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    late = db.scalars(select(Event).where(Event.type == "delivery_late"))
    return [(e.properties["order_id"], e.properties["reason"]) for e in late]


def test_a_late_delivery_reported_before_the_check_is_apologised_for_once(db) -> None:
    # given a parcel promised for 4 March, delivered on the 5th, reported before the check ran
    seed_catalog(db)
    _shipped(db, "O-AFTER")
    clock.set_clock(lambda: datetime(2026, 3, 5, 10, 0, tzinfo=UTC))
    orders.update_delivery_status(
        db, order_id="O-AFTER", status="delivered", at=datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    )
    # when the promise check runs, twice
    flagged = [orders.flag_late_deliveries(db), orders.flag_late_deliveries(db)]
    # then it is late once, saying it arrived after the promised day
    assert flagged == [["O-AFTER"], []]
    assert _late_reasons(db) == [("O-AFTER", "delivered after the promised date")]
    (notice,) = orders.notices_for(db, order_id="O-AFTER")
    assert "arrived after 04 March, the day we promised" in notice.message


def test_a_late_delivery_flagged_before_it_arrived_is_not_apologised_for_again(db) -> None:
    # given a parcel flagged late on the 5th, then delivered that day
    seed_catalog(db)
    _shipped(db, "O-BEFORE")
    clock.set_clock(lambda: datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    assert orders.flag_late_deliveries(db) == ["O-BEFORE"]
    clock.set_clock(lambda: datetime(2026, 3, 5, 15, 0, tzinfo=UTC))
    orders.update_delivery_status(db, order_id="O-BEFORE", status="delivered")
    # when the check runs again, then nothing more is logged
    assert orders.flag_late_deliveries(db) == []
    assert _late_reasons(db) == [("O-BEFORE", "promised date passed")]


def test_a_delivery_on_the_promised_day_is_not_late_whenever_it_is_reported(db) -> None:
    seed_catalog(db)
    _shipped(db, "O-KEPT")
    clock.set_clock(lambda: datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    orders.update_delivery_status(
        db, order_id="O-KEPT", status="delivered", at=datetime(2026, 3, 4, 18, 0, tzinfo=UTC)
    )
    assert orders.flag_late_deliveries(db) == []
    assert _late_reasons(db) == []
