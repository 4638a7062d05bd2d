"""Where a tracking event says its person was, kept only with their consent to ``location``.

A consent is checked at every use, and keeping a person's coordinates in the log is one: an
event's precise location (its ``context.location``, the latitude and longitude of Segment's
own ``context.location``, kept under ``context.segment.location``, and a ``lat``, ``lon``,
``latitude`` or ``longitude`` at the top of its properties, as a ``location_updated`` call
sends them) is stored only where the person it names has granted ``location`` at that
moment. Everything else of the event is stored as sent (a city, a country, the page).

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
# The top-level properties that hold a coordinate, and the names a location object gives
# them (Rapport's ``{lat, lon}``, Segment's ``{latitude, longitude}``).
COORDINATE_KEYS = ("lat", "lon", "latitude", "longitude")
_COORDINATE_KEYS = frozenset(COORDINATE_KEYS)

# A person as a tracking event names them: (user id, visitor id), either may be None.
TrackedPerson = tuple[str | None, str | None]


class LocationChoice(NamedTuple):
    """A person's standing choice on ``location``, and when it was made."""

    granted: bool
    at: datetime


class LocationConsent(Protocol):
    """The standing choice on ``location`` of each person in ``people`` who made one, read
    in the storing transaction (a few queries for the whole batch, never one per event);
    people who made none, or are not known, are left out (no choice means no)."""

    def __call__(
        self, db: Session, people: Collection[TrackedPerson]
    ) -> dict[TrackedPerson, LocationChoice]: ...


_lookup: list[LocationConsent] = []


def location_consent_from(lookup: LocationConsent) -> LocationConsent:
    """Register where ingestion reads people's standing choice on ``location`` (the customers
    domain's, from its ``tasks.py``)."""
    _lookup[:] = [lookup]
    return lookup


def coordinates(properties: dict[str, Any], context: dict[str, Any]) -> tuple[float, float] | None:
    """The event's coordinates, ``(latitude, longitude)``: its properties' ``lat``/``lon``
    (or ``latitude``/``longitude``), else its ``context.location``'s; ``None`` when neither
    holds a pair of numbers in range."""
    for source in (properties, context.get("location") or {}):
        if not isinstance(source, dict):
            continue
        lat = source.get("lat", source.get("latitude"))
        lon = source.get("lon", source.get("longitude"))
        if (
            isinstance(lat, int | float)
            and isinstance(lon, int | float)
            and -90 <= lat <= 90
            and -180 <= lon <= 180
        ):
            return float(lat), float(lon)
    return None


def _holds_coordinate(document: dict[str, Any]) -> bool:
    return any(key in document for key in COORDINATE_KEYS)


def _segment_location(context: dict[str, Any]) -> dict[str, Any] | None:
    segment = context.get("segment")
    location = segment.get("location") if isinstance(segment, dict) else None
    return location if isinstance(location, dict) else None


def has_coordinates(event: NewEvent) -> bool:
    """Whether the event holds a coordinate anywhere :func:`without_coordinates` removes one."""
    properties, context = event["properties"], event["context"]
    if "location" in context or _holds_coordinate(properties):
        return True
    kept = _segment_location(context) if "segment" in context else None
    return kept is not None and _holds_coordinate(kept)


def without_coordinates(event: NewEvent) -> NewEvent:
    """A copy of the event without its coordinates; the rest (a city, a country) stays."""
    copy = event.copy()
    copy["properties"], copy["context"] = bare(event["properties"], event["context"])
    return copy


def bare(
    properties: dict[str, Any], context: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event's properties and context without its coordinates (a document that holds
    none is returned as it is, not copied)."""
    if _holds_coordinate(properties):
        properties = {k: v for k, v in properties.items() if k not in _COORDINATE_KEYS}
    kept = _segment_location(context) if "segment" in context else None
    kept_coordinates = kept is not None and _holds_coordinate(kept)
    if "location" in context or kept_coordinates:
        context = {k: v for k, v in context.items() if k != "location"}
    if kept is not None and kept_coordinates:
        rest = {k: v for k, v in kept.items() if k not in _COORDINATE_KEYS}
        segment = {k: v for k, v in context["segment"].items() if k != "location"}
        if rest:
            segment["location"] = rest
        if segment:
            context["segment"] = segment
        else:
            del context["segment"]
    return properties, context


def _person(event: NewEvent) -> TrackedPerson:
    return event["user_id"], event["anonymous_id"]


def _ids(event: NewEvent) -> list[tuple[str, str]]:
    found = []
    if event["user_id"] is not None:
        found.append(("user", event["user_id"]))
    if event["anonymous_id"] is not None:
        found.append(("visitor", event["anonymous_id"]))
    return found


def _choice(event: NewEvent) -> bool | None:
    """The ``location`` choice a tracked ``consent_changed`` makes, else ``None``."""
    if event["type"] != "consent_changed":
        return None
    properties = event["properties"]
    granted = properties.get("granted")
    if properties.get("purpose") != LOCATION_PURPOSE or not isinstance(granted, bool):
        return None
    return granted


def consented_coordinates(
    db: Session, events: Mapping[int, NewEvent], located: Iterable[int]
) -> list[int]:
    """Of ``events`` (a batch's events to store, by index in log order), those at ``located``
    (holding coordinates) whose person has granted ``location`` when they are stored: the
    ones stored with their coordinates. One lookup for the whole batch."""
    wanted = {index for index in located if index in events}
    deciding = {index for index, event in events.items() if _choice(event) is not None}
    people = {_person(events[index]) for index in wanted | deciding}
    standing = _lookup[0](db, people) if _lookup and people else {}
    if not deciding and not any(choice.granted for choice in standing.values()):
        return []  # nobody has granted it, nor does in this batch
    said: dict[tuple[str, str], LocationChoice] = {}  # choices made in this batch, by id

    def current(event: NewEvent) -> LocationChoice | None:
        made = [said[key] for key in _ids(event) if key in said]
        return max(made, key=lambda c: c.at) if made else standing.get(_person(event))

    granted: list[int] = []
    for index in sorted(wanted | deciding):
        event = events[index]
        choice = _choice(event)
        if choice is not None:
            before = current(event)
            if before is None or event["occurred_at"] >= before.at:
                for key in _ids(event):
                    said[key] = LocationChoice(choice, event["occurred_at"])
        if index in wanted:
            now = current(event)
            if now is not None and now.granted:
                granted.append(index)
    return granted
