"""Preferences: what customers tell about themselves (a birthday, a favourite store, ...)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import String, cast, delete, or_, select
from sqlalchemy.orm import Session

from rapport.customers.events import PreferenceShared
from rapport.customers.models import (
    Preference,
)
from rapport.customers.profiles import require_customer
from rapport.events import service as events
from rapport.platform import clock


def set_preferences(
    db: Session,
    *,
    customer_id: str,
    values: dict[str, Any],
    source: str,
    channel: str = "web",
    cleared: Iterable[str] = (),
) -> list[Preference]:
    """Store what the customer told us about themselves, and forget the ``cleared`` fields
    (no event). Each field shared logs ``preference_shared``, with ``first_time`` when it was
    not held (the loyalty engine rewards it once per field, ever)."""
    customer = require_customer(db, customer_id)
    now = clock.now()
    forget = set(cleared) - set(values)
    if forget:
        db.execute(
            delete(Preference).where(
                Preference.customer_id == customer.customer_id, Preference.field.in_(forget)
            )
        )
    stored = []
    for name, value in values.items():
        preference = db.get(Preference, (customer.customer_id, name))
        first_time = preference is None
        if preference is None:
            preference = Preference(customer_id=customer.customer_id, field=name)
            db.add(preference)
        preference.value = value
        preference.source = source
        preference.updated_at = now
        stored.append(preference)
        events.append_event(
            db,
            PreferenceShared(field=name, first_time=first_time, source=source),
            channel=channel,
            customer_id=customer.customer_id,
        )
    db.commit()
    return stored


def get_preferences(db: Session, *, customer_id: str) -> list[Preference]:
    return list(
        db.scalars(
            select(Preference)
            .where(Preference.customer_id == customer_id)
            .order_by(Preference.field)
        )
    )


# A birthday tracking sent (any key, one a shop's pages carry for anyone to read) counts for
# the birthday bonus only once it has been held this long: "my birthday is today" from a
# page earns nothing today.
TRACKED_BIRTHDAY_WAIT = timedelta(days=30)


def birthdays_on(db: Session, *, month: int, day: int, year: int | None = None) -> list[str]:
    """Customers whose shared birthday (a ``YYYY-MM-DD`` preference) falls on this day of
    ``year`` (default this year); one from tracking (source ``event:…``) only once held
    ``TRACKED_BIRTHDAY_WAIT``. A 29 February birthday falls on 28 February in a year without
    one, so it comes once every year."""
    # The JSON text of the value is the quoted date on both databases ('"1990-05-12"').
    as_text = cast(Preference.value, String)
    settled = clock.now() - TRACKED_BIRTHDAY_WAIT
    days = [f"{month:02d}-{day:02d}"]
    if (month, day) == (2, 28) and not calendar.isleap(year or clock.now().year):
        days.append("02-29")
    return list(
        db.scalars(
            select(Preference.customer_id)
            .where(
                Preference.field == "birthday",
                or_(*(as_text.like(f'%-{on}"') for on in days)),
                or_(~Preference.source.startswith("event:"), Preference.updated_at <= settled),
            )
            .order_by(Preference.customer_id)
        )
    )
