"""The business overview's figures (analytics.service.collect_overview) on a small dataset
whose answers are known: members and active members, points liability and breakage, revenue
per member against other customers, on-time delivery and the return rate."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from rapport.analytics.service import ACTIVE_DAYS, collect_overview, month_starts
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.loyalty import service as loyalty
from rapport.orders import service as orders
from rapport.orders.service import ImportedLine, ImportedOrder, ImportedReturn
from tests.loyalty.factories import T0, frozen_clock

NOW = T0 + timedelta(days=400)


def _customer(db: Session, external_id: str) -> str:
    return customers.create_customer(
        db, customer=CustomerIn(external_id=external_id, email=f"{external_id}@example.com")
    ).customer_id


def _order(
    order_id: str,
    external_id: str,
    *,
    days_ago: int,
    total: int,
    promised_days_ago: int | None = None,
    delivered_days_ago: int | None = None,
    returned: bool = False,
) -> ImportedOrder:
    placed = NOW - timedelta(days=days_ago)
    return ImportedOrder(
        order_id=order_id,
        customer_external_id=external_id,
        channel="web",
        fulfilment="ship" if promised_days_ago is not None else "in_store",
        store_id="web",
        placed_at=placed,
        currency="EUR",
        lines=[ImportedLine(sku="W-1", quantity=1, unit_price_minor=total)],
        promised_delivery=(NOW - timedelta(days=promised_days_ago)).date()
        if promised_days_ago is not None
        else None,
        delivered_at=NOW - timedelta(days=delivered_days_ago)
        if delivered_days_ago is not None
        else None,
        returns=[
            ImportedReturn(
                sku="W-1",
                quantity=1,
                reason="damaged",
                returned_at=placed + timedelta(days=5),
                channel="web",
            )
        ]
        if returned
        else [],
    )


def _seed(db: Session) -> dict[str, str]:
    clock = frozen_clock(NOW - timedelta(days=300))
    ids = {name: _customer(db, name) for name in ("ALICE", "BOB", "CAROL")}
    # Alice: 1,000 points that expire unused, then 500 a month ago (active).
    loyalty.earn(
        db,
        customer_id=ids["ALICE"],
        points=1000,
        reason="order",
        expires_at=NOW - timedelta(days=10),
    )
    # Bob: 300 points long ago, nothing since (not active).
    loyalty.earn(
        db,
        customer_id=ids["BOB"],
        points=300,
        reason="order",
        expires_at=NOW + timedelta(days=300),
    )
    clock.at = NOW - timedelta(days=30)
    loyalty.earn(
        db,
        customer_id=ids["ALICE"],
        points=500,
        reason="order",
        expires_at=NOW + timedelta(days=300),
    )
    clock.at = NOW
    loyalty.expire_lots(db, now=NOW)
    # Carol never earned points: not a member, though she ordered lately.
    orders.import_orders(
        db,
        orders=[
            _order(
                "A-1",
                "ALICE",
                days_ago=20,
                total=10_000,
                promised_days_ago=15,
                delivered_days_ago=16,
            ),
            _order("A-OLD", "ALICE", days_ago=500, total=99_900),
            _order("B-1", "BOB", days_ago=100, total=4_000),
            _order(
                "C-1",
                "CAROL",
                days_ago=50,
                total=3_000,
                promised_days_ago=45,
                delivered_days_ago=40,
                returned=True,
            ),
        ],
    )
    return ids


def test_members_and_active_members(db: Session) -> None:
    _seed(db)
    overview = collect_overview(db)
    assert overview.customers == 3
    # members are customers with points; active ones moved points or ordered lately
    assert overview.members == 2
    assert overview.active_members == 1  # Alice; Bob's order is older than ACTIVE_DAYS
    assert ACTIVE_DAYS == 90
    assert overview.active_share == 0.5
    assert overview.non_members == 1


def test_points_liability_and_breakage(db: Session) -> None:
    _seed(db)
    overview = collect_overview(db)
    program = loyalty.get_program(db)
    assert overview.outstanding_points == 500 + 300
    assert overview.liability_minor == 800 * program.point_value_minor_per_100 // 100
    assert overview.currency == program.currency
    assert overview.points.issued == 1800
    assert overview.points.expired == 1000
    assert overview.breakage == 1000 / 1800


def test_revenue_per_member_against_other_customers(db: Session) -> None:
    _seed(db)
    overview = collect_overview(db)
    # the last 12 months: Alice 100.00 and Bob 40.00 over two members, Carol 30.00 alone;
    # Alice's order of 500 days ago is left out
    assert overview.member_spend_minor == 14_000
    assert overview.revenue_per_member_minor == 7_000
    assert overview.revenue_per_non_member_minor == 3_000
    chart = overview.revenue_chart()
    assert chart.config()["data"]["datasets"][0]["data"] == [70.0, 30.0]


def test_on_time_delivery_and_return_rate(db: Session) -> None:
    _seed(db)
    overview = collect_overview(db)
    # two shipped orders were due: Alice's came a day early, Carol's five days late
    assert (overview.deliveries_on_time, overview.deliveries_due) == (1, 2)
    assert overview.on_time_share == 0.5
    # one of the three orders of the last 12 months had a return
    assert (overview.orders_returned, overview.orders_placed) == (1, 3)
    assert overview.return_rate == 1 / 3


def test_an_empty_program_shows_no_rates(db: Session) -> None:
    overview = collect_overview(db)
    assert overview.members == 0
    assert overview.breakage is None
    assert overview.on_time_share is None
    assert overview.return_rate is None
    assert overview.revenue_per_member_minor is None
    assert [one.nps for one in overview.nps_trend] == [None] * 12


def test_the_trend_covers_twelve_months_ending_this_one() -> None:
    starts = month_starts(datetime.fromisoformat("2026-02-10T08:00:00+00:00"), 12)
    assert [s.strftime("%Y-%m") for s in starts][:2] == ["2025-03", "2025-04"]
    assert starts[-1].strftime("%Y-%m") == "2026-02"
