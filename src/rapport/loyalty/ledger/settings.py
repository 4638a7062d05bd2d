"""The points program's settings that govern the ledger: how long lots last (expiry months),
what 100 points are worth and in which currency, whether a return may leave a member in debt,
how many goodwill points one customer may be given in a rolling window.
Stored in ``loyalty_program``; defaults until an operator changes them. With them the calendar
arithmetic that dates a lot's expiry (``add_months``)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from rapport.loyalty.models import LoyaltyProgram
from rapport.platform import clock, formatting
from rapport.platform.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Program:
    """The program's settings (defaults until an operator changes them)."""

    name: str = "Rapport Rewards"
    expiry_months: int = 12
    point_value_minor_per_100: int = 100
    currency: str = "EUR"
    allow_debt: bool = True
    # Goodwill points one customer may be given in any ``goodwill_window_days`` days.
    goodwill_window_points: int = 20_000
    goodwill_window_days: int = 30

    def worth_minor(self, points: int) -> int:
        """What ``points`` are worth in minor units of the currency, rounded down."""
        return points * self.point_value_minor_per_100 // 100


def get_program(db: Session) -> Program:
    row = db.get(LoyaltyProgram, 1)
    if row is None:
        return Program()
    return Program(
        name=row.name,
        expiry_months=row.expiry_months,
        point_value_minor_per_100=row.point_value_minor_per_100,
        currency=row.currency,
        allow_debt=row.allow_debt,
        goodwill_window_points=row.goodwill_window_points,
        goodwill_window_days=row.goodwill_window_days,
    )


# The bounds of the goodwill window (a window of 0 points gives no goodwill at all).
GOODWILL_WINDOW_POINTS_MAX = 10_000_000
GOODWILL_WINDOW_DAYS_MAX = 365


def configure_program(
    db: Session,
    *,
    name: str | None = None,
    expiry_months: int | None = None,
    point_value_minor_per_100: int | None = None,
    currency: str | None = None,
    allow_debt: bool | None = None,
    goodwill_window_points: int | None = None,
    goodwill_window_days: int | None = None,
) -> Program:
    """Change the program's settings; what is not given stays as it is. Points already
    earned keep their expiry date: settings never rewrite the past.

    ``currency`` is the shop's: order amounts are earned on as they are, never converted,
    and the admin pages show money in it, so changing it relabels amounts (a tier at 500.00
    stays at 500.00) rather than converting them."""
    changed_currency = currency is not None and currency != get_program(db).currency
    if changed_currency and currency not in formatting.currencies():
        raise InvalidInput(
            f"currency: {currency!r} is not the ISO 4217 code of a currency in use, such as "
            "EUR, GBP or USD",
            field="currency",
        )
    if expiry_months is not None and not 1 <= expiry_months <= 120:
        raise InvalidInput("expiry_months must be between 1 and 120", field="expiry_months")
    if point_value_minor_per_100 is not None and point_value_minor_per_100 < 0:
        raise InvalidInput(
            "point_value_minor_per_100 cannot be negative", field="point_value_minor_per_100"
        )
    if goodwill_window_points is not None and not (
        0 <= goodwill_window_points <= GOODWILL_WINDOW_POINTS_MAX
    ):
        raise InvalidInput(
            f"goodwill_window_points must be between 0 and {GOODWILL_WINDOW_POINTS_MAX:,}",
            field="goodwill_window_points",
        )
    if (
        goodwill_window_days is not None
        and not 1 <= goodwill_window_days <= GOODWILL_WINDOW_DAYS_MAX
    ):
        raise InvalidInput(
            f"goodwill_window_days must be between 1 and {GOODWILL_WINDOW_DAYS_MAX}",
            field="goodwill_window_days",
        )
    row = db.get(LoyaltyProgram, 1)
    if row is None:
        defaults = Program()
        row = LoyaltyProgram(
            id=1,
            name=defaults.name,
            expiry_months=defaults.expiry_months,
            point_value_minor_per_100=defaults.point_value_minor_per_100,
            currency=defaults.currency,
            allow_debt=defaults.allow_debt,
            goodwill_window_points=defaults.goodwill_window_points,
            goodwill_window_days=defaults.goodwill_window_days,
            updated_at=clock.now(),
        )
        db.add(row)
    if name is not None:
        row.name = name
    if expiry_months is not None:
        row.expiry_months = expiry_months
    if point_value_minor_per_100 is not None:
        row.point_value_minor_per_100 = point_value_minor_per_100
    if currency is not None:
        row.currency = currency
    if allow_debt is not None:
        row.allow_debt = allow_debt
    if goodwill_window_points is not None:
        row.goodwill_window_points = goodwill_window_points
    if goodwill_window_days is not None:
        row.goodwill_window_days = goodwill_window_days
    row.updated_at = clock.now()
    db.commit()
    return get_program(db)


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus whole calendar months; the 31st becomes the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)
