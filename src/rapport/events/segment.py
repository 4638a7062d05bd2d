"""Segment tracking-API compatibility: Segment (and RudderStack) messages as Rapport events.

Shops instrumented with a Segment SDK point its host at Rapport and send the write key (a
Rapport key with the ``ingest`` scope) as before. Each message becomes one event:

- ``messageId`` → ``event_id`` (a digest of the message when absent, so retries still match),
  ``userId`` → the sender's customer id, ``anonymousId`` → ``anonymous_id``;
- ``timestamp``, else ``originalTimestamp``, corrected for the device's clock by ``sentAt``
  (the message's, else its batch's; ``receivedAt - (sentAt - stamp)``): ``originalTimestamp``
  always, ``timestamp`` when ``sentAt`` is ahead of the time received (the device's clock runs
  fast); else the time received → ``occurred_at``;
- ``track`` "Product Viewed" → ``product_viewed`` (snake_case of the event name; "Application
  Opened" → ``app_opened``, "Products Searched" → ``searched``), ``page`` → ``page_viewed``,
  ``screen`` → ``screen_viewed``, ``identify`` → ``identified`` with ``{"traits": …}`` (its
  ``traits`` and ``context.traits`` together, checked by ``ingest.trait_errors``), ``alias`` →
  ``aliased`` with ``{"previous_id": …}``, ``group`` → ``grouped`` with ``{"group_id": …,
  "traits": …}``;
- ``context`` is kept, with Rapport's normalised ``device`` (the device type) and ``location``
  (``{lat, lon}``); Segment's own objects for those two move to ``context.segment``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from rapport.events.ingest import (
    PUBLIC_SEGMENT_SOURCE,
    ItemError,
    Loc,
    checked_time,
    fact_shape_errors,
    invalid,
    parse_time,
    pydantic_errors,
    reserved_type_error,
    trait_errors,
    user_id_error,
    verified_person,
)
from rapport.events.schemas import CHANNELS, EVENT_TYPE_PATTERN
from rapport.events.tracking_store import NewEvent

Kind = Literal["track", "identify", "page", "screen", "alias", "group"]
KINDS: frozenset[str] = frozenset(("track", "identify", "page", "screen", "alias", "group"))

# The ``source`` of a Segment message's event: whether its sender's e-commerce events become
# orders and returns (``ApiKey.orders_from_tracking``; the orders domain reads only "segment").
SOURCE = "segment"
SOURCE_WITHOUT_ORDERS = "segment-no-orders"

# Service refusals name fields as POST /v1/events does; these are their Segment names.
SEGMENT_NAMES = {
    "event_id": "messageId",
    "customer_id": "userId",
    "anonymous_id": "anonymousId",
    "occurred_at": "timestamp",
    "properties.traits": "traits",  # and what is nested in it (traits.email, traits.a.0)
}

# Segment's spec names for events Rapport has its own type for, and for "Order Cancelled",
# which would otherwise take the name of Rapport's own fact (``order_cancelled``, logged when an
# order is cancelled): the shop's message is stored as ``tracked_order_cancelled`` and the
# ``orders.tracked`` processor turns it into that fact.
TYPE_ALIASES = {
    "application_opened": "app_opened",
    "products_searched": "searched",
    "order_cancelled": "tracked_order_cancelled",
}
_TYPE_RE = re.compile(EVENT_TYPE_PATTERN)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_MOBILE_SYSTEMS = frozenset(("ios", "android", "ipados", "tvos", "watchos"))

# Fields Rapport does not read are ignored; those it reads have their JSON types (an id is a
# string or an integer, never a boolean).
_LENIENT = ConfigDict(extra="ignore", str_strip_whitespace=True, strict=True)


def _id_as_text(value: Any) -> Any:
    """An id sent as an integer is its digits; anything but text or an integer is refused,
    as one error at the field (a union's branches would each name themselves)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise PydanticCustomError("identifier_type", "An id is text or an integer")


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=100),
    BeforeValidator(_id_as_text),  # runs first: the length is the text's
    WithJsonSchema(
        {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 100}, {"type": "integer"}]}
    ),
]
Text = Annotated[str, Field(max_length=200)]
SegmentTime = Annotated[str, Field(max_length=40, json_schema_extra={"format": "date-time"})]


