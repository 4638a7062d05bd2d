"""Where a tracking event says its person was, kept only with their consent to ``location``.

A consent is checked at every use, and keeping a person's coordinates in the log is one: an
event's precise location (its ``context.location``, the latitude and longitude of Segment's
own ``context.location``, kept under ``context.segment.location``, a coordinate at the top of
its properties, as a ``location_updated`` call sends them, and one at any depth of its traits)
is stored only where the person it names has granted ``location`` at that moment. Everything
else of the event is stored as sent (a city, a country, the page). A coordinate is a key
named ``lat``, ``lng``, ``lon``, ``long``, ``latitude`` or ``longitude`` in any case
(``Latitude``, ``LNG``): :func:`is_coordinate_key`, the one rule tracking, a withdrawal, a
merge and the migrations strip by.

Who has granted it is the customers domain's to say: it registers a :class:`LocationConsent`
(:func:`location_consent_from`, from its ``tasks.py``, as processors are registered), which
ingestion asks once per batch for the people whose events carry coordinates. A choice made
in the same batch (a tracked ``consent_changed`` for ``location``, from a cookie banner or an
app's permission prompt) counts for the events after it, as the profile processor will apply
it: unless a choice standing already was made later (an app's offline queue flushed late).
Without a lookup registered nobody has granted it, but in the batch itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:  # tracking_store stores what this module leaves of an event
    from rapport.events.tracking_store import NewEvent

LOCATION_PURPOSE = "location"
# The names that hold a coordinate, compared in lower case (Rapport's ``{lat, lon}``,
# Segment's ``{latitude, longitude}``, a map library's ``{lat, lng}`` or ``{lat, long}``).
# A latitude's names and a longitude's, in the order they are read when several are sent.
LATITUDE_KEYS = ("lat", "latitude")
LONGITUDE_KEYS = ("lon", "lng", "long", "longitude")
COORDINATE_KEYS = LATITUDE_KEYS + LONGITUDE_KEYS
_COORDINATE_KEYS = frozenset(COORDINATE_KEYS)
# Event types about a place, not a person: their properties' coordinates are the place's (a
# venue event's ``latitude``/``longitude``, the point a triggered campaign's radius is drawn
# around) and are kept whoever sent them. Their context's are still the sender's.
PLACE_EVENT_TYPES = frozenset({"venue_event"})

# A person as a tracking event names them: (user id, visitor id), either may be None.
TrackedPerson = tuple[str | None, str | None]


class LocationChoice(NamedTuple):
    """A person's standing choice on ``location``, and when it was made."""

    granted: bool
    at: datetime


class LocationConsent(Protocol):
    """The standing choice on each of ``purposes`` (``location``, ``analytics``) of each
    person in ``people`` who made one, by purpose, read in the storing transaction (a few
    queries for the whole batch and every purpose, never one per event); people who made
    none, or are not known, are left out."""

    def __call__(
        self, db: Session, people: Collection[TrackedPerson], purposes: Collection[str]
    ) -> dict[str, dict[TrackedPerson, LocationChoice]]: ...


_lookup: list[LocationConsent] = []


def location_consent_from(lookup: LocationConsent) -> LocationConsent:
    """Register where ingestion reads people's standing choice on ``location`` (the customers
    domain's, from its ``tasks.py``)."""
    _lookup[:] = [lookup]
    return lookup


