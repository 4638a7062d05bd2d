"""Apology points for broken delivery promises: an apology rule's switches (a late delivery,
an unfulfilled order) decide, whichever event tells of it, and the customer is still told."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.events.processors import registered_processors, run_batch
from rapport.loyalty import service as ledger
from rapport.loyalty.models import Award
from rapport.loyalty.program import versions as program_versions
from rapport.loyalty.tasks import expire_lots  # noqa: F401  (registers the processor)
from rapport.orders import service as orders
from rapport.orders.schemas import OrderIn
from tests.loyalty.factories import T0, frozen_clock, make_customer
from tests.orders.factories import order_body, seed_catalog


def process(db: Session) -> None:
    for proc in registered_processors():
        while run_batch(db, proc):
            pass


def _rules(on: list[str]) -> dict[str, Any]:
    return {"rules": [{"id": "sorry", "name": "Sorry", "kind": "apology", "points": 150, "on": on}]}


def _broken_promise(db: Session, *, on: list[str], failed: bool) -> tuple[str, str]:
    """An order promised for T0 + 2 days, shipped, then failed (or only late), with the
    promise job run after the promised day."""
    frozen = frozen_clock()
    seed_catalog(db, stock=50)
    program_versions.save(db, "rules", _rules(on), changed_by="test")
    member = make_customer(db)
    body = order_body(customer_id=member, promised_delivery=str((T0 + timedelta(days=2)).date()))
    order_id = orders.place_order(db, order=OrderIn.model_validate(body)).order_id
    orders.update_delivery_status(db, order_id=order_id, status="shipped")
    if failed:
        orders.update_delivery_status(db, order_id=order_id, status="failed")
    frozen.advance(timedelta(days=5))
    assert order_id in orders.flag_late_deliveries(db)
    process(db)
    return member, order_id


def _apologies(db: Session, member: str) -> list[tuple[int, str]]:
    return [
        (award.points, award.rule_id)
        for award in db.scalars(select(Award).where(Award.customer_id == member))
    ]


def test_a_failed_delivery_gives_no_apology_when_only_late_deliveries_are_ticked(
    db: Session,
) -> None:
    member, order_id = _broken_promise(db, on=["delivery_late"], failed=True)
    # then no apology points, though the promise job logged delivery_late for the order
    assert _apologies(db, member) == []
    assert ledger.balance(db, customer_id=member) == 0
    late = db.scalar(select(Event).where(Event.type == "delivery_late"))
    assert late is not None
    assert (late.properties["reason"], late.properties["failed"]) == ("delivery failed", True)
    # and the customer is still told their order will not come as promised
    assert [n.kind for n in orders.notices_for(db, order_id=order_id)] == ["delivery_delay"]


@pytest.mark.parametrize("on", [["order_unfulfilled"], ["delivery_late", "order_unfulfilled"]])
def test_a_failed_delivery_gives_the_unfulfilled_apology_once(db: Session, on: list[str]) -> None:
    member, _ = _broken_promise(db, on=on, failed=True)
    assert _apologies(db, member) == [(150, "sorry")]


def test_a_late_delivery_gives_the_late_apology_and_not_the_unfulfilled_one(db: Session) -> None:
    late_member, _ = _broken_promise(db, on=["delivery_late"], failed=False)
    assert _apologies(db, late_member) == [(150, "sorry")]
    late = db.scalar(select(Event).where(Event.type == "delivery_late"))
    assert late is not None
    assert late.properties["failed"] is False


def test_a_late_delivery_gives_nothing_when_only_unfulfilled_orders_are_ticked(
    db: Session,
) -> None:
    member, _ = _broken_promise(db, on=["order_unfulfilled"], failed=False)
    assert _apologies(db, member) == []
