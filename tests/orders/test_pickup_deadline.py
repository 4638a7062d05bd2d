"""Pick-up-in-store orders are kept until a collection deadline: the customer is told the
order is ready (where, and until when), and an order not collected by then is cancelled by
the hourly job, its reserved units back on sale once, its points taken back as any
cancellation's, and the customer told."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from rapport.catalog import service as catalog
from rapport.events.models import Event
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from rapport.platform.errors import Problem
from tests.conftest import auth, command
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, run_at_once, seed_catalog
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, sign_in

# Placed on 2 March at 10:00 UTC: kept the 7 days after (RAPPORT_PICKUP_HOLD_DAYS), to 9 March.
PLACED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LAST_DAY = date(2026, 3, 9)
PAST_IT = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)


def _pickup(order_id: str, customer_id: str = "C-100", **overrides: Any) -> OrderIn:
    return OrderIn(
        **order_body(
            order_id=order_id,
            customer_id=customer_id,
            fulfilment="pickup_in_store",
            store_id="st-par-01",
            shipping_minor=0,
            total_minor=3000,
            payments=[{"method": "card", "amount_minor": 3000}],
            **overrides,
        )
    )


def _level(db, sku: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    level = catalog.get_stock(db, sku=sku, store_id="st-par-01")
    assert level is not None
    db.refresh(level)
    return level.on_hand, level.reserved


def _logged(db, kind: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.properties["order_id"] for e in db.scalars(select(Event).where(Event.type == kind))]


def test_the_order_shows_its_collection_deadline_in_the_api(client, db, api_key) -> None:
    clock.set_clock(lambda: PLACED)
    seed_catalog(db)
    writer = auth(api_key("write"))
    body = _pickup("O-SHOWN").model_dump(mode="json", exclude_none=True)
    placed = client.post("/v1/orders", json=body, headers=command(writer))
    assert placed.status_code == 201, placed.text
    assert placed.json()["collect_by"] == "2026-03-09"
    read = client.get("/v1/orders/O-SHOWN", headers=auth(api_key("read")))
    assert read.json()["collect_by"] == "2026-03-09"
    (notice,) = orders.notices_for(db, order_id="O-SHOWN")
    assert notice.kind == orders.READY_NOTICE
    assert notice.message == (
        "Your order O-SHOWN is ready for collection at Paris Rivoli. We keep it for you until "
        "9 March 2026."
    )


def test_past_the_deadline_the_units_are_released_once_however_often_the_job_runs(db) -> None:
    # given a pick-up of two Chianti and a corkscrew reserved in Paris (5 of each on hand)
    clock.set_clock(lambda: PLACED)
    seed_catalog(db)
    orders.place_order(db, order=_pickup("O-WAIT"))
    assert _level(db, CHIANTI) == (5, 2)
    # when the job runs on its last day, nothing happens
    clock.set_clock(lambda: datetime(2026, 3, 9, 23, 0, tzinfo=UTC))
    assert orders.release_uncollected_pickups(db) == []
    # when it runs past the deadline, twice
    clock.set_clock(lambda: PAST_IT)
    runs = [orders.release_uncollected_pickups(db), orders.release_uncollected_pickups(db)]
    # then the order was released once: cancelled, saying why, its units back on sale
    assert runs == [["O-WAIT"], []]
    db.expire_all()
    order = orders.get_order(db, order_id="O-WAIT")
    assert order.status == "cancelled"
    last = orders.status_history(db, order_id="O-WAIT")[-1]
    assert (last.status, last.note) == ("cancelled", "not collected by 2026-03-09")
    assert _level(db, CHIANTI) == (5, 0)
    assert _level(db, CORKSCREW) == (5, 0)
    # and the cancellation (which loyalty reverses the points on) and the notice come once
    assert _logged(db, "order_cancelled") == ["O-WAIT"]
    assert _logged(db, "order_not_collected") == ["O-WAIT"]
    kinds = [n.kind for n in orders.notices_for(db, order_id="O-WAIT")]
    assert kinds == [orders.READY_NOTICE, orders.NOT_COLLECTED_NOTICE]


def test_a_collected_order_is_never_released(db) -> None:
    clock.set_clock(lambda: PLACED)
    seed_catalog(db)
    placed = orders.place_order(db, order=_pickup("O-TAKEN"))
    orders.confirm_pickup(
        db, order_id="O-TAKEN", pickup_code=placed.pickup_code or "", store_id="st-par-01"
    )
    clock.set_clock(lambda: PAST_IT)
    assert orders.release_uncollected_pickups(db) == []
    assert _level(db, CHIANTI) == (3, 0)


def _collect(url: str, order_id: str, code: str) -> str:
    with open_session(url) as db:
        try:
            orders.confirm_pickup(db, order_id=order_id, pickup_code=code, store_id="st-par-01")
        except Problem as refused:
            db.rollback()
            return f"refused: {refused.detail}"
    return "collected"


def _release(url: str) -> str:
    with open_session(url) as db:
        return ",".join(orders.release_uncollected_pickups(db)) or "nothing"


def test_a_collection_and_the_expiry_at_once_one_wins_and_stock_is_right(committed_url) -> None:
    # given pick-ups past their deadline, each collected at the till as the job runs
    rounds = 6
    clock.set_clock(clock.FrozenClock(PLACED))
    codes = {}
    with open_session(committed_url) as db:
        seed_catalog(db, stock=2 * rounds)
        for n in range(rounds):
            request = _pickup(
                f"RACE-{n}",
                lines=[{"sku": CHIANTI, "quantity": 2, "unit_price_minor": 1500}],
                subtotal_minor=3000,
                discount_minor=0,
            )
            codes[n] = orders.place_order(db, order=request).pickup_code or ""
    clock.set_clock(clock.FrozenClock(PAST_IT))
    # when the till collects each one and the job runs, at the same moment
    outcomes = [
        run_at_once(
            lambda n=n: _collect(committed_url, f"RACE-{n}", codes[n]),
            lambda: _release(committed_url),
            lambda: _release(committed_url),
        )
        for n in range(rounds)
    ]
    # then each order was collected or released, never both, and never released twice
    with open_session(committed_url) as db:
        collected = 0
        for n, (till, *_jobs) in enumerate(outcomes):
            order = orders.get_order(db, order_id=f"RACE-{n}")
            assert order is not None
            if till == "collected":
                collected += 1
                assert order.status == "collected"
            else:
                assert order.status == "cancelled"
                assert "refused" in till
        released = sorted(_logged(db, "order_cancelled"))
        assert len(released) == rounds - collected
        assert sorted(_logged(db, "order_not_collected")) == released
        assert sorted(_logged(db, "order_collected")) == sorted(
            f"RACE-{n}" for n, (till, *_) in enumerate(outcomes) if till == "collected"
        )
        # each collected order took its two units; a released one gave them back
        assert _level(db, CHIANTI) == (2 * rounds - 2 * collected, 0)


def test_the_customers_orders_page_shows_until_when_a_pick_up_is_kept(client, db) -> None:
    clock.set_clock(lambda: PLACED)
    seed_catalog(db)
    orders.place_order(db, order=_pickup("O-PAGE"))
    customer_id = orders.get_order(db, order_id="O-PAGE").customer_id
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
    db.commit()
    assert sign_in(client).status_code == 303
    page = client.get(f"/admin/orders/customer/{customer_id}").text
    said = re.search(r'data-testid="collect-by-O-PAGE">(.*?)</small>', page)
    assert said is not None
    assert said[1] == "Kept for collection at st-par-01 until 9 Mar 2026."
