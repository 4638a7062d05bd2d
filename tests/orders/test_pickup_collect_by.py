"""A pick-up's collection deadline is one date, computed once when the order is placed and
kept: the placing answer, its reads, the event, the notice and the release all name the same
day, whatever offset the till sent ``placed_at`` with and whatever the hold setting says
later. A pick-up recorded late is announced when Rapport records it; one recorded after its
deadline is never ready."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.platform import clock
from rapport.platform.errors import Conflict
from rapport.platform.settings import get_settings
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, seed_catalog
from tests.orders.test_pickup_deadline import _level, _pickup


def _events(db, kind: str, order_id: str) -> list[Event]:  # type: ignore[no-untyped-def]
    return [
        event
        for event in db.scalars(select(Event).where(Event.type == kind).order_by(Event.position))
        if event.properties["order_id"] == order_id
    ]


@pytest.fixture
def hold_days(monkeypatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    def set_hold(days: int) -> None:
        monkeypatch.setenv("RAPPORT_PICKUP_HOLD_DAYS", str(days))
        get_settings.cache_clear()

    yield set_hold
    monkeypatch.delenv("RAPPORT_PICKUP_HOLD_DAYS", raising=False)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("placed_at", "last_day"),
    [
        ("2026-12-07T23:50:00+01:00", date(2026, 12, 14)),  # late evening, 22:50 UTC
        ("2026-12-07T20:00:00+05:30", date(2026, 12, 14)),
        ("2026-12-08T10:30:00+14:00", date(2026, 12, 15)),  # still 7 Dec in UTC
        ("2026-12-07T01:00:00-05:00", date(2026, 12, 14)),  # early morning, 06:00 UTC
    ],
)
def test_every_reading_of_the_deadline_names_the_same_day_at_any_offset(
    client, db, api_key, placed_at: str, last_day: date
) -> None:
    # given a till placing a pick-up with an offset, a minute after it happened
    placed = datetime.fromisoformat(placed_at)
    clock.set_clock(lambda: placed.astimezone(UTC) + timedelta(minutes=1))
    seed_catalog(db)
    body = _pickup("O-OFFSET", placed_at=placed_at).model_dump(mode="json", exclude_none=True)
    answer = client.post("/v1/orders", json=body, headers=command(auth(api_key("write"))))
    assert answer.status_code == 201, answer.text
    # then the answer, a read, the event and the notice all name the same last day
    read = client.get("/v1/orders/O-OFFSET", headers=auth(api_key("read")))
    (ready,) = _events(db, "order_ready_for_pickup", "O-OFFSET")
    (notice,) = orders.notices_for(db, order_id="O-OFFSET")
    told = {
        "answer": answer.json()["collect_by"],
        "read": read.json()["collect_by"],
        "event": ready.properties["collect_by"],
        "notice": notice.details["collect_by"],
    }
    assert told == dict.fromkeys(told, last_day.isoformat())
    assert f"until {last_day.day} {last_day:%B %Y}." in notice.message
    # and the release keeps it through that day at the till's offset, and not a minute longer
    offset = placed.utcoffset()
    assert offset is not None
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) - offset
    clock.set_clock(lambda: end + timedelta(days=1, minutes=-1))
    assert orders.release_uncollected_pickups(db) == []
    clock.set_clock(lambda: end + timedelta(days=1, minutes=1))
    assert orders.release_uncollected_pickups(db) == ["O-OFFSET"]
    (gone,) = _events(db, "order_not_collected", "O-OFFSET")
    assert gone.properties["collect_by"] == last_day.isoformat()


def test_a_lower_hold_setting_keeps_the_day_a_customer_was_told(db, hold_days) -> None:
    # given a pick-up placed on 6 December and told it is kept until 13 December
    hold_days(7)
    clock.set_clock(lambda: datetime(2026, 12, 6, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    placed = orders.place_order(db, order=_pickup("O-TOLD"))
    assert orders.collect_by(placed) == date(2026, 12, 13)
    # when the hold is lowered to two days
    hold_days(2)
    # then the order is not released before 13 December ends, and is the day after
    for day, hour in ((8, 12), (12, 23), (13, 23)):
        clock.set_clock(lambda day=day, hour=hour: datetime(2026, 12, day, hour, tzinfo=UTC))
        assert orders.release_uncollected_pickups(db) == []
    db.expire_all()
    assert orders.collect_by(orders.get_order(db, order_id="O-TOLD")) == date(2026, 12, 13)
    clock.set_clock(lambda: datetime(2026, 12, 14, 0, 30, tzinfo=UTC))
    assert orders.release_uncollected_pickups(db) == ["O-TOLD"]
    # and an order placed now is told the new hold
    new = orders.place_order(db, order=_pickup("O-NEW", customer_id="C-101"))
    assert orders.collect_by(new) == date(2026, 12, 16)


def test_a_pickup_synced_days_late_is_announced_when_rapport_records_it(db) -> None:
    # given a till syncing a pick-up placed three days ago (kept 7 days)
    placed_at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    recorded = placed_at + timedelta(days=3)
    clock.set_clock(lambda: recorded)
    seed_catalog(db)
    orders.place_order(db, order=_pickup("O-LATE", placed_at=placed_at.isoformat()))
    # then it is ready now: the event happened when it was recorded, keeping when it was placed
    (ready,) = _events(db, "order_ready_for_pickup", "O-LATE")
    assert clock.as_utc(ready.occurred_at) == recorded
    assert ready.properties["placed_at"] == placed_at.isoformat()
    assert ready.properties["collect_by"] == "2026-03-09"
    (placed_event,) = _events(db, "order_placed", "O-LATE")
    assert clock.as_utc(placed_event.occurred_at) == placed_at
    assert [n.kind for n in orders.notices_for(db, order_id="O-LATE")] == [orders.READY_NOTICE]


def test_a_pickup_recorded_after_its_deadline_is_never_ready(client, db, api_key) -> None:
    # given a pick-up placed on 2 March (kept to 9 March) recorded on 12 March
    clock.set_clock(lambda: datetime(2026, 3, 12, 9, 0, tzinfo=UTC))
    seed_catalog(db)
    body = _pickup("O-OLD", placed_at="2026-03-02T10:00:00+00:00").model_dump(
        mode="json", exclude_none=True
    )
    answer = client.post("/v1/orders", json=body, headers=command(auth(api_key("write"))))
    # then it is recorded as not collected at once: cancelled, its units not held
    assert answer.status_code == 201, answer.text
    assert (answer.json()["status"], answer.json()["collect_by"]) == ("cancelled", "2026-03-09")
    history = orders.status_history(db, order_id="O-OLD")
    assert [(c.status, c.note) for c in history] == [
        ("placed", None),
        ("cancelled", "not collected by 2026-03-09"),
    ]
    assert _level(db, CHIANTI)[1] == 0
    # and nobody is told it is ready, or that it was not collected
    assert _events(db, "order_ready_for_pickup", "O-OLD") == []
    assert _events(db, "order_not_collected", "O-OLD") == []
    assert len(_events(db, "order_cancelled", "O-OLD")) == 1
    assert orders.notices_for(db, order_id="O-OLD") == []


def test_the_till_is_told_a_released_order_missed_its_deadline(db) -> None:
    clock.set_clock(lambda: datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    seed_catalog(db)
    code = orders.place_order(db, order=_pickup("O-GONE")).pickup_code or ""
    clock.set_clock(lambda: datetime(2026, 3, 10, 0, 30, tzinfo=UTC))
    assert orders.release_uncollected_pickups(db) == ["O-GONE"]
    with pytest.raises(Conflict) as refused:
        orders.confirm_pickup(db, order_id="O-GONE", pickup_code=code, store_id="st-par-01")
    assert refused.value.detail == (
        "Order O-GONE was not collected by its deadline, 9 March 2026, so it was released: "
        "cancelled, its units back on sale"
    )
    # an order cancelled otherwise is still said to be cancelled
    code = orders.place_order(db, order=_pickup("O-CALLED", customer_id="C-101")).pickup_code
    orders.cancel_order(db, order_id="O-CALLED", reason="customer asked")
    with pytest.raises(Conflict) as refused:
        orders.confirm_pickup(db, order_id="O-CALLED", pickup_code=code or "", store_id="st-par-01")
    assert refused.value.detail == "The order is cancelled, not ready for pick-up"


def test_a_pickup_recorded_after_its_deadline_needs_no_units_today(client, db, api_key) -> None:
    # given a store with no Chianti left today, and a pick-up placed on 2 March (kept to
    # 9 March) that the till syncs on 12 March
    clock.set_clock(lambda: datetime(2026, 3, 12, 9, 0, tzinfo=UTC))
    seed_catalog(db, stock=0)
    body = _pickup("O-SHORT", placed_at="2026-03-02T10:00:00+00:00").model_dump(
        mode="json", exclude_none=True
    )
    answer = client.post("/v1/orders", json=body, headers=command(auth(api_key("write"))))
    # then it is recorded, not collected, without reserving or releasing a unit
    assert answer.status_code == 201, answer.text
    assert (answer.json()["status"], answer.json()["collect_by"]) == ("cancelled", "2026-03-09")
    assert _level(db, CHIANTI) == (0, 0)
    (cancelled,) = _events(db, "order_cancelled", "O-SHORT")
    assert cancelled.properties["released"] is False


def test_a_pickup_loaded_from_history_keeps_the_deadline_it_had(db) -> None:
    seed_catalog(db)
    placed_at = datetime.fromisoformat("2025-11-20T18:30:00+01:00")
    orders.import_orders(
        db,
        orders=[
            orders.ImportedOrder(
                order_id="H-PICK",
                customer_external_id="CRM-H1",
                channel="web",
                fulfilment="pickup_in_store",
                store_id="st-par-01",
                placed_at=placed_at,
                currency="EUR",
                lines=[orders.ImportedLine(sku=CHIANTI, quantity=1, unit_price_minor=1200)],
            )
        ],
    )
    db.commit()
    loaded = orders.get_order(db, order_id="H-PICK")
    # the same day a live pick-up placed then would have been told: 20 Nov (its offset) + 7
    assert orders.collect_by(loaded) == date(2025, 11, 27)
    assert loaded.placed_offset_minutes == 60
