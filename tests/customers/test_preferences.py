"""Birthdays on SQLite and PostgreSQL: a 29 February birthday gets the birthday bonus on
28 February in a year without a 29th, once a year."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.loyalty import service as ledger
from rapport.loyalty.earning import birthdays
from tests.loyalty.factories import frozen_clock, make_customer


def _born(db: Session, birthday: str) -> str:
    member = make_customer(db)
    customers.set_preferences(db, customer_id=member, values={"birthday": birthday}, source="app")
    return member


def _day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 9, tzinfo=UTC)


def test_a_29_february_birthday_falls_on_28_february_without_a_29th(db: Session) -> None:
    # given members born on 29 and on 28 February
    clock = frozen_clock(_day(2027, 2, 27))
    leapling, born_28th = _born(db, "2000-02-29"), _born(db, "1999-02-28")
    given: list[tuple[str, int]] = []
    # when the daily bonus runs on 28 February 2027 (twice), 1 March 2027, 28 February 2028
    # and 29 February 2028
    for year, month, day in [(2027, 2, 28), (2027, 2, 28), (2027, 3, 1), (2028, 2, 28)]:
        clock.advance(_day(year, month, day) - clock.at)
        given.append((f"{year}-{month:02d}-{day:02d}", birthdays.give_birthday_points(db)))
        if (year, month, day) == (2027, 3, 1):
            after_2027 = ledger.balance(db, customer_id=leapling)
    clock.advance(_day(2028, 2, 29) - clock.at)
    assert customers.birthdays_on(db, month=2, day=28) == [born_28th]
    given.append(("2028-02-29", birthdays.give_birthday_points(db)))
    # then in 2027 both earn on the 28th, once; in 2028 each on their own day
    assert given == [
        ("2027-02-28", 200),
        ("2027-02-28", 0),
        ("2027-03-01", 0),
        ("2028-02-28", 100),
        ("2028-02-29", 100),
    ]
    assert after_2027 == 100
    assert ledger.balance(db, customer_id=leapling) == 200
    assert ledger.balance(db, customer_id=born_28th) == 200
    assert customers.birthdays_on(db, month=2, day=28, year=2027) == sorted([leapling, born_28th])
