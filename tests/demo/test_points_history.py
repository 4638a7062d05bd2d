"""How the demo's members spend points over time: only points earned before and not yet
expired, oldest first, the same way for the same seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from rapport.demo.points_history import (
    REWARDS,
    _Lot,
    _plan_member,
    _Spend,
    expiry_run_after,
)

START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
UNTIL = START + timedelta(days=720)


def _lots() -> list[_Lot]:
    """A steady customer: 300 points an order, every month for two years."""
    return [
        _Lot(START + timedelta(days=30 * n), START + timedelta(days=30 * n + 365), 300)
        for n in range(24)
    ]


def _orders() -> list[tuple[datetime, str, str]]:
    return [(START + timedelta(days=30 * n), f"O-{n:03d}", "web") for n in range(24)]


def test_expiry_runs_the_first_midnight_after_a_lot_expires() -> None:
    assert expiry_run_after(datetime(2025, 3, 1, 14, 5, tzinfo=UTC)) == datetime(
        2025, 3, 2, tzinfo=UTC
    )
    assert expiry_run_after(datetime(2025, 3, 1, 0, 0, tzinfo=UTC)) == datetime(
        2025, 3, 2, tzinfo=UTC
    )


def test_members_spend_only_points_they_hold_then() -> None:
    # given spenders among many seeds, each a steady customer
    plans = [
        _plan_member(random.Random(f"test:{n}"), f"cus-{n}", _lots(), _orders(), UNTIL)
        for n in range(40)
    ]
    spent = [spend for plan in plans for spend in plan]
    # then some spend and some never do
    assert spent
    assert any(not plan for plan in plans)
    for plan in plans:
        lots = _lots()
        for spend in plan:
            # each spend is a reward's price or whole hundreds at the till, in the window
            assert spend.at < UNTIL
            if spend.reward_id is None:
                assert spend.points % 100 == 0
                assert spend.order_id is not None
            else:
                assert (spend.reward_id, spend.points) in REWARDS
            # and the points were earned before it and had not expired by then
            usable = [lot for lot in lots if lot.earned_at < spend.at and lot.expired_on > spend.at]
            assert sum(lot.remaining for lot in usable) >= spend.points
            left = spend.points
            for lot in usable:
                taken = min(lot.remaining, left)
                lot.remaining -= taken
                left -= taken
    # and the same seed spends the same way
    again = _plan_member(random.Random("test:3"), "cus-3", _lots(), _orders(), UNTIL)

    def figures(plan: list[_Spend]) -> list[tuple[object, ...]]:
        return [(s.at, s.points, s.reward_id, s.order_id, s.channel) for s in plan]

    assert figures(again) == figures(plans[3])
