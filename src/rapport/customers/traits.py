"""Trait arithmetic for the profile processor: each event updates a customer's traits in
place (never a recomputation from the whole history), and merges add traits together.

Late events are safe: first/last times take the min/max, counts add, so arrival order does
not matter for the result.

The traits a shop's tracking says about someone (an identify call's ``traits``, any call's
``context.traits``) are read here too: known ones become profile fields (:func:`profile_fields`),
every other one is a custom trait kept in ``Customer.attributes`` (:func:`custom_traits`,
:func:`kept_attributes`). Ingestion has checked their bounds (``events.ingest.trait_errors``);
these functions check again what they keep, since the log is read as it is.
"""

from __future__ import annotations

import bisect
import re
from datetime import datetime
from typing import Any

from rapport.customers.models import Customer, CustomerTraits
from rapport.events.service import LoggedEvent, coordinates
from rapport.platform import clock
from rapport.platform.identity import birthday_date, canonical_email, is_email, known_time_zone

# A purchase says more about taste than a look: favourite categories weigh them so.
PURCHASE_WEIGHT = 5
VIEW_WEIGHT = 1
FAVOURITES = 3


# Traits that are profile fields or identities, under the names Segment's spec and Rapport's
# own events give them; everything else a shop sends is a custom trait.
PROFILE_TRAITS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName"),
    "last_name": ("last_name", "lastName"),
    "email": ("email",),
    "phone": ("phone",),
    "time_zone": ("timezone",),  # Segment's reserved trait: an IANA zone
}
KNOWN_TRAITS = frozenset(
    {"email", "phone", "loyalty_card", "firstName", "first_name", "lastName", "last_name"}
    | {"name", "birthday", "timezone"}
)
# A profile keeps at most this many custom traits (ingestion allows as many per message).
MAX_CUSTOM_TRAITS = 50
_TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,59}$")
_MAX_TEXT = 500
_COLUMN_LENGTHS = {"first_name": 100, "last_name": 100, "home_city": 120}


def profile_fields(traits: dict[str, Any]) -> dict[str, str]:
    """The profile columns that traits fill: names (``name`` split when first and last are
    not given), email, phone, the time zone (``timezone``, an IANA zone) and the home city
    from ``address.city``."""
    profile: dict[str, str] = {}
    for name, keys in PROFILE_TRAITS.items():
        for key in keys:
            value = traits.get(key)
            if isinstance(value, str) and value.strip():
                # An email that is not an address never replaces the contact email (ingestion
                # refuses it; events logged before it did are read as they are).
                if name == "email" and not is_email(value):
                    break
                # Nor does a zone zoneinfo does not know (ingestion refuses it in identify).
                if name == "time_zone" and known_time_zone(value) is None:
                    break
                # kept as its identity is (lower-cased), as every door keeps an email
                profile[name] = canonical_email(value) if name == "email" else value.strip()
                break
    full = traits.get("name")
    if isinstance(full, str) and full.strip() and not {"first_name", "last_name"} & set(profile):
        first, _, last = full.strip().partition(" ")
        profile["first_name"] = first
        if last.strip():
            profile["last_name"] = last.strip()
    address = traits.get("address")
    city = address.get("city") if isinstance(address, dict) else None
    if isinstance(city, str) and city.strip():
        profile["home_city"] = city.strip()
    return {
        name: value[: _COLUMN_LENGTHS[name]] if name in _COLUMN_LENGTHS else value
        for name, value in profile.items()
    }


def birthday(traits: dict[str, Any]) -> str | None:
    """The ``birthday`` trait as ``YYYY-MM-DD`` (a date, or the date of an ISO moment), or
    ``None`` when there is none or it is not a real past date (ingestion refuses those)."""
    day = birthday_date(traits.get("birthday"), today=clock.now().date())
    return day.isoformat() if day is not None else None


def _keepable(value: Any, *, nested: bool = False) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= _MAX_TEXT
    if nested or not isinstance(value, list | dict) or len(value) > 20:
        return False
    items = value.values() if isinstance(value, dict) else value
    return all(_keepable(item, nested=True) for item in items)


