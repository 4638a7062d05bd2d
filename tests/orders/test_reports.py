"""Returns concentration arithmetic and the demo orders import."""

from __future__ import annotations

from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import load_demo, load_demo_orders
from rapport.orders import service as orders


def test_concentration_shares_from_the_top_customers() -> None:
    # 100 customers; one returned 30 units, four returned 5 each, ten returned 1 each
    units = {"c0": 30, **{f"c{n}": 5 for n in range(1, 5)}, **{f"c{n}": 1 for n in range(5, 15)}}
    baskets = dict.fromkeys(units, 1)
    result = orders.concentration(units, baskets, customers_total=100)
    assert result.returned_units == 60
    assert result.top1_units_share == 30 / 60
    assert result.top5_units_share == 50 / 60
    assert result.top5_orders_share == 5 / 15


def test_demo_orders_load_once_with_late_deliveries_and_concentrated_returns(db) -> None:
    retailer = DemoRetailer(seed=5, customers=150)
    load_demo(db, retailer=retailer)
    added = load_demo_orders(db, retailer=retailer)
    assert load_demo_orders(db, retailer=retailer) == 0
    expected = sum(len(h.orders) for h in retailer.histories())
    assert added == expected
    assert orders.count_orders(db) == expected
    report = orders.returns_concentration(db)
    returned_units = sum(
        r.quantity for h in retailer.histories() for o in h.orders for r in o.returns
    )
    assert report.returned_units == returned_units
    assert report.top5_units_share > 0.3
    kept = orders.promise_kept(db, by="channel")
    due = sum(row.due for row in kept)
    late = sum(1 for h in retailer.histories() for o in h.orders if o.delivered_late)
    assert due - sum(row.on_time for row in kept) == late


def test_historical_late_deliveries_are_flagged_once_at_their_time(db) -> None:
    from sqlalchemy import select

    from rapport.events.models import Event

    retailer = DemoRetailer(seed=8, customers=120)
    load_demo(db, retailer=retailer)
    load_demo_orders(db, retailer=retailer)
    late = sum(1 for h in retailer.histories() for o in h.orders if o.delivered_late)
    flagged = orders.late_deliveries(db, limit=10_000)
    assert len(flagged) == late
    assert len(db.scalars(select(Event).where(Event.type == "delivery_late")).all()) == late
    # and the promise check finds nothing new to apologise for
    assert orders.flag_late_deliveries(db) == []