@with_config(_LENIENT)
class SegmentMessage(TypedDict, total=False):
    """The fields of a Segment message that Rapport reads; other fields are ignored."""

    type: str
    messageId: Annotated[str, Field(min_length=1, max_length=100)]
    userId: Identifier | None
    anonymousId: Identifier | None
    timestamp: SegmentTime | None
    originalTimestamp: SegmentTime | None
    sentAt: SegmentTime | None
    event: Annotated[str, Field(min_length=1, max_length=200)]
    name: Text | None
    category: Text | None
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    previousId: Identifier | None
    groupId: Identifier | None


@with_config(_LENIENT)
class SegmentBatch(TypedDict, total=False):
    """``POST /v1/batch``: messages with their ``type``, and optional shared ``context`` and
    ``sentAt``. ``writeKey`` is the key when no key header is sent (analytics.js), never
    stored."""

    batch: Annotated[list[SegmentMessage], Field(max_length=1000)]
    sentAt: SegmentTime | None
    context: dict[str, Any] | None


MESSAGE_ADAPTER: TypeAdapter[SegmentMessage] = TypeAdapter(SegmentMessage)


def event_type(name: str) -> str | None:
    """The Rapport type for a track call's event name, or ``None`` when it has none."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    snake = _NOT_WORD.sub("_", _CAMEL_HUMP.sub("_", ascii_name.strip()).lower()).strip("_")
    if snake[:1].isdigit():
        snake = f"event_{snake}"
    snake = TYPE_ALIASES.get(snake, snake)
    return snake if _TYPE_RE.match(snake) else None


_ENVELOPE_TIME: TypeAdapter[str | None] = TypeAdapter(
    Annotated[SegmentTime | None, Field()], config=_LENIENT
)


def batch_envelope(payload: dict[str, Any]) -> tuple[datetime | None, dict[str, Any] | None]:
    """The batch envelope's ``sentAt`` and shared ``context``, checked as a single call's
    are: a bad one is a 422 naming it (``sentAt``, ``context.page.url``), and nothing of the
    batch is stored, where a message of its own would be refused alone."""
    value = payload.get("sentAt")
    sent_at: datetime | None = None
    try:
        text = _ENVELOPE_TIME.validate_python(value)
    except ValidationError as failure:
        loc, message, code = pydantic_errors(failure)[0]
        raise invalid(("sentAt", *loc), message, code) from None
    if text:
        parsed = parse_time(text, field="sentAt", naive_is_utc=True)
        if isinstance(parsed, tuple):
            raise invalid(*parsed)
        sent_at = parsed
    context = payload.get("context")
    if context is not None and not isinstance(context, dict):
        raise invalid(("context",), "Input should be a valid dictionary", "dict_type")
    nul = nul_at(context, ("context",))
    if nul is not None:
        raise invalid(nul, NUL_MESSAGE, "nul_character")
    return sent_at, context


def to_event(
    raw: Any,
    *,
    kind: str | None,
    received_at: datetime,
    sent_at: datetime | None = None,
    shared_context: dict[str, Any] | None = None,
    source: str = SOURCE,
) -> NewEvent | list[ItemError]:
    """One Segment message as a Rapport event, or the errors that prevent it. ``kind`` is the
    endpoint's call type; ``None`` (``/v1/batch``) takes it from the message's ``type``."""
    if not isinstance(raw, dict):
        return [((), "Each message must be a JSON object", "model_type")]
    try:
        message = MESSAGE_ADAPTER.validate_python(raw)
    except ValidationError as failure:
        return pydantic_errors(failure)
    # PostgreSQL stores no NUL character in text or JSONB: refused on every database, named
    # where the sender put it (``userId``, ``traits.plan``), in every field Rapport keeps.
    nul = nul_at(message)
    if nul is not None:
        return [(nul, NUL_MESSAGE, "nul_character")]
    kind = kind or message.get("type")
    if kind not in KINDS:
        return [(("type",), "type must be one of: " + ", ".join(sorted(KINDS)), "enum")]
    user_id = _identifier(message.get("userId"))
    anonymous_id = _identifier(message.get("anonymousId"))
    if user_id is None and anonymous_id is None:
        return [(("userId",), "A message needs userId or anonymousId", "person_missing")]
    unusable = user_id_error(user_id, anonymous_id, ("userId",))
    if unusable is not None:
        return [unusable]

    found = _type_and_properties(kind, message)
    if isinstance(found, list):
        return found
    type_, properties = found
    context = dict(shared_context or {})
    context.update(message.get("context") or {})
    traits_found = _traits(kind, message, context, properties)
    if traits_found:
        return traits_found
    normalised = _context(kind, context, properties)
    if isinstance(normalised, tuple):
        return [normalised]
    occurred_at = _occurred_at(message, received_at=received_at, sent_at=sent_at)
    if isinstance(occurred_at, tuple):
        return [occurred_at]

    event: NewEvent = {
        "event_id": message.get("messageId") or _message_digest(kind, raw),
        "type": type_,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "channel": _channel(kind, context),
        "occurred_at": occurred_at,
        "properties": properties,
        "context": normalised,
        "source": source,
    }
    # An ingest-only key's user id counts only when verified (RAPPORT_IDENTITY_SECRET).
    return verified_person(event) if source == PUBLIC_SEGMENT_SOURCE else event


# Segment Consent Management's consent object (``context.consent.categoryPreferences``, on
# every message its consent wrapper sends: ``{"Analytics": false, "Advertising": true}``) read
# as Rapport's purposes. Categories are the ids a shop gave them in Segment, compared
# ignoring case, spaces, '_' and '-': Segment's documented examples, the usual names, and
# OneTrust's standard groups (C0002 performance, C0003 functional). Others (Advertising,
# Marketing, Targeting and C0004: which ad pixels may run, not whether the person wants the
# shop's newsletter, an opt-in of its own; DataSharing, C0001 strictly necessary, a shop's
# own) name no Rapport purpose and are ignored.
MARKETING_PURPOSES = ("marketing_email", "marketing_push")
CONSENT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "analytics": ("analytics",),
    "performance": ("analytics",),
    "c0002": ("analytics",),
    "functional": ("personalization",),
    "personalization": ("personalization",),
    "c0003": ("personalization",),
}
# The track call Segment's consent wrappers send when a person changes their choices ("Segment
# Consent Preference Updated"): the only message whose ``true`` grants a purpose.
PREFERENCE_UPDATED = "segment_consent_preference_updated"
# Where such a choice was made, as its consent record says.
CONSENT_SOURCE = "segment-consent"
_CATEGORY_NOISE = re.compile(r"[\s_-]+")


def consent_choices(event: NewEvent) -> list[NewEvent]:
    """The choices a Segment message's consent object makes, as tracked ``consent_changed``
    events (one per purpose, refusals first winning a purpose two categories name), to store
    just before the message: honoured as the same key's "Consent Changed" would be, so a
    refusal of ``analytics`` keeps the message itself out of the log. A ``false`` refuses its
    purposes on any message; a ``true`` grants only on "Segment Consent Preference Updated",
    and never a marketing purpose (an opt-in needs ``PUT /v1/customers/{id}/consents/...`` or
    a tracked "Consent Changed" from a key with the write scope)."""
    consent = (event["context"] or {}).get("consent")
    preferences = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(preferences, dict):
        return []
    grants = event["type"] == PREFERENCE_UPDATED
    said: dict[str, bool] = {}
    for category, value in preferences.items():
        purposes = CONSENT_CATEGORIES.get(_CATEGORY_NOISE.sub("", str(category)).lower(), ())
        for purpose in purposes:
            if value is False:
                said[purpose] = False
            elif value is True and grants and purpose not in MARKETING_PURPOSES:
                said.setdefault(purpose, True)
    return [
        {
            "event_id": _choice_id(event["event_id"], purpose),
            "type": "consent_changed",
            "user_id": event["user_id"],
            "anonymous_id": event["anonymous_id"],
            "channel": event["channel"],
            "occurred_at": event["occurred_at"],
            "properties": {"purpose": purpose, "granted": granted, "source": CONSENT_SOURCE},
            "context": {},
            "source": event["source"],
        }
        for purpose, granted in sorted(said.items())
    ]


def _choice_id(event_id: str, purpose: str) -> str:
    """The id of a message's choice on ``purpose``: a retry of the message makes the same."""
    found = f"{event_id}:consent:{purpose}"
    if len(found) <= 100:
        return found
    digest = hashlib.sha256(f"{event_id}\x00{purpose}".encode()).hexdigest()[:40]
    return f"seg-consent-{purpose}-{digest}"


