"""The loyalty admin pages' reads on both databases: points by calendar month, breakage, the
member list's filters, what expires soon, the way to the next tier, and coupons by state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from rapport.loyalty import overview as reads
from rapport.loyalty import service as loyalty
from rapport.loyalty.rewards import coupons as reward_coupons
from tests.loyalty.factories import frozen_clock, make_customer


def test_points_by_month_and_breakage_follow_the_ledger(db: Session) -> None:
    # given points earned in January, some redeemed in February and the rest expired in April
    clock = frozen_clock(datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    ann = make_customer(db)
    bob = make_customer(db)
    loyalty.earn(
        db, customer_id=ann, points=500, reason="Order", expires_at=datetime(2026, 4, 1, tzinfo=UTC)
    )
    loyalty.adjust(db, customer_id=bob, points=100, reason="Goodwill: Late delivery")
    clock.advance(timedelta(days=31))
    loyalty.redeem(db, customer_id=ann, points=200, reason="Reward")
    loyalty.adjust(db, customer_id=bob, points=-30, reason="Correction")
    clock.at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    loyalty.expire_lots(db)
    # when the last four months are read
    flows = reads.monthly_flows(db, months=4)
    # then each month holds its own movements (a correction that removed points is not issued)
    assert [(f.month, f.issued, f.redeemed, f.expired) for f in flows] == [
        ("2026-01", 600, 0, 0),
        ("2026-02", 0, 200, 0),
        ("2026-03", 0, 0, 0),
        ("2026-04", 0, 0, 300),
    ]
    lifetime = reads.lifetime_flows(db)
    assert (lifetime.issued, lifetime.redeemed, lifetime.expired) == (600, 200, 300)
    assert lifetime.breakage == 0.5
    # and the month labels run over a year's end
    assert reads.month_labels(3, now=datetime(2026, 2, 1, tzinfo=UTC)) == [
        "2025-12",
        "2026-01",
        "2026-02",
    ]


def test_the_member_list_filters_by_tier_balance_and_customers(db: Session) -> None:
    frozen_clock()
    members = [make_customer(db) for _ in range(4)]
    for points, customer_id in zip((100, 250, 400, 900), members, strict=True):
        loyalty.earn(db, customer_id=customer_id, points=points, reason="Order")
    base = loyalty.tier_policy(db).tiers[0].id
    everyone = reads.MemberFilter(customer_ids=members)
    assert reads.count_members(db, everyone) == 4
    rows = reads.member_page(db, everyone, offset=0, limit=2)
    assert [(r.balance, r.tier_id) for r in rows] == [(900, base), (400, base)]
    assert [r.balance for r in reads.member_page(db, everyone, offset=2, limit=2)] == [250, 100]
    middle = reads.MemberFilter(min_balance=200, max_balance=400, customer_ids=members)
    assert [r.balance for r in reads.member_page(db, middle, offset=0, limit=10)] == [400, 250]
    other_tier = reads.MemberFilter(tier="no-such-tier", customer_ids=members)
    assert reads.count_members(db, other_tier) == 0
    in_tiers = {tier_id: count for tier_id, _, count in reads.members_by_tier(db)}
    assert in_tiers[base] >= 4


def test_what_expires_soon_and_the_way_to_the_next_tier(db: Session) -> None:
    frozen_clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    ann = make_customer(db)
    loyalty.earn(
        db, customer_id=ann, points=70, reason="Soon", expires_at=datetime(2026, 4, 1, tzinfo=UTC)
    )
    loyalty.earn(
        db, customer_id=ann, points=30, reason="Later", expires_at=datetime(2027, 4, 1, tzinfo=UTC)
    )
    soon = reads.expiring_lots(db, customer_id=ann, days=90)
    assert [(lot.points, lot.expires_at.date().isoformat()) for lot in soon] == [(70, "2026-04-01")]
    progress = reads.tier_progress(db, customer_id=ann)
    policy = loyalty.tier_policy(db)
    assert progress.tier_id == policy.tiers[0].id
    assert progress.next_tier_name == policy.tiers[1].name
    assert progress.next_threshold == policy.tiers[1].threshold
    assert progress.to_go == policy.tiers[1].threshold - progress.qualifying_value


def test_coupons_by_state_and_campaign(db: Session) -> None:
    clock = frozen_clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    for code in ("SPRING1", "SPRING2"):
        reward_coupons.create_campaign_coupon(
            db,
            rule="spring",
            kind="amount",
            value=500,
            code=code,
            expires_at=datetime(2026, 3, 10, tzinfo=UTC),
        )
    reward_coupons.create_campaign_coupon(
        db, rule="summer", kind="percent", value=10, expires_at=datetime(2026, 9, 1, tzinfo=UTC)
    )
    reward_coupons.consume_coupons(db, codes=["SPRING1"], order_id="O-1")
    db.commit()
    clock.at = datetime(2026, 3, 20, tzinfo=UTC)

    def codes(**chosen: str) -> list[str]:
        found = reads.coupon_page(db, reads.CouponFilter(**chosen), offset=0, limit=50)
        return sorted(c.code for c in found if c.rule in ("spring", "summer"))

    assert codes(state="used") == ["SPRING1"]
    assert codes(state="expired") == ["SPRING2"]
    assert len(codes(state="open")) == 1
    assert codes(rule="spring") == ["SPRING1", "SPRING2"]
    assert codes(code="SPRING2") == ["SPRING2"]
    assert ("spring", 2, 1) in reads.coupon_campaigns(db)


def test_points_by_month_are_utc_months_whatever_the_session_time_zone(db: Session) -> None:
    # given points earned on the 31st of January at noon UTC (already February in Kiritimati)
    frozen_clock(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))
    loyalty.adjust(db, customer_id=make_customer(db), points=40, reason="Goodwill: Late parcel")
    # when the months are read by a PostgreSQL session set to UTC+14
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
    flows = reads.monthly_flows(db, months=2, now=datetime(2026, 2, 10, tzinfo=UTC))
    # then the points stay in January, the calendar month (UTC) the page promises
    assert [(f.month, f.issued) for f in flows] == [("2026-01", 40), ("2026-02", 0)]
