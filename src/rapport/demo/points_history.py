"""The demo's points after they are earned: members spend them (points paid at checkout,
rewards claimed a few days after an order) and the nightly expiry job takes what is left of
lots past their twelve months, each on its own date through the two years.

The earning processor has already posted every order's points at the order's time (the
workflow runs it with the clock at each fact's time). This step then replays the two years in
order, with the platform clock set to each moment: before a member spends, the expiry runs
that were due have run, so a redemption never uses points that had expired by then, and the
points spent are ones earned before. Who spends, when and how much is drawn from the seed and
the customer's number, so the same seed gives the same ledger.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.demo.generator import DemoRetailer
from rapport.demo.loader import batched
from rapport.loyalty import service as loyalty
from rapport.platform import clock

REWARDS = (("big-20", 1800), ("ten-percent", 1000), ("coffee-5", 500))
"""The demo's rewards (:func:`rapport.demo.loader.load_demo_loyalty`) and their cost, dearest
first: a member claims the dearest one their points cover."""

SPENDERS = 0.6
"""The share of members who ever spend points; the others let them expire."""

SPEND_CHANCE = 0.55
"""How likely a spender is to spend at an order when their points cover the cheapest reward."""


@dataclass(frozen=True)
class PointsHistory:
    """What the replay added: redemptions (points at checkout and rewards claimed) and the
    expiry runs' movements (one per member and run)."""

    redemptions: int = 0
    redeemed_points: int = 0
    expiries: int = 0
    expired_points: int = 0


@dataclass
class _Lot:
    earned_at: datetime
    expires_at: datetime
    remaining: int

    @property
    def expired_on(self) -> datetime:
        """When the nightly expiry job takes it: the first midnight after its date."""
        return expiry_run_after(self.expires_at)


@dataclass(frozen=True, order=True)
class _Spend:
    at: datetime
    customer_id: str
    points: int = field(compare=False)
    reward_id: str | None = field(compare=False)  # None: points paid at checkout
    order_id: str | None = field(compare=False)
    channel: str = field(compare=False)


def expiry_run_after(moment: datetime) -> datetime:
    """The nightly expiry run that first sees a lot expiring at ``moment``."""
    at = clock.as_utc(moment)
    return datetime.combine(at.date() + timedelta(days=1), time(0), tzinfo=UTC)


def _plan_member(
    rng: random.Random,
    customer_id: str,
    lots: list[_Lot],
    orders: Iterable[tuple[datetime, str, str]],
    until: datetime,
) -> list[_Spend]:
    """One member's spending, simulated over their lots oldest first (as the ledger takes
    them): at each order, a spender whose unexpired points cover a reward may pay with points
    at the till or claim a reward in the app a few days later."""
    if rng.random() >= SPENDERS:
        return []
    planned: list[_Spend] = []
    cheapest = REWARDS[-1][1]
    for placed_at, order_id, channel in sorted(orders):
        roll, kind, delay = rng.random(), rng.random(), rng.randint(20, 240)
        at = placed_at if kind < 0.4 else placed_at + timedelta(hours=delay)
        if at >= until:
            continue
        usable = [lot for lot in lots if lot.earned_at < at and lot.expired_on > at]
        available = sum(lot.remaining for lot in usable)
        if available < cheapest or roll >= SPEND_CHANCE:
            continue
        if kind < 0.4:
            points = min(available // 100 * 100, 2500)
            spend = _Spend(at, customer_id, points, None, order_id, channel)
        else:
            reward_id, points = next((r, cost) for r, cost in REWARDS if cost <= available)
            spend = _Spend(at, customer_id, points, reward_id, None, "app")
        planned.append(spend)
        left = points
        for lot in usable:  # oldest first, as the ledger consumes them
            taken = min(lot.remaining, left)
            lot.remaining -= taken
            left -= taken
    return planned


def load_points_history(
    db: Session, *, retailer: DemoRetailer, seed: int, until: datetime
) -> PointsHistory:
    """Replay members' spending and the nightly expiry runs through the two years, up to
    ``until`` (the load's moment), then expire what is due now. A re-run (the ledger already
    holds the demo's redemptions) spends nothing again and only expires what is due."""
    start = datetime.combine(retailer.start, time(0), tzinfo=UTC)
    spends: list[_Spend] = []
    runs: set[datetime] = set()
    members = loyalty.member_ids(db)
    already = loyalty.points_redeemed_in_window(
        db, customer_ids=sorted(members), since=start, until=until
    )
    for histories in batched(retailer.histories(), 500):
        ids = customers.customer_ids_by_external_id(
            db, external_ids=[h.customer.external_id for h in histories]
        )
        for history in histories:
            customer_id = ids.get(history.customer.external_id)
            if customer_id is None or customer_id not in members:
                continue
            member = loyalty.get_member(db, customer_id=customer_id)
            if member is None:
                continue
            lots = [
                _Lot(clock.as_utc(lot.earned_at), clock.as_utc(lot.expires_at), lot.remaining)
                for lot in member.lots
            ]
            runs.update(lot.expired_on for lot in lots if lot.expired_on <= until)
            if already:
                continue
            rng = random.Random(f"{seed}:points:{history.customer.external_id}")
            orders = ((o.placed_at, o.order_id, o.channel) for o in history.orders)
            spends.extend(_plan_member(rng, customer_id, lots, orders, until))
        db.rollback()
    timeline: list[tuple[datetime, int, _Spend | None]] = [(run, 0, None) for run in runs]
    timeline += [(spend.at, 1, spend) for spend in spends]
    timeline.sort(key=lambda step: (step[0], step[1], step[2].customer_id if step[2] else ""))
    redemptions = redeemed = expiries = expired = 0
    try:
        for at, _, spend in timeline:
            clock.set_clock(clock.FrozenClock(at))
            if spend is None:
                run = loyalty.expire_lots(db)
                expiries, expired = expiries + run.members, expired + run.points
                continue
            try:
                if spend.reward_id is None:
                    loyalty.redeem(
                        db,
                        customer_id=spend.customer_id,
                        points=spend.points,
                        reason="Points paid at checkout",
                        order_id=spend.order_id,
                        channel=spend.channel,
                    )
                else:
                    loyalty.redeem_reward(
                        db, customer_id=spend.customer_id, reward_id=spend.reward_id, channel="app"
                    )
            except loyalty.InsufficientPoints:
                continue  # a return took points back since: the member spends nothing
            redemptions, redeemed = redemptions + 1, redeemed + spend.points
    finally:
        clock.reset_clock()
    now = loyalty.expire_lots(db, now=until)
    return PointsHistory(
        redemptions=redemptions,
        redeemed_points=redeemed,
        expiries=expiries + now.members,
        expired_points=expired + now.points,
    )
