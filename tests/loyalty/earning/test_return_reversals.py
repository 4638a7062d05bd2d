"""Returns take back what an order earned cumulatively: a whole order returned in several
parts gives back exactly what it earned, never more, each part within a point of its share."""

from __future__ import annotations

import threading
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.loyalty import service as ledger
from rapport.loyalty.earning.processor import process_loyalty_events
from rapport.loyalty.models import Award, QualifyingActivity
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn, ReturnIn
from rapport.platform.db import open_session
from tests.loyalty.earning.test_earning import process
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import CHIANTI, CORKSCREW, order_body, seed_catalog


def place_lines(
    db: Session, member: str, lines: list[tuple[str, int, int]], *, currency: str = "EUR"
) -> str:
    """An order (no discount, no shipping) of ``(sku, quantity, price)`` in ``currency``."""
    subtotal = sum(quantity * price for _, quantity, price in lines)
    body = order_body(
        customer_id=member,
        currency=currency,
        lines=[
            {"sku": sku, "quantity": quantity, "unit_price_minor": price}
            for sku, quantity, price in lines
        ],
        discount_minor=0,
        shipping_minor=0,
        subtotal_minor=subtotal,
        total_minor=subtotal,
        payments=[{"method": "card", "amount_minor": subtotal}],
    )
    return orders.place_order(db, order=OrderIn.model_validate(body)).order_id


def return_units(db: Session, order_id: str, units: dict[str, int]) -> None:
    orders.record_return(
        db,
        order_id=order_id,
        request=ReturnIn.model_validate(
            {
                "lines": [
                    {"sku": sku, "quantity": quantity, "reason": "changed_mind"}
                    for sku, quantity in units.items()
                    if quantity
                ],
                "channel": "store",
            }
        ),
    )


def _reversals(db: Session, member: str) -> list[int]:
    """Points each processed return took back, in order."""
    return [
        -points
        for points in db.scalars(
            select(QualifyingActivity.points)
            .where(
                QualifyingActivity.customer_id == member,
                QualifyingActivity.source_key.like("return:%"),
            )
            .order_by(QualifyingActivity.id)
        )
    ]


def _earned(db: Session, member: str, order_id: str) -> int:
    return ledger.order_points(db, customer_id=member, order_id=order_id).earned


def test_three_single_unit_returns_give_back_all_the_order_earned(db: Session) -> None:
    # given a member's second order of 3 x 14.49 (43.47: 43 points)
    frozen_clock()
    seed_catalog(db, stock=50)
    member = make_customer(db)
    place_lines(db, member, [(CHIANTI, 1, 1200)])
    order_id = place_lines(db, member, [(CHIANTI, 3, 1449)])
    process(db)
    assert _earned(db, member, order_id) == 43

    # when the three bottles come back one at a time
    for _ in range(3):
        return_units(db, order_id, {CHIANTI: 1})
        process(db)

    # then 14, 14, 15 (each within a point of 14.33) and all 43 are taken back
    assert _reversals(db, member) == [14, 14, 15]
    assert ledger.order_points(db, customer_id=member, order_id=order_id).reversible == 0


_LINE = st.tuples(st.integers(1, 5), st.integers(1, 5000))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    chianti=_LINE,
    corkscrew=_LINE,
    parts=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=6),
)
def test_returns_in_any_split_never_take_back_more_than_earned(
    db: Session, chianti: tuple[int, int], corkscrew: tuple[int, int], parts: list[tuple[int, int]]
) -> None:
    # given an order of two lines, and returns of some of its units in random parts
    frozen_clock()
    seed_catalog(db, stock=1000)
    member = make_customer(db)
    place_lines(db, member, [(CHIANTI, 1, 100)])  # the welcome bonus goes to this one
    bought = {CHIANTI: chianti[0], CORKSCREW: corkscrew[0]}
    order_id = place_lines(db, member, [(CHIANTI, *chianti), (CORKSCREW, *corkscrew)])
    process(db)
    earned = _earned(db, member, order_id)
    line_points = {CHIANTI: 0, CORKSCREW: 0}  # what each line earned, over the order's awards
    for held in db.scalars(select(Award.line_points).where(Award.order_id == order_id)):
        for line_no, sku in ((1, CHIANTI), (2, CORKSCREW)):
            line_points[sku] += int((held or {}).get(str(line_no), [0])[0])
    assert sum(line_points.values()) == earned
    left = dict(bought)
    shares: list[Fraction] = []
    for wanted in [*parts, (5, 5)]:  # and last, whatever is left
        units = {
            sku: min(n, left[sku]) for sku, n in zip((CHIANTI, CORKSCREW), wanted, strict=True)
        }
        if not any(units.values()):
            continue
        return_units(db, order_id, units)
        process(db)
        left = {sku: left[sku] - units[sku] for sku in left}
        shares.append(sum(Fraction(line_points[s] * units[s], bought[s]) for s in units))

    # then all returned gives back exactly what was earned, each part within 1 of what its
    # units earned
    reversals = _reversals(db, member)
    assert sum(reversals) == earned
    assert len(reversals) == len(shares)
    for reversal, share in zip(reversals, shares, strict=True):
        assert abs(reversal - share) < 1
    running = 0
    for reversal in reversals:
        running += reversal
        assert 0 <= running <= earned


def test_concurrent_returns_of_one_order_take_back_what_it_earned_once(committed_url) -> None:
    # given a member's order of 3 x 14.49 (43 points) and its three single-unit returns,
    # logged but not yet handled
    frozen_clock()
    with open_session(committed_url) as db:
        seed_catalog(db, stock=50)
        member = make_customer(db)
        place_lines(db, member, [(CHIANTI, 1, 1200)])
        order_id = place_lines(db, member, [(CHIANTI, 3, 1449)])
        process(db)
        for _ in range(3):
            return_units(db, order_id, {CHIANTI: 1})
        positions = list(
            db.scalars(
                select(Event.position)
                .where(Event.type == "order_returned", Event.customer_id == member)
                .order_by(Event.position)
            )
        )
    assert len(positions) == 3
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def handle(position: int) -> None:
        start.wait()
        with open_session(committed_url) as db:
            try:
                event = db.scalars(select(Event).where(Event.position == position)).one()
                process_loyalty_events(db, [event])
                db.commit()
            except BaseException as error:
                errors.append(error)

    # when the three are handled at the same moment, each in its own transaction
    threads = [threading.Thread(target=handle, args=(p,)) for p in positions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # then together they take back the 43 points, once
    assert errors == []
    with open_session(committed_url) as db:
        assert sorted(_reversals(db, member)) == [14, 14, 15]
        assert ledger.order_points(db, customer_id=member, order_id=order_id).reversible == 0
        assert ledger.invariant_violations(db) == []