def _named(document: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of ``document``'s first key of ``names`` (compared as :func:`is_coordinate_key`
    compares them: in any case, around any spaces) that holds one, else ``None``."""
    found = {
        key.strip().lower(): value
        for key, value in reversed(document.items())
        if isinstance(key, str) and value is not None
    }
    return next((found[name] for name in names if name in found), None)


def coordinates(properties: dict[str, Any], context: dict[str, Any]) -> tuple[float, float] | None:
    """The event's coordinates, ``(latitude, longitude)``: its properties', else its
    ``context.location``'s, read under every name :func:`is_coordinate_key` strips (a
    latitude's ``lat`` or ``latitude``, a longitude's ``lon``, ``lng``, ``long`` or
    ``longitude``, in any case); ``None`` when neither holds a pair of numbers in range."""
    for source in (properties, context.get("location") or {}):
        if not isinstance(source, dict):
            continue
        lat = _named(source, LATITUDE_KEYS)
        lon = _named(source, LONGITUDE_KEYS)
        if (
            isinstance(lat, int | float)
            and isinstance(lon, int | float)
            and -90 <= lat <= 90
            and -180 <= lon <= 180
        ):
            return float(lat), float(lon)
    return None


def is_coordinate_key(key: Any) -> bool:
    """Whether a document's key names a coordinate: ``lat``, ``lng``, ``lon``, ``long``,
    ``latitude`` or ``longitude``, in any case, around any spaces."""
    return isinstance(key, str) and key.strip().lower() in _COORDINATE_KEYS


def _holds_coordinate(document: dict[str, Any]) -> bool:
    return any(is_coordinate_key(key) for key in document)


def _without(document: dict[str, Any], keys: Collection[str]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in keys}


def _without_coordinate_keys(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if not is_coordinate_key(key)}


def _deep_pointless(value: Any) -> Any:
    """``value`` (any JSON value) without a coordinate key at any depth: an object or a list
    that held only coordinates goes, one with anything else left stays with the rest, an
    object that was empty as sent stays. A value holding none is returned as it is."""
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            left = _deep_pointless(item)
            if not is_coordinate_key(key) and (left is item or left):
                kept[key] = left
            changed = changed or key not in kept or left is not item
        return kept if changed else value
    if isinstance(value, list):
        lefts = [_deep_pointless(item) for item in value]
        if all(left is item for left, item in zip(lefts, value, strict=True)):
            return value
        return [left for left, item in zip(lefts, value, strict=True) if left is item or left]
    return value


def _located(holder: dict[str, Any]) -> bool:
    """Whether ``holder``'s ``location`` object holds a coordinate."""
    location = holder.get("location")
    return isinstance(location, dict) and _holds_coordinate(location)


def _unlocated(holder: dict[str, Any]) -> dict[str, Any]:
    """``holder`` (a context, or the Segment objects kept in it) without its location's
    coordinates: the location object stays with the rest (a city), or goes when empty."""
    if not _located(holder):
        return holder
    rest = _without_coordinate_keys(holder["location"])
    unlocated = _without(holder, ("location",))
    if rest:
        unlocated["location"] = rest
    return unlocated


