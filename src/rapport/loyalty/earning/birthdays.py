"""The daily birthday bonus: customers whose shared birthday is today earn the birthday rule's
points once a year (only live profiles the consent gate allows)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty.earning.awards import earn_on
from rapport.loyalty.program.rules import Fact
from rapport.platform import clock


def give_birthday_points(db: Session, *, today: datetime | None = None) -> int:
    """The daily birthday bonus for customers whose shared birthday is today; once a year."""
    at = today or clock.now()
    given = 0
    born_today = customers.birthdays_on(db, month=at.month, day=at.day, year=at.year)
    # A personal use of what they told us: only live profiles the gate allows.
    allowed = customers.contactable(db, customer_ids=born_today, purpose=customers.SERVICE)
    for customer_id in sorted(set(allowed.values())):
        fact = Fact(kind="birthday", customer_id=customer_id, occurred_at=at)
        given += sum(d.points for d in earn_on(db, fact, None) if d.fired)
    db.commit()
    return given