def custom_traits(
    traits: dict[str, Any], *, known: frozenset[str] = KNOWN_TRAITS
) -> dict[str, Any]:
    """The custom traits among ``traits`` (those not ``known``), typed as sent."""
    return {
        name: value
        for name, value in traits.items()
        if name not in known and _TRAIT_NAME.match(name) and _keepable(value)
    }


def kept_attributes(attributes: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with ``custom`` traits set: a new value replaces the old, and a name
    the profile does not have yet is added while it holds fewer than ``MAX_CUSTOM_TRAITS``."""
    kept = dict(attributes)
    for name, value in custom.items():
        if name in kept or len(kept) < MAX_CUSTOM_TRAITS:
            kept[name] = value
    return kept


# The profile fields a person's identify traits (or a command) set, each kept as of when said.
SAID_FIELDS = ("email", "phone", "first_name", "last_name", "home_city", "time_zone")


def attribute_field(name: str) -> str:
    """The key a custom trait's time is kept under in ``Customer.field_times``."""
    return f"attributes.{name}"


def as_of(customer: Customer, field: str) -> datetime | None:
    """When the value ``field`` holds was said, where recorded."""
    said = (customer.field_times or {}).get(field)
    return clock.as_utc(datetime.fromisoformat(said)) if isinstance(said, str) else None


def is_current(customer: Customer, field: str, at: datetime) -> bool:
    """Whether a value said at ``at`` may replace the one ``field`` holds: one said at the same
    time or later may (the later arrival wins a tie), one said before it may not, so a late
    event (an app's offline queue) never overwrites newer data."""
    held = as_of(customer, field)
    return held is None or clock.as_utc(at) >= held


def stamp(customer: Customer, fields: list[str], at: datetime, *, public: bool = False) -> None:
    """Record that the values of ``fields`` were said at ``at``: by the public tracking key
    (``public``: an event sent with an ingest-only key) or by a trusted source, whose word
    the public key may then not replace (:func:`public_may_say`)."""
    if not fields:
        return
    said = clock.as_utc(at).isoformat()
    times = dict(customer.field_times or {})  # a new dict: JSON columns track assignment
    times.update(dict.fromkeys(fields, said))
    for field in fields:
        if public:
            times[PUBLIC_MARK + field] = said
        else:
            times.pop(PUBLIC_MARK + field, None)
    customer.field_times = times


# What the public tracking key (the ingest-only key in a shop's pages, readable by anyone,
# with customer numbers easy to guess) said is marked in ``Customer.field_times`` under
# ``public:<field>``, as of the time it said it: a field it may change again (a visitor
# changing their own newsletter language). A trusted source's word (a key that may write, an
# import, sign-up, the admin) clears the mark or stamps the field anew, so the mark no
# longer matches and the public key may not replace that value.
PUBLIC_MARK = "public:"
# Marks that a profile was made by the public key and no trusted source has written it since
# (sign-up adopts such a profile: ``signup.create_customer``).
PUBLIC_PROFILE = PUBLIC_MARK + "profile"


def said_by_public_key(customer: Customer, field: str) -> bool:
    """Whether the value ``field`` holds was said last by the public key."""
    times = customer.field_times or {}
    said = times.get(field)
    return said is not None and times.get(PUBLIC_MARK + field) == said


def public_may_say(customer: Customer, field: str, held: Any) -> bool:
    """The one rule for what the public key may set on a profile that exists: a field that is
    empty (``held`` None or empty) and that no trusted source said, or one whose value the
    public key said itself; never a value a trusted source set, a ``null`` that emptied it
    included (a value said: its time is in ``Customer.field_times``)."""
    if said_by_public_key(customer, field):
        return True
    return (held is None or held in ("", {}, [])) and field not in (customer.field_times or {})


def held_value(customer: Customer, field: str) -> Any:
    """The value a field of :data:`SAID_FIELDS`, ``group_id`` or ``attributes.<name>`` holds."""
    if field.startswith("attributes."):
        return (customer.attributes or {}).get(field.removeprefix("attributes."))
    return getattr(customer, field, None)


def only_public(customer: Customer) -> bool:
    """Whether only the public key ever wrote the profile (no trusted source since it made it)."""
    return PUBLIC_PROFILE in (customer.field_times or {})


def trusted_write(customer: Customer) -> None:
    """A trusted source wrote the profile: no longer one only the public key knows."""
    if only_public(customer):
        customer.field_times = {
            k: v for k, v in (customer.field_times or {}).items() if k != PUBLIC_PROFILE
        }


def _bump(counts: dict[str, int] | None, key: str, by: int) -> dict[str, int]:
    # JSON columns track assignment, not in-place change: always return a new dict.
    updated = dict(counts or {})
    updated[key] = updated.get(key, 0) + by
    return updated


# The key of an amount whose event named no currency (ISO 4217's "no currency").
NO_CURRENCY = "XXX"


def _spend(traits: CustomerTraits, currency: str | None, by: int) -> None:
    """Add ``by`` to the customer's spend in ``currency``: each currency is counted on its
    own (there is no exchange rate), and ``spend_minor`` is the one in ``traits.currency``."""
    traits.spend_by_currency = _bump(traits.spend_by_currency, currency or NO_CURRENCY, by)
    traits.spend_minor = (traits.spend_by_currency or {}).get(traits.currency or NO_CURRENCY, 0)


def spend_in(traits: CustomerTraits, currency: str) -> int:
    """The customer's spend, net of returns and cancellations, in ``currency``'s minor units:
    their orders in other currencies never count."""
    return int((traits.spend_by_currency or {}).get(currency, 0))


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _location(event: LoggedEvent) -> tuple[float, float] | None:
    # Where ingestion reads coordinates, which it stores only with consent to location.
    return coordinates(event.properties or {}, event.context or {})


def _store_id(event: LoggedEvent) -> str | None:
    value = (event.properties or {}).get("store_id") or (event.context or {}).get("store_id")
    return str(value) if value else None


def apply_event(traits: CustomerTraits, event: LoggedEvent, *, location_allowed: bool) -> None:
    """Fold one event into a customer's traits."""
    at = event.occurred_at
    traits.first_seen_at = _earliest(traits.first_seen_at, at)
    traits.last_seen_at = _latest(traits.last_seen_at, at)
    traits.event_count = (traits.event_count or 0) + 1
    if event.channel not in (traits.channels or []):
        traits.channels = sorted({*(traits.channels or []), event.channel})
    properties = event.properties or {}
    if event.type == "order_placed":
        traits.order_count = (traits.order_count or 0) + 1
        traits.currency = properties.get("currency") or traits.currency
        _spend(traits, traits.currency, int(properties.get("total_minor", 0)))
        traits.first_order_at = _earliest(traits.first_order_at, at)
        traits.last_order_at = _latest(traits.last_order_at, at)
        for line in properties.get("lines", []):
            if isinstance(line, dict) and line.get("category"):
                traits.category_counts = _bump(
                    traits.category_counts, str(line["category"]), PURCHASE_WEIGHT
                )
    elif event.type == "order_returned":
        # in the order's currency; a return logged before returns said it: the latest order's
        currency = properties.get("currency") or traits.currency
        _spend(traits, currency, -int(properties.get("refund_minor", 0)))
    elif event.type == "order_cancelled":  # an order called off is no longer one they made
        traits.order_count = max((traits.order_count or 0) - 1, 0)
        currency = properties.get("currency") or traits.currency
        _spend(traits, currency, -int(properties.get("total_minor", 0)))
    elif event.type == "product_viewed" and properties.get("category"):
        traits.category_counts = _bump(
            traits.category_counts, str(properties["category"]), VIEW_WEIGHT
        )
    store_id = _store_id(event)
    if store_id and event.type in ("store_visited", "order_placed") and store_id != "web":
        traits.store_counts = _bump(traits.store_counts, store_id, 1)
    location = _location(event)
    if (
        location is not None
        and location_allowed
        and (traits.last_location_at is None or at >= traits.last_location_at)
    ):
        traits.last_latitude, traits.last_longitude = location
        traits.last_location_at = at


def merge_traits(target: CustomerTraits, source: CustomerTraits) -> None:
    """Add a merged profile's traits to the surviving profile's."""
    for name in ("first_seen_at", "first_order_at"):
        value = getattr(source, name)
        if value is not None:
            setattr(target, name, _earliest(getattr(target, name), value))
    for name in ("last_seen_at", "last_order_at"):
        value = getattr(source, name)
        if value is not None:
            setattr(target, name, _latest(getattr(target, name), value))
    for name in ("event_count", "order_count"):
        setattr(target, name, (getattr(target, name) or 0) + (getattr(source, name) or 0))
    target.channels = sorted({*(target.channels or []), *(source.channels or [])})
    target.currency = target.currency or source.currency
    for name in ("category_counts", "store_counts", "spend_by_currency"):
        combined = dict(getattr(target, name) or {})
        for key, count in (getattr(source, name) or {}).items():
            combined[key] = combined.get(key, 0) + count
        setattr(target, name, combined)
    target.spend_minor = spend_in(target, target.currency or NO_CURRENCY)
    if source.last_location_at is not None and (
        target.last_location_at is None or source.last_location_at > target.last_location_at
    ):
        target.last_latitude, target.last_longitude = source.last_latitude, source.last_longitude
        target.last_location_at = source.last_location_at


def _top(counts: dict[str, int] | None, n: int) -> list[str]:
    return [key for key, _ in sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def spend_by_currency(traits: CustomerTraits) -> dict[str, int]:
    """The customer's net spend in each currency they bought in, by currency code: amounts in
    different currencies are never added (there is no exchange rate in Rapport)."""
    return {
        currency: int(minor)
        for currency, minor in sorted((traits.spend_by_currency or {}).items())
        if currency != NO_CURRENCY or minor
    }


def trait_summary(traits: CustomerTraits, *, now: datetime) -> dict[str, Any]:
    """Traits as the 360 view shows them, with the derived ones (average order value, days
    since the last order, favourite categories, preferred store). ``spend_minor`` is the spend
    in ``currency`` (the latest order's) and ``spend_by_currency`` every currency's; the
    average order value is given only while every order was in one currency."""
    orders = traits.order_count or 0
    spends = spend_by_currency(traits)
    return {
        "first_seen_at": traits.first_seen_at,
        "last_seen_at": traits.last_seen_at,
        "channels": list(traits.channels or []),
        "event_count": traits.event_count or 0,
        "order_count": orders,
        "spend_minor": traits.spend_minor or 0,
        "currency": traits.currency,
        "spend_by_currency": spends,
        "average_order_minor": (traits.spend_minor or 0) // orders
        if orders and len(spends) <= 1
        else None,
        "first_order_at": traits.first_order_at,
        "last_order_at": traits.last_order_at,
        "days_since_last_order": (now - traits.last_order_at).days
        if traits.last_order_at
        else None,
        "favourite_categories": _top(traits.category_counts, FAVOURITES),
        "preferred_store_id": next(iter(_top(traits.store_counts, 1)), None),
        "last_location": (
            {
                "lat": traits.last_latitude,
                "lon": traits.last_longitude,
                "at": traits.last_location_at,
            }
            if traits.last_location_at
            else None
        ),
    }


def quintile_boundaries(values: list[float]) -> list[float]:
    """The four cut points that split ``values`` into five equal groups."""
    ordered = sorted(values)
    if not ordered:
        return []
    return [ordered[min(len(ordered) - 1, (len(ordered) * q) // 5)] for q in (1, 2, 3, 4)]


def monetary_metric(currency: str) -> str:
    """The RFM boundaries of spend in ``currency`` (``monetary.EUR``)."""
    return f"monetary.{currency}"


def _score(value: float, boundaries: list[float]) -> int:
    return bisect.bisect_right(boundaries, value) + 1


def rfm_scores(
    traits: CustomerTraits, boundaries: dict[str, list[float]], *, now: datetime, currency: str
) -> dict[str, int] | None:
    """Recency, frequency and monetary scores 1-5 (5 best) against the population's quintiles;
    ``None`` before the first order or before boundaries have been computed. Monetary is the
    spend in ``currency`` (the shop's) against everyone's spend in it."""
    if not traits.order_count or traits.last_order_at is None or not boundaries:
        return None
    recency_days = (now - traits.last_order_at).total_seconds() / 86400
    return {
        "recency": 6 - _score(recency_days, boundaries.get("recency_days", [])),
        "frequency": _score(float(traits.order_count), boundaries.get("frequency", [])),
        "monetary": _score(
            float(spend_in(traits, currency)), boundaries.get(monetary_metric(currency), [])
        ),
    }