def _pointless(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (properties, traits) without its own coordinates and its location's."""
    if _holds_coordinate(document):
        document = _without_coordinate_keys(document)
    return _unlocated(document)


def without_coordinate_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Traits, or the profile attributes they became, without a person's coordinates: every
    key :func:`is_coordinate_key` names, at any depth (``lng``, ``Latitude``,
    ``geo.latitude``, ``address.lat``, a list's objects'); an object left with anything
    else (a city) stays, one left empty goes. As ingestion leaves traits without consent to
    ``location``, a withdrawal and a merge whose choice is no leave attributes.
    ``traits`` holding none is returned as it is."""
    kept: dict[str, Any] = _deep_pointless(traits)
    return kept


def _traitless(holder: dict[str, Any]) -> dict[str, Any]:
    """``holder`` with its ``traits`` (an identify call's, ``context.traits``) without their
    coordinates: a person's coordinates sent as traits would become profile attributes."""
    traits = holder.get("traits")
    if not isinstance(traits, dict):
        return holder
    kept = without_coordinate_traits(traits)
    return holder if kept is traits else {**holder, "traits": kept}


def about_a_place(event_type: Any) -> bool:
    """Whether events of this type say where a place is (a venue), not where a person was.
    ``event_type`` is any JSON value a message sent (an object, a list): only a name is one."""
    return isinstance(event_type, str) and event_type in PLACE_EVENT_TYPES


def has_coordinates(event: NewEvent) -> bool:
    """Whether the event holds a coordinate anywhere :func:`without_coordinates` removes one."""
    properties, context = event["properties"], event["context"]
    left = bare(event["type"], properties, context)
    return left[0] is not properties or left[1] is not context


def without_coordinates(event: NewEvent) -> NewEvent:
    """A copy of the event without its person's coordinates; the rest (a city, a country,
    a venue's point) stays."""
    copy = event.copy()
    copy["properties"], copy["context"] = bare(event["type"], event["properties"], event["context"])
    return copy


def bare(
    event_type: Any, properties: dict[str, Any], context: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event's properties and context without its person's coordinates (a document that
    holds none is returned as it is, not copied): the properties' own and their
    ``location``'s and ``traits``' (but an event about a place keeps its properties), the
    context's ``location``, ``segment.location`` and ``traits``."""
    if not about_a_place(event_type):
        properties = _traitless(_pointless(properties))
    context = _traitless(_unlocated(context))
    segment = context.get("segment")
    if isinstance(segment, dict) and _located(segment):
        kept = _unlocated(segment)
        context = {**context, "segment": kept} if kept else _without(context, ("segment",))
    return properties, context


def message_without_coordinates(message: Any) -> Any:
    """A tracking message as sent (any JSON value) without its person's coordinates: its
    ``properties``' and ``context``'s as :func:`bare` leaves them, and its ``traits``' (an
    identify call's); for keeping one that was refused, whose person's choice is never
    asked (a refused message is no one's event)."""
    if not isinstance(message, dict):
        return message
    documents = [message.get(name) for name in ("properties", "context")]
    sent = [document if isinstance(document, dict) else {} for document in documents]
    unlocated = bare(message.get("type"), sent[0], sent[1])
    kept = _traitless(message)
    if unlocated[0] is sent[0] and unlocated[1] is sent[1]:
        return kept
    kept = dict(kept)
    for name, document, left in zip(("properties", "context"), documents, unlocated, strict=True):
        if isinstance(document, dict):
            kept[name] = left
    return kept


def _person(event: NewEvent) -> TrackedPerson:
    return event["user_id"], event["anonymous_id"]


def _ids(event: NewEvent) -> list[tuple[str, str]]:
    found = []
    if event["user_id"] is not None:
        found.append(("user", event["user_id"]))
    if event["anonymous_id"] is not None:
        found.append(("visitor", event["anonymous_id"]))
    return found


def _choice(event: NewEvent, purpose: str) -> bool | None:
    """The choice on ``purpose`` a tracked ``consent_changed`` makes, else ``None``."""
    if event["type"] != "consent_changed":
        return None
    properties = event["properties"]
    granted = properties.get("granted")
    if properties.get("purpose") != purpose or not isinstance(granted, bool):
        return None
    return granted


def choices_when_stored(
    db: Session, events: Mapping[int, NewEvent], wanted: Mapping[str, Iterable[int]]
) -> dict[str, dict[int, LocationChoice]]:
    """Of ``events`` (a batch's events to store, by index in log order), for each purpose of
    ``wanted`` (``location``: the events holding coordinates), the choice on it standing for
    the person of each event at its indices when that event is stored: the one stored (read
    once for the whole batch and every purpose), or one a tracked ``consent_changed`` earlier
    in the batch made, unless a standing one was made later (an app's offline queue flushed
    late). Left out: events whose person made none. Without a lookup registered nobody made
    one but in the batch itself."""
    asked = {purpose: {i for i in found if i in events} for purpose, found in wanted.items()}
    deciding = {
        purpose: {i for i, event in events.items() if _choice(event, purpose) is not None}
        for purpose in asked
    }
    people = {_person(events[i]) for purpose in asked for i in asked[purpose] | deciding[purpose]}
    standing = _lookup[0](db, people, list(asked)) if _lookup and people else {}
    return {
        purpose: _current(events, indices, deciding[purpose], standing.get(purpose, {}), purpose)
        for purpose, indices in asked.items()
    }


def _current(
    events: Mapping[int, NewEvent],
    wanted: set[int],
    deciding: set[int],
    standing: dict[TrackedPerson, LocationChoice],
    purpose: str,
) -> dict[int, LocationChoice]:
    if not deciding:
        found = ((index, standing.get(_person(events[index]))) for index in wanted)
        return {index: choice for index, choice in found if choice is not None}
    said: dict[tuple[str, str], LocationChoice] = {}  # choices made in this batch, by id

    def current(event: NewEvent) -> LocationChoice | None:
        made = [said[key] for key in _ids(event) if key in said]
        return max(made, key=lambda c: c.at) if made else standing.get(_person(event))

    found_now: dict[int, LocationChoice] = {}
    for index in sorted(wanted | deciding):
        event = events[index]
        choice = _choice(event, purpose)
        if choice is not None:
            before = current(event)
            if before is None or event["occurred_at"] >= before.at:
                for key in _ids(event):
                    said[key] = LocationChoice(choice, event["occurred_at"])
        if index in wanted:
            now = current(event)
            if now is not None:
                found_now[index] = now
    return found_now
