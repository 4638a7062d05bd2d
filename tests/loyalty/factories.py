"""Test helpers for the loyalty ledger: members (real customers), a paid plan and a fixed
clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.loyalty.membership import plans as membership_plans
from rapport.platform import clock

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def make_customer(
    db: Session,
    *,
    email: str | None = None,
    consents: dict[str, bool] | None = None,
    external_id: str | None = None,
) -> str:
    """A real customer profile (with these consent choices and the shop's number);
    returns its customer id."""
    number = next(_numbers)
    record = customers.create_customer(
        db,
        customer=CustomerIn(
            external_id=external_id or f"LOY-{number}",
            email=email or f"member{number}@example.com",
            first_name="Member",
            last_name=f"Number{number}",
            consents=consents or {},
        ),
    )
    return record.customer_id


def frozen_clock(at: datetime = T0) -> clock.FrozenClock:
    frozen = clock.FrozenClock(at)
    clock.set_clock(frozen)
    return frozen


def triple_plan(db: Session) -> str:
    """A monthly plan 'triple' (Triple, €9.99) whose members earn points x3; its id."""
    membership_plans.save_plan(
        db,
        plan_id="triple",
        name="Triple",
        fee_minor=999,
        currency="EUR",
        period="month",
        points_multiplier=3.0,
    )
    return "triple"