NUL_MESSAGE = "Text may not contain the NUL character (\\u0000)"


def nul_at(value: Any, loc: Loc = ()) -> Loc | None:
    """Where the first NUL character in ``value`` is (a key holding one names itself, the NUL
    written as ``\\u0000``), or ``None``."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                return (*loc, key.replace("\x00", "\\u0000"))
            found = nul_at(item, (*loc, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_at(item, (*loc, index))
            if found is not None:
                return found
    return None


def _identifier(value: str | int | None) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _type_and_properties(
    kind: str, message: SegmentMessage
) -> tuple[str, dict[str, Any]] | list[ItemError]:
    properties = dict(message.get("properties") or {})
    if kind == "track":
        name = message.get("event")
        if not name:
            return [(("event",), "A track call needs the event's name", "missing")]
        type_ = event_type(name)
        reserved = reserved_type_error(type_, ("event",)) if type_ is not None else None
        if reserved is not None:
            return [reserved]
        if type_ is None:
            return [
                (
                    ("event",),
                    "The event name gives no usable type: use 2 to 60 letters, digits and spaces",
                    "string_pattern_mismatch",
                )
            ]
        misshapen = fact_shape_errors(type_, properties, ("properties",))
        if misshapen:
            return misshapen
        return type_, properties
    if kind in {"page", "screen"}:
        for key in ("name", "category"):
            value = message.get(key)
            if value:
                properties.setdefault(key, value)
        return ("page_viewed" if kind == "page" else "screen_viewed"), properties
    if kind == "identify":
        return "identified", {"traits": dict(message.get("traits") or {})}
    if kind == "alias":
        previous_id = _identifier(message.get("previousId"))
        if previous_id is None:
            return [(("previousId",), "An alias call needs previousId", "missing")]
        return "aliased", {"previous_id": previous_id}
    group_id = _identifier(message.get("groupId"))
    if group_id is None:
        return [(("groupId",), "A group call needs groupId", "missing")]
    return "grouped", {"group_id": group_id, "traits": dict(message.get("traits") or {})}


def _traits(
    kind: str, message: SegmentMessage, context: dict[str, Any], properties: dict[str, Any]
) -> list[ItemError]:
    """Check the traits a message carries. An identify call's traits may come in ``traits``
    and in ``context.traits`` (RudderStack's SDKs send them there): both become the event's
    ``traits``, the top-level ones winning. Any other call keeps ``context.traits`` where it
    is, checked by the same rules; a group call's ``traits`` are the group's."""
    errors: list[ItemError] = []
    in_context = context.get("traits")
    if in_context is not None:
        errors += trait_errors(in_context, ("context", "traits"), identifying=kind == "identify")
    if kind == "group":
        errors += trait_errors(properties["traits"], ("traits",), known=False)
    if kind == "identify":
        errors += trait_errors(properties["traits"], ("traits",))
        if not errors and isinstance(in_context, dict):
            properties["traits"] = {**in_context, **properties["traits"]}
            context.pop("traits")
            errors += trait_errors(properties["traits"], ("traits",))
    return errors


def _context(
    kind: str, context: dict[str, Any], properties: dict[str, Any]
) -> dict[str, Any] | ItemError:
    """Segment's context with Rapport's ``device`` and ``location`` shapes."""
    out = dict(context)
    moved: dict[str, Any] = {}
    device = context.get("device")
    if isinstance(device, dict):
        moved["device"] = device
        out.pop("device")
        if isinstance(device.get("type"), str) and device["type"]:
            out["device"] = device["type"][:60]
    location = context.get("location")
    if isinstance(location, dict):
        moved["location"] = location
        out.pop("location")
        if location.get("latitude") is not None or location.get("longitude") is not None:
            coordinates = _coordinates(location)
            if isinstance(coordinates, tuple):
                return coordinates
            out["location"] = coordinates
    if moved:
        out["segment"] = moved
    if kind == "page" and not isinstance(out.get("page"), dict):
        page = {
            key: properties[key]
            for key in ("url", "path", "title", "search", "referrer")
            if isinstance(properties.get(key), str)
        }
        if page:
            out["page"] = page
    return out


def _coordinates(location: dict[str, Any]) -> dict[str, float] | ItemError:
    found: dict[str, float] = {}
    for name, short, limit in (("latitude", "lat", 90), ("longitude", "lon", 180)):
        value = location.get(name)
        loc: Loc = ("context", "location", name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return loc, f"{name} must be a number of degrees", "float_type"
        if not -limit <= value <= limit:
            return loc, f"{name} must be between -{limit} and {limit}", "out_of_range"
        found[short] = float(value)
    return found


def _channel(kind: str, context: dict[str, Any]) -> str:
    stated = context.get("channel")
    if isinstance(stated, str) and stated in CHANNELS:
        return stated
    if kind == "screen" or context.get("app"):
        return "app"
    device, system = context.get("device"), context.get("os")
    device_type = device.get("type") if isinstance(device, dict) else None
    system_name = system.get("name") if isinstance(system, dict) else None
    for value in (device_type, system_name):
        if isinstance(value, str) and value.lower() in _MOBILE_SYSTEMS:
            return "app"
    return "web"


def _occurred_at(
    message: SegmentMessage, *, received_at: datetime, sent_at: datetime | None
) -> datetime | ItemError:
    sent_text = message.get("sentAt")
    sent = parse_time(sent_text, field="sentAt", naive_is_utc=True) if sent_text else sent_at
    if isinstance(sent, tuple):
        return sent  # refused even where unused, as the other times are
    # The device's stamp: ``timestamp`` (the mobile SDKs, analytics.js), else
    # ``originalTimestamp``; without either, the time received.
    stamped_text, field = message.get("timestamp"), "timestamp"
    if stamped_text is None:
        stamped_text, field = message.get("originalTimestamp"), "originalTimestamp"
    if stamped_text is None:
        return received_at
    stamped = parse_time(stamped_text, field=field, naive_is_utc=True)
    if isinstance(stamped, tuple) or sent is None:
        return stamped
    if field == "timestamp" and sent - received_at <= CLOCK_AHEAD:
        # A sentAt not ahead of Rapport's clock is the trip (or a batch resent later with its
        # first sentAt, as the mobile SDKs do): the timestamp is taken as sent, so that events
        # stamped alike keep their order and a queued event keeps its time.
        return stamped
    # The device's clock may be off; the gap between two of its readings is not. As Segment
    # does: timestamp = receivedAt - (sentAt - the device's stamp).
    try:
        corrected = received_at - (sent - stamped)
    except OverflowError:
        corrected = datetime.max.replace(tzinfo=UTC)  # refused below as too far ahead
    return checked_time(corrected, field=field)


# A sentAt later than the time received by more than this says the device's clock runs ahead
# (no trip makes a message arrive before it was sent): its timestamp is corrected by it.
CLOCK_AHEAD = timedelta(seconds=1)


def _message_digest(kind: str, raw: dict[str, Any]) -> str:
    """A stable id for a message sent without ``messageId``: retries of it get the same."""
    stable = {key: value for key, value in raw.items() if key not in {"sentAt", "writeKey"}}
    try:
        encoded = orjson.dumps([kind, stable], option=orjson.OPT_SORT_KEYS)
    except TypeError:
        # orjson refuses integers beyond 64 bits, which JSON allows: the standard encoder
        # writes them, as deterministically, so such a message still gets its one id.
        encoded = json.dumps([kind, stable], sort_keys=True, separators=(",", ":")).encode()
    return "seg-" + hashlib.sha256(encoded).hexdigest()[:40]
