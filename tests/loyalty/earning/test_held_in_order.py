"""A member's events are applied in their order even when one of them was held: an order's
cancellation waits behind its held ``order_placed``, and the retry applies both in turn, so
a cancelled order never keeps the points it earned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from rapport.events import processors
from rapport.events.models import Event
from rapport.events.processors import Processor, retry_held, run_processors
from rapport.loyalty import service as ledger
from rapport.loyalty.earning.processor import process_loyalty_events
from rapport.loyalty.tasks import expire_lots  # noqa: F401  (registers the processor)
from rapport.orders import service as orders
from rapport.platform.db import open_session
from tests.loyalty.earning.test_earning import big_order
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import seed_catalog


class BrokenOnOrders:
    """The real earning processor, with a bug on ``order_placed`` until mended."""

    def __init__(self) -> None:
        self.mended = False

    def __call__(self, db: Session, events: list[Event]) -> None:
        if not self.mended and any(e.type == "order_placed" for e in events):
            raise ValueError("cannot read the order's lines: unknown unit 'magnum'")
        process_loyalty_events(db, events)


@pytest.fixture
def broken(committed_url: str, monkeypatch: pytest.MonkeyPatch) -> BrokenOnOrders:
    handler = BrokenOnOrders()
    real = processors._processors["loyalty.earning"]
    assert real.in_order_by is not None  # points apply in their order per member
    monkeypatch.setattr(
        processors,
        "_processors",
        {
            "loyalty.earning": Processor(
                name="loyalty.earning", handle=handler, in_order_by=real.in_order_by
            )
        },
    )
    return handler


def test_a_cancelled_order_keeps_no_points_when_its_held_order_is_retried(
    committed_url: str, broken: BrokenOnOrders
) -> None:
    # given a member's order of 10 bottles, which the earning processor cannot read
    clock = frozen_clock()
    with open_session(committed_url) as db:
        seed_catalog(db, stock=50)
        db.commit()
        member = make_customer(db)
        order_id = orders.place_order(db, order=big_order(member, 10)).order_id
        # cancelled by the shop before it was sent
        orders.cancel_order(db, order_id=order_id, reason="out of stock at the supplier")

    # when the processor holds the order after three tries over a minute
    for _ in range(3):
        run_processors(database_url=committed_url)
        clock.advance(timedelta(seconds=40))
    with open_session(committed_url) as db:
        total, held = processors.held_events(db)
        assert total == 2
        assert {h.event_type: h.attempts for h in held} == {"order_placed": 3, "order_cancelled": 0}
        assert ledger.balance(db, customer_id=member) == 0

    # and the operator retries once mended
    broken.mended = True
    outcome = retry_held(database_url=committed_url)

    # then the order earned its points and the cancellation took them back, in that order
    assert (outcome.applied, outcome.still_failing) == (2, 0)
    with open_session(committed_url) as db:
        assert ledger.balance(db, customer_id=member) == 0
        assert ledger.order_points(db, customer_id=member, order_id=order_id).reversible == 0
        assert ledger.invariant_violations(db) == []
