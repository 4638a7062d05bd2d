"""Test helpers for campaigns' planning: customers with consent and a place, stores, segments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from rapport.campaigns.models import Segment
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.platform import clock

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def make_customer(db: Session, *, consents: dict[str, bool] | None = None, **fields: Any) -> str:
    """A real customer profile with these consent choices; returns its customer id."""
    number = next(_numbers)
    record = customers.create_customer(
        db,
        customer=CustomerIn(
            external_id=f"PLAN-{number}",
            email=f"plan{number}@example.com",
            first_name="Plan",
            last_name=f"Number{number}",
            consents=consents if consents is not None else {"marketing_email": True},
            **fields,
        ),
    )
    return record.customer_id


def make_segment(
    db: Session, *, name: str = "Everyone", definition: dict[str, Any] | None = None
) -> int:
    """A stored segment row (the segments part validates definitions; this one is raw)."""
    now = clock.now()
    segment = Segment(
        name=name,
        definition=definition or {"match": "all", "conditions": []},
        created_at=now,
        updated_at=now,
    )
    db.add(segment)
    db.commit()
    return segment.id


def frozen_clock(at: datetime = T0) -> clock.FrozenClock:
    frozen = clock.FrozenClock(at)
    clock.set_clock(frozen)
    return frozen
