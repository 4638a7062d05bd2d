"""A delivery promise is judged in the day it was read in: the offset the order's placed_at
was sent with, not UTC's midnight."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rapport.orders import listing
from rapport.orders import service as orders
from rapport.platform import clock
from tests.conftest import auth, command
from tests.orders.factories import order_body, seed_catalog


@pytest.fixture
def writer(db, api_key):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: datetime(2026, 12, 5, 12, 0, tzinfo=UTC))
    seed_catalog(db)
    return auth(api_key("write"))


def _placed_and_shipped(client, writer, order_id: str, offset: str) -> None:  # type: ignore[no-untyped-def]
    body = order_body(
        order_id=order_id,
        placed_at=f"2026-12-01T10:00:00{offset}",
        promised_delivery="2026-12-03",
    )
    placed = client.post("/v1/orders", json=body, headers=command(writer))
    assert placed.status_code == 201, placed.text
    shipped = client.post(
        f"/v1/orders/{order_id}/status",
        json={"status": "shipped", "at": f"2026-12-02T09:00:00{offset}"},
        headers=command(writer),
    )
    assert shipped.status_code == 200, shipped.text


def _delivered(client, writer, order_id: str, at: str) -> None:  # type: ignore[no-untyped-def]
    sent = client.post(
        f"/v1/orders/{order_id}/status",
        json={"status": "delivered", "at": at},
        headers=command(writer),
    )
    assert sent.status_code == 200, sent.text


@pytest.mark.parametrize(
    ("offset", "delivered_at", "state"),
    [
        # 20:00 in New York on the promised day is 01:00 UTC the day after: kept
        pytest.param("-05:00", "2026-12-03T20:00:00-05:00", "kept", id="west-evening-kept"),
        pytest.param("-05:00", "2026-12-04T00:30:00-05:00", "late", id="west-next-day-late"),
        # 08:00 in Tokyo the day after the promise is still the promised day in UTC: late
        pytest.param("+09:00", "2026-12-04T08:00:00+09:00", "late", id="east-next-morning-late"),
        pytest.param("+09:00", "2026-12-03T23:00:00+09:00", "kept", id="east-night-kept"),
    ],
)
def test_a_delivery_is_kept_or_late_by_the_day_at_the_offset_the_order_was_placed_with(
    client, db, writer, api_key, offset, delivered_at, state
) -> None:
    _placed_and_shipped(client, writer, "O-TZ", offset)

    _delivered(client, writer, "O-TZ", delivered_at)

    db.expire_all()
    order = orders.get_order(db, order_id="O-TZ")
    assert listing.promise_state(order) == state
    assert order.promise_kept is (state == "kept")
    [report] = orders.promise_kept(db, by="channel")
    assert (report.due, report.on_time) == (1, 1 if state == "kept" else 0)


def test_an_order_not_delivered_is_flagged_late_once_its_promised_day_ends_at_its_offset(
    client, db, writer
) -> None:
    # given two parcels promised for 3 December, out with the carrier, one sent from New York
    # (-05:00) and one from Tokyo (+09:00)
    _placed_and_shipped(client, writer, "O-WEST", "-05:00")
    _placed_and_shipped(client, writer, "O-EAST", "+09:00")

    # when it is 16:00 UTC on the 3rd: already the 4th in Tokyo, still the 3rd in New York
    clock.set_clock(lambda: datetime(2026, 12, 3, 16, 0, tzinfo=UTC))
    assert orders.flag_late_deliveries(db) == ["O-EAST"]
    db.expire_all()
    east = orders.get_order(db, order_id="O-EAST")
    west = orders.get_order(db, order_id="O-WEST")
    assert listing.promise_state(east) == "late"
    assert listing.promise_state(west) == "due"

    # and at 03:00 UTC on the 4th it is still the 3rd in New York: not late there yet
    clock.set_clock(lambda: datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
    assert orders.flag_late_deliveries(db) == []
    assert listing.promise_state(west) == "due"

    # then once its day has ended there, it is late too
    clock.set_clock(lambda: datetime(2026, 12, 4, 5, 30, tzinfo=UTC))
    assert orders.flag_late_deliveries(db) == ["O-WEST"]
    assert [(r.due, r.on_time) for r in orders.promise_kept(db, by="channel")] == [(2, 0)]
