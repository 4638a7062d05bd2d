"""The birthday bonus is a personal use of what a customer told us: it asks the consent gate,
so a profile holding an erased person's identity gets nothing while a live one is paid."""

from __future__ import annotations

from datetime import UTC, datetime

from rapport.customers import service as customers
from rapport.customers.models import Identity
from rapport.events.service import suppress_identities
from rapport.loyalty import service as ledger
from rapport.loyalty.earning import birthdays
from rapport.platform.identity import identity_digest
from tests.loyalty.factories import T0, frozen_clock, make_customer


def test_birthday_points_only_for_profiles_the_gate_allows(db) -> None:
    # given two customers born today, one holding (from old data) an erased person's email
    frozen_clock(T0.replace(month=5, day=12))
    member, holder = make_customer(db), make_customer(db)
    for who in (member, holder):
        customers.set_preferences(
            db, customer_id=who, values={"birthday": "1990-05-12"}, source="app"
        )
    db.add(
        Identity(
            customer_id=holder,
            kind="email",
            value="was.erased@example.com",
            is_unique=True,
            source="legacy",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    db.flush()
    suppress_identities(db, digests=[identity_digest("email", "was.erased@example.com")])
    # when the daily birthday job runs
    given = birthdays.give_birthday_points(db)
    # then only the live customer is paid
    assert given == 100
    assert ledger.balance(db, customer_id=member) == 100
    assert ledger.get_member(db, customer_id=holder) is None
