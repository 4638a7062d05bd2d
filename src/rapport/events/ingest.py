"""Tracking-event ingestion on the wire: request bytes to validated events, and outcomes back to
answers. Shared by ``POST /v1/events``, ``/v1/events/batch`` and the Segment-compatible API.

The hot endpoints read the raw body themselves instead of letting FastAPI build models: one
orjson parse, one pydantic ``TypeAdapter`` pass over the whole batch (a second pass over the
valid items only when some are invalid, so that each error is reported at its index), plain
dicts all the way to the database.

Bodies may come compressed (``Content-Encoding: gzip`` or ``deflate``, as RudderStack's SDKs
send them by default): ``platform.bodies`` undoes that and parses the JSON, as for every
endpoint, with the same refusals.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Response
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from rapport.events.dead_letters import Rejection
from rapport.events.schemas import MAX_BATCH_EVENTS, EventBatchIn, EventIn
from rapport.events.tracking_store import PUBLIC_API_SOURCE as PUBLIC_API_SOURCE
from rapport.events.tracking_store import PUBLIC_SEGMENT_SOURCE as PUBLIC_SEGMENT_SOURCE
from rapport.events.tracking_store import PUBLIC_SOURCES as PUBLIC_SOURCES
from rapport.events.tracking_store import NewEvent, Outcome, Refusal
from rapport.events.tracking_store import from_public_key as from_public_key
from rapport.platform import clock
from rapport.platform.bodies import parse_body
from rapport.platform.domain_events import event_class
from rapport.platform.errors import (
    UNKNOWN_FIELD,
    InvalidInput,
    field_error,
    pinpointed,
)
from rapport.platform.identity import (
    EARLIEST_BIRTHDAY,
    birthday_date,
    customer_number_problem,
    identity_problem,
    is_email,
    time_zone_problem,
)
from rapport.platform.settings import get_settings

# Where in an event a problem is (relative to the event), what is wrong, and its code.
Loc = tuple[str | int, ...]

# What Rapport's own commands log (an order placed, a review verified, points earned, a late
# delivery) is acted on by loyalty and campaigns: a tracking key, public in a shop's pages, may
# not assert it. Two types are both a command's and a site's: identifying a visitor, and a
# choice made in a cookie banner.
TRACKING_MAY_SEND = frozenset({"identified", "consent_changed"})


def reserved_type_error(event_type: str, loc: Loc) -> ItemError | None:
    """The error for a tracking event whose type is one of Rapport's own facts, else ``None``:
    it says how that fact is recorded (the endpoint, or what Rapport logs it from)."""
    fact = event_class(event_type)
    if fact is None or event_type in TRACKING_MAY_SEND:
        return None
    how = RECORDED_BY.get(event_type, f"record it through Rapport's {fact.domain} API")
    return (
        loc,
        f"'{event_type}' is a fact Rapport logs itself when it happens: {how};"
        " or give your event another name",
        "reserved_type",
    )


# A tracked type that is also one of Rapport's facts must have the shape its command logs
# (the fact's schema, ``event.<type>`` in the API reference), so that what is stored is a
# choice Rapport can apply: a ``consent_changed`` names a known purpose, a JSON true or false
# and at most 60 characters of source (the same types as PUT /v1/customers/{id}/consents/…).
# The source may be left out: the profile processor then records ``event:<channel>``.
_SHAPED_BY_FACT = frozenset({"consent_changed"})
_DEFAULT_SOURCE = "event"


def fact_shape_errors(event_type: str, properties: Any, loc: Loc) -> list[ItemError]:
    """What is wrong with a tracked event's ``properties`` (at ``loc``) against the fact of
    the same type (empty when nothing, or for a type not shaped by one). Other properties
    are kept as sent."""
    fact = event_class(event_type) if event_type in _SHAPED_BY_FACT else None
    if fact is None or not isinstance(properties, dict):
        return []
    shaped = {name: properties[name] for name in fact.model_fields if name in properties}
    shaped.setdefault("source", _DEFAULT_SOURCE)
    try:
        fact.model_validate(shaped)
    except ValidationError as failure:
        errors = pydantic_errors(failure)
        return [((*loc, *where), message, code) for where, message, code in errors]
    return []


# The purposes a shop's pages and apps may grant with their public, ingest-only key: what a
# cookie banner or an app's permission asks. A marketing opt-in (marketing_email,
# marketing_push) lets Rapport send messages: anyone can read a public key, and with it name
# any customer number, so such a grant needs a key with the write scope (the shop's server,
# after its double opt-in) or PUT /v1/customers/{id}/consents/{purpose}. Withdrawals are
# always taken: saying no can harm nobody.
PUBLIC_GRANTS = frozenset({"analytics", "personalization", "location"})


def may_grant_marketing(scopes: Iterable[str]) -> bool:
    """Whether a key's tracked ``consent_changed`` may grant a marketing purpose."""
    return not {"write", "admin"}.isdisjoint(scopes)


def grant_scope_error(event: NewEvent, *, may_grant: bool) -> ItemError | None:
    """The refusal of a tracked marketing grant from a key that may not make one (see
    :data:`PUBLIC_GRANTS`), else ``None``."""
    if may_grant or event["type"] != "consent_changed":
        return None
    properties = event["properties"]
    purpose = properties.get("purpose")
    if properties.get("granted") is not True or purpose in PUBLIC_GRANTS:
        return None
    return (
        ("properties", "granted"),
        f"A grant of {purpose} needs a key with the write scope (send it from the shop's"
        " server, or PUT /v1/customers/{customer_id}/consents/" + str(purpose) + "); this"
        " key may only withdraw it, or grant " + ", ".join(sorted(PUBLIC_GRANTS)),
        "grant_needs_write_scope",
    )


# Channels only the shop's own systems speak for: a till's sale, a call-centre agent's note.
# A key that may only ingest is the one a shop's pages and apps carry, readable by anyone, so
# its events could otherwise claim to come from the till (a store visit, the preferred store);
# claiming one needs a key that may also write (a till or the shop's server, as tracked orders
# and marketing grants do: may_grant_marketing).
STAFF_CHANNELS = frozenset({"store", "call_center"})


def channel_scope_error(event: NewEvent, *, trusted: bool) -> ItemError | None:
    """The refusal of an event claiming a staff channel (:data:`STAFF_CHANNELS`) from a key
    without the write scope, else ``None``; named where it was claimed (a Segment message's
    ``context.channel``, an event's ``channel``)."""
    channel = event["channel"]
    if trusted or channel not in STAFF_CHANNELS:
        return None
    claimed = event["context"].get("channel") == channel
    return (
        ("context", "channel") if claimed else ("channel",),
        f"The {channel} channel needs a key with the write scope (the till's or the shop's"
        " server's); this key, which a shop's pages and apps carry, may send web, app or email",
        "channel_needs_write_scope",
    )


def trust_error(event: NewEvent, *, trusted: bool) -> ItemError | None:
    """Why a key without the write scope (``trusted`` False) may not send this event: a
    marketing grant (:func:`grant_scope_error`), a staff channel
    (:func:`channel_scope_error`) or an unverified user id with no visitor to keep the event
    for (:func:`user_hash_error`); ``None`` when it may."""
    return (
        grant_scope_error(event, may_grant=trusted)
        or channel_scope_error(event, trusted=trusted)
        or user_hash_error(event, trusted=trusted)
    )


def _user_hash_ok(event: NewEvent) -> bool:
    """Whether the event's user id is verified, where ``RAPPORT_IDENTITY_SECRET`` asks for it:
    ``context.userHash`` is the hex HMAC-SHA256 of the user id under that secret (computed by
    the shop's server, which knows who signed in). Without the setting every user id is."""
    secret = get_settings().identity_secret
    user_id = event["user_id"]
    if secret is None or user_id is None:
        return True
    said = (event["context"] or {}).get("userHash")
    expected = hmac.new(
        secret.get_secret_value().encode(), user_id.encode(), hashlib.sha256
    ).hexdigest()
    return isinstance(said, str) and hmac.compare_digest(said.strip().lower(), expected)


def user_hash_error(event: NewEvent, *, trusted: bool) -> ItemError | None:
    """An ingest-only key's event whose user id is not verified (:func:`_user_hash_ok`) and
    that names no visitor either: nobody is left to keep it for."""
    if trusted or event["anonymous_id"] is not None or _user_hash_ok(event):
        return None
    # Named as the route names them: POST /v1/events' customer_id and anonymous_id.
    native = event["source"] in ("api", PUBLIC_API_SOURCE)
    user, anonymous = ("customer_id", "anonymous_id") if native else ("userId", "anonymousId")
    return (
        ("context", "userHash"),
        f"This key's {user} needs context.userHash, the HMAC-SHA256 of the {user} under "
        f"RAPPORT_IDENTITY_SECRET (send it from your server's page), or send {anonymous} only",
        "user_hash_mismatch",
    )


def verified_person(event: NewEvent) -> NewEvent:
    """An ingest-only key's ``event`` with its user id ignored where it is not verified
    (:func:`_user_hash_ok`): the event is its visitor's (anonymous id) only, so a page
    cannot link a visitor to someone else's customer number."""
    if event["anonymous_id"] is not None and not _user_hash_ok(event):
        event["user_id"] = None
    return event


# The ``source`` of an ingest-only key's event (PUBLIC_API_SOURCE, PUBLIC_SEGMENT_SOURCE) is
# defined beside the store, which de-duplicates a public key's event ids apart from the
# trusted keys' (tracking_store).


def marked_public(event: NewEvent, *, trusted: bool) -> NewEvent:
    """``event`` as stored for its key: an ingest-only key's (``trusted`` False) is marked with
    a public source (:data:`PUBLIC_SOURCES`; a Segment message's source says so already) and
    its person verified (:func:`verified_person`)."""
    if trusted:
        return event
    if event["source"] == "api":
        event["source"] = PUBLIC_API_SOURCE
    return verified_person(event)


def _status(status: str) -> str:
    return f'record it through POST /v1/orders/{{order_id}}/status (status "{status}")'


_LOGGED_BY_RAPPORT = "Rapport logs it itself"
# How each of Rapport's own facts is recorded, for the refusal's "what to do": the endpoint
# whose command logs it, or what Rapport logs it from (a test holds every type here).
RECORDED_BY: dict[str, str] = {
    # orders
    "order_placed": "record the order through POST /v1/orders (or send Segment's Order Completed)",
    "order_returned": "record the return through POST /v1/orders/{order_id}/returns"
    " (or send Segment's Order Refunded)",
    "order_collected": "record the pick-up through POST /v1/orders/{order_id}/pickup",
    "order_cancelled": (
        "cancel the order through POST /v1/orders/{order_id}/cancel (or send Segment's Order"
        " Cancelled)"
    ),
    "order_packed": _status("packed"),
    "order_shipped": _status("shipped"),
    "order_out_for_delivery": _status("out_for_delivery"),
    "order_delivered": _status("delivered"),
    "delivery_delayed": _status("delayed"),
    "delivery_failed": _status("failed"),
    "order_ready_for_pickup": "record the order through POST /v1/orders with fulfilment"
    f" pickup_in_store; {_LOGGED_BY_RAPPORT} when a pick-up order is placed",
    "order_not_collected": f"{_LOGGED_BY_RAPPORT} when a pick-up order passes its collection"
    " deadline (collect_by) uncollected",
    "delivery_late": "send the order's delivery updates to POST /v1/orders/{order_id}/status;"
    f" {_LOGGED_BY_RAPPORT} once a delivery is past its promised date",
    # loyalty
    "points_earned": "record it through POST /v1/loyalty/members/{customer_id}/earn"
    " (orders earn their points by themselves)",
    "points_redeemed": "record it through POST /v1/loyalty/members/{customer_id}/redeem"
    " (or .../rewards/{reward_id}/redeem for a reward)",
    "points_adjusted": "record it through POST /v1/loyalty/members/{customer_id}/adjust",
    "points_reversed": "record it through POST /v1/loyalty/members/{customer_id}/reverse"
    " (a return takes back its points by itself)",
    "points_refunded": "record the return through POST /v1/orders/{order_id}/returns;"
    f" {_LOGGED_BY_RAPPORT} when points paid for returned goods come back",
    "points_expired": f"{_LOGGED_BY_RAPPORT} when points reach the program's expiry",
    "tier_changed": f"{_LOGGED_BY_RAPPORT} when a tier review moves a member",
    "loyalty_program_changed": "record it through PUT /v1/loyalty/program/{kind}",
    "membership_joined": "record it through POST /v1/loyalty/members/{customer_id}/membership",
    "membership_cancelled": "record it through"
    " POST /v1/loyalty/members/{customer_id}/membership/cancel",
    "membership_resumed": "record it through"
    " POST /v1/loyalty/members/{customer_id}/membership/resume",
    "membership_renewed": f"{_LOGGED_BY_RAPPORT} at the end of each paid membership period",
    "membership_lapsed": f"{_LOGGED_BY_RAPPORT} at the end of each paid membership period",
    "referral_recorded": "record it through POST /v1/loyalty/referrals",
    "announcement_published": "record it through POST /v1/loyalty/announcements",
    # feedback
    "review_submitted": "record it through POST /v1/feedback/reviews",
    "review_published": "record it through POST /v1/feedback/reviews/{review_id}/moderation",
    "review_verified": f"{_LOGGED_BY_RAPPORT} when a review of a product the customer bought is"
    " published (POST /v1/feedback/reviews, then .../reviews/{review_id}/moderation)",
    "survey_invited": "record it through POST /v1/feedback/surveys/{survey_id}/invitations",
    "survey_answered": "record it through POST /v1/feedback/invitations/{invitation_id}/answer"
    " (or POST /v1/feedback/responses)",
    "ticket_opened": "record it through POST /v1/feedback/tickets",
    "ticket_resolved": "record it through POST /v1/feedback/tickets/{ticket_id}/resolve",
    "ticket_breached": f"{_LOGGED_BY_RAPPORT} when a ticket misses its SLA deadline",
    "score_below_target": f"{_LOGGED_BY_RAPPORT} when a score falls below its target"
    " (PUT /v1/feedback/targets)",
    # customers
    "customer_created": "record it through POST /v1/customers (or an identify call)",
    "customer_erased": "record it through POST /v1/customers/{customer_id}/erase",
    "customers_merged": "record it through POST /v1/customers/merge (or an alias call)",
    "preference_shared": "record it through PUT /v1/customers/{customer_id}/preferences",
}


ItemError = tuple[Loc, str, str]

# Earlier than this is a device whose clock was reset, not a late event.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)

EVENT_ADAPTER: TypeAdapter[EventIn] = TypeAdapter(EventIn)
EVENTS_ADAPTER: TypeAdapter[list[EventIn]] = TypeAdapter(list[EventIn])
BATCH_ADAPTER: TypeAdapter[EventBatchIn] = TypeAdapter(EventBatchIn)

_NUL_ESCAPE = b"\\u0000"


def json_response(content: Any, *, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


# --- Traits ---------------------------------------------------------------------------------
# What an identify call (or ``context.traits``, or a group call) may say about someone. Known
# traits become profile fields and identities (the profile processor maps them); every other
# trait is a custom trait kept on the profile as it is, within these bounds.
TRAIT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,59}$")
MAX_CUSTOM_TRAITS = 50
MAX_TRAIT_TEXT = 500
MAX_TRAIT_ITEMS = 20
# Known traits and the longest text each may be (the profile columns they fill).
KNOWN_TRAITS: dict[str, int] = {
    "email": 320,
    "phone": 40,
    "loyalty_card": 320,
    "firstName": 100,
    "first_name": 100,
    "lastName": 100,
    "last_name": 100,
    "name": 200,
    "birthday": 40,
    "timezone": 50,
}
_INT64 = 2**63
_TRAIT_KINDS = "text, a number, true/false, null, a list of those or an object of those"


def trait_errors(
    traits: Any, loc: Loc, *, known: bool = True, identifying: bool = True
) -> list[ItemError]:
    """What is wrong with a traits object at ``loc`` (empty when nothing). ``known=False``
    counts every trait as custom (a group's traits). A ``birthday`` must be a real date; an
    ``email`` must be an address and a ``phone`` a number in international form where they
    would become identities and contact details (``identifying``: an identify call's traits,
    not another call's ``context.traits``)."""
    if not isinstance(traits, dict):
        return [(loc, "Traits must be a JSON object", "dict_type")]
    errors: list[ItemError] = []
    custom = 0
    for name, value in traits.items():
        if not TRAIT_NAME.match(name):
            errors.append(
                (
                    (*loc, name),
                    "A trait name is 1 to 60 letters, digits and underscores, starting with a "
                    "letter; rename this trait",
                    "trait_name",
                )
            )
            continue
        longest = KNOWN_TRAITS.get(name) if known else None
        if longest is None:
            custom += 1
        problem = _trait_value_error(value, longest or MAX_TRAIT_TEXT, nested=False)
        if problem is None and longest is not None:
            problem = _known_trait_error(name, value, identifying=identifying)
        if problem is not None:
            errors.append(((*loc, name), *problem))
    if custom > MAX_CUSTOM_TRAITS:
        errors.append(
            (
                loc,
                f"Send at most {MAX_CUSTOM_TRAITS} custom traits (this one has {custom})",
                "too_many_traits",
            )
        )
    return errors


def _known_trait_error(name: str, value: Any, *, identifying: bool) -> tuple[str, str] | None:
    """What the profile processor could not keep of a known trait it would use (``null`` and
    empty text are passed over as it passes them over)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if name == "birthday" and birthday_date(value, today=clock.now().date()) is None:
        return (
            "A birthday is a real date, YYYY-MM-DD (or an ISO moment), from "
            f"{EARLIEST_BIRTHDAY.isoformat()} to today",
            "date_parsing",
        )
    if name == "timezone" and identifying and (problem := time_zone_problem(value)):
        return (
            f"{problem}; it would become the person's time zone, their quiet hours' night: "
            "send it so, or leave the trait out",
            "time_zone",
        )
    if name == "email" and identifying and not (isinstance(value, str) and is_email(value)):
        return (
            "Not an email address (name@example.com); it would become the person's email "
            "identity and contact address: send their address, or leave the trait out",
            "string_pattern_mismatch",
        )
    if name == "phone" and identifying:
        problem = (
            identity_problem("phone", value)
            if isinstance(value, str)
            else "Send the phone number as text, in international form (+33 6 12 34 56 78)"
        )
        if problem is not None:
            return (
                f"{problem}; it would become the person's phone identity and contact phone: "
                "send it so, or leave the trait out",
                "string_pattern_mismatch",
            )
    return None


def _trait_value_error(value: Any, longest: int, *, nested: bool) -> tuple[str, str] | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        fits = -_INT64 <= value < _INT64
        return None if fits else ("The number is too large", "number_too_large")
    if isinstance(value, float):
        return None if math.isfinite(value) else ("The number must be finite", "finite_number")
    if isinstance(value, str):
        if len(value) > longest:
            return f"Text traits are at most {longest} characters", "string_too_long"
        return None
    if nested or not isinstance(value, list | dict):
        return f"A trait is {_TRAIT_KINDS} (one level)", "trait_type"
    if len(value) > MAX_TRAIT_ITEMS:
        return f"A trait holds at most {MAX_TRAIT_ITEMS} items", "too_long"
    if isinstance(value, dict):
        for key in value:
            if not TRAIT_NAME.match(key):
                return f"{key!r} is not a trait name (1 to 60 letters, digits, _)", "trait_name"
    for item in value.values() if isinstance(value, dict) else value:
        problem = _trait_value_error(item, MAX_TRAIT_TEXT, nested=True)
        if problem is not None:
            return problem
    return None


def invalid(loc: Loc, message: str, code: str) -> InvalidInput:
    """A 422 problem for one field of the body."""
    error = field_error(("body", *loc), message, code)
    return InvalidInput(f"{error['field']}: {message}", field=error["field"], errors=[error])


def batch_items(payload: Any, *, key: str, allowed: Iterable[str] | None = None) -> list[Any]:
    """The list under ``key`` in a batch body, after checking the envelope. ``allowed`` lists
    the other top-level keys accepted; ``None`` accepts any (Segment's envelope)."""
    if not isinstance(payload, dict):
        raise invalid((), f"The body must be a JSON object with a '{key}' list", "model_type")
    if allowed is not None:
        for name in payload:
            if name != key and name not in allowed:
                raise invalid((name,), UNKNOWN_FIELD, "extra_forbidden")
    if key not in payload:
        raise invalid((key,), "Field required", "missing")
    items = payload[key]
    if not isinstance(items, list):
        raise invalid((key,), "Input should be a valid list", "list_type")
    if len(items) > MAX_BATCH_EVENTS:
        raise invalid(
            (key,),
            f"Send at most {MAX_BATCH_EVENTS} events per request (this one has {len(items)})",
            "too_long",
        )
    return items


def pydantic_errors(error: ValidationError) -> list[tuple[Loc, str, str]]:
    return [_item_error(detail) for detail in error.errors(include_url=False, include_input=False)]


def _item_error(detail: ErrorDetails) -> ItemError:
    loc, message = pinpointed(detail)
    if detail["type"] == "string_too_long" and loc and loc[-1] in _ID_FIELDS:
        message = f"{message}: send a shorter id for the event, such as a UUID (36 characters)"
    return loc, message, detail["type"]


# An event's own id: POST /v1/events' ``event_id``, a Segment message's ``messageId``.
_ID_FIELDS = frozenset({"event_id", "messageId"})


def read_batch(
    raw: bytes,
) -> tuple[Sequence[Any], list[tuple[int, NewEvent]], dict[int, list[ItemError]]]:
    """The items of a ``POST /v1/events/batch`` body, the valid events with their index, and
    the errors of the others by index. A clean batch takes one pass of pydantic over the
    bytes; only a batch with problems is parsed again to report each at its index."""
    try:
        events = BATCH_ADAPTER.validate_json(raw)["events"]
    except ValidationError:
        items = batch_items(parse_body(raw), key="events", allowed=())
        valid, errors = validate_events(items, raw=raw)
        return items, valid, errors
    valid, errors = _converted(enumerate(events), {}, raw=raw)
    return events, valid, errors


def validate_events(
    items: list[Any], *, raw: bytes
) -> tuple[list[tuple[int, NewEvent]], dict[int, list[ItemError]]]:
    """Validate a batch's items in one pass (two when some are invalid). Returns the valid
    events with their index, and the errors of the invalid ones by index."""
    errors: dict[int, list[ItemError]] = {}
    try:
        pairs: Iterable[tuple[int, EventIn]] = enumerate(EVENTS_ADAPTER.validate_python(items))
    except ValidationError as failure:
        for loc, message, code in pydantic_errors(failure):
            index = loc[0]
            assert isinstance(index, int)
            errors.setdefault(index, []).append((loc[1:], message, code))
        good = [index for index in range(len(items)) if index not in errors]
        revalidated = EVENTS_ADAPTER.validate_python([items[index] for index in good])
        pairs = zip(good, revalidated, strict=True)
    return _converted(pairs, errors, raw=raw)


def _converted(
    pairs: Iterable[tuple[int, EventIn]], errors: dict[int, list[ItemError]], *, raw: bytes
) -> tuple[list[tuple[int, NewEvent]], dict[int, list[ItemError]]]:
    check_nul = _NUL_ESCAPE in raw
    valid: list[tuple[int, NewEvent]] = []
    for index, event in pairs:
        problem = _nul_error(event) if check_nul else None
        converted = to_new_event(event) if problem is None else problem
        if isinstance(converted, tuple):
            errors[index] = [converted]
        else:
            valid.append((index, converted))
    return valid, errors


def validate_event(payload: Any, *, raw: bytes) -> NewEvent:
    """One event for ``POST /v1/events``, or a 422 problem naming each bad field."""
    try:
        event = EVENT_ADAPTER.validate_python(payload)
    except ValidationError as failure:
        found = pydantic_errors(failure)
        entries = [field_error(("body", *loc), message, code) for loc, message, code in found]
        first = entries[0]
        more = f" (and {len(entries) - 1} more)" if len(entries) > 1 else ""
        raise InvalidInput(
            f"{first['field']}: {first['message']}{more}", field=first["field"], errors=entries
        ) from None
    problem = _nul_error(event) if _NUL_ESCAPE in raw else None
    converted = to_new_event(event) if problem is None else problem
    if isinstance(converted, tuple):
        raise invalid(*converted)
    return converted


def user_id_error(user_id: str | None, anonymous_id: str | None, loc: Loc) -> ItemError | None:
    """The error for an event whose only person is a user id that cannot be a customer number
    (it holds '/', or is '.' or '..': platform.identity.customer_number_problem), else
    ``None``. Such a user id is never made a customer number (the profile processor applies
    the event to its visitor id), so without an anonymous id the event would reach nobody."""
    if user_id is None or anonymous_id is not None:
        return None
    problem = customer_number_problem(user_id.strip())
    if problem is None:
        return None
    return loc, problem + "; or send the visitor's anonymous id with it", "customer_number"


def to_new_event(event: EventIn) -> NewEvent | ItemError:
    customer_id = event.get("customer_id")
    anonymous_id = event.get("anonymous_id")
    if customer_id is None and anonymous_id is None:
        return ("customer_id",), "An event needs customer_id or anonymous_id", "person_missing"
    unusable = user_id_error(customer_id, anonymous_id, ("customer_id",))
    if unusable is not None:
        return unusable
    occurred_at = parse_time(event["occurred_at"], field="occurred_at")
    if isinstance(occurred_at, tuple):
        return occurred_at
    reserved = reserved_type_error(event["type"], ("type",))
    if reserved is not None:
        return reserved
    properties = event.get("properties") or {}
    if event["type"] == "identified" and "traits" in properties:
        wrong = trait_errors(properties["traits"], ("properties", "traits"))
        if wrong:
            return wrong[0]
    misshapen = fact_shape_errors(event["type"], properties, ("properties",))
    if misshapen:
        return misshapen[0]
    return {
        "event_id": event["event_id"],
        "type": event["type"],
        "user_id": customer_id,
        "anonymous_id": anonymous_id,
        "channel": event["channel"],
        "occurred_at": occurred_at,
        "properties": event.get("properties") or {},
        "context": dict(event.get("context") or {}),
        "source": "api",
    }


def parse_time(text: str, *, field: str, naive_is_utc: bool = False) -> datetime | ItemError:
    """An ISO 8601 time in UTC, or the error that names ``field``."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        message = "Input should be a valid ISO 8601 datetime with a timezone offset"
        return (field,), message, "datetime_parsing"
    if value.tzinfo is None:
        if not naive_is_utc:
            return (field,), "Input should have timezone info", "timezone_aware"
        value = value.replace(tzinfo=UTC)
    return checked_time(value, field=field)


def checked_time(value: datetime, *, field: str) -> datetime | ItemError:
    """``value`` in UTC, or an error when no real event can have happened then."""
    if value < EARLIEST_OCCURRED_AT:
        return (field,), f"{field} is before 1970; check the sending device's clock", "too_early"
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (field,), f"{field} is out of range; check the sending device's clock", "clock_skew"


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def _nul_error(event: Any) -> ItemError | None:
    # PostgreSQL stores no NUL character in text or JSONB; refuse it on every database.
    for key, value in event.items():
        if contains_nul(value):
            return (key,), "Text may not contain the NUL character (\\u0000)", "nul_character"
    return None


def _renamed(field: str, names: dict[str, str]) -> str:
    if field in names:
        return names[field]
    head, dot, tail = field.rpartition(".")
    while dot:
        if head in names:
            return f"{names[head]}.{tail}"
        head, dot, rest = head.rpartition(".")
        tail = f"{rest}.{tail}"
    return field


def refusal_error(
    prefix: Loc, refusal: Refusal, names: dict[str, str] | None = None
) -> dict[str, Any]:
    """A refusal as a problem ``errors`` entry; ``names`` renames fields for another wire shape
    (a field nested in a renamed one is renamed with it: ``properties.traits.contact.email``
    is Segment's ``traits.contact.email``)."""
    field = _renamed(refusal.field, names or {})
    message = refusal.message
    if field != refusal.field:
        # The message names the field as the sender sent it ("userId belongs to ...").
        said, sent = refusal.field.rsplit(".", 1)[-1], field.rsplit(".", 1)[-1]
        if message.startswith(said):
            message = sent + message[len(said) :]
    return field_error(("body", *prefix, *field.split(".")), message, refusal.code)


def batch_receipt(
    items: Sequence[Any],
    valid: Sequence[tuple[int, NewEvent]],
    outcomes: Sequence[Outcome],
    errors: dict[int, list[ItemError]],
    *,
    key: str,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The batch answer: counts, then one result per item in request order."""
    status: list[str] = ["rejected"] * len(items)
    refused: dict[int, list[dict[str, Any]]] = {
        index: [
            field_error(("body", key, index, *loc), message, code) for loc, message, code in found
        ]
        for index, found in errors.items()
    }
    for (index, _event), outcome in zip(valid, outcomes, strict=True):
        status[index] = outcome.status
        if outcome.refusal is not None:
            refused[index] = [refusal_error((key, index), outcome.refusal, names)]
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        event_id = _event_id_of(item, names)
        result: dict[str, Any] = {"index": index, "event_id": event_id, "status": status[index]}
        if index in refused:
            result["errors"] = refused[index]
        results.append(result)
    accepted = status.count("accepted")
    duplicates = status.count("duplicate")
    return {
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": len(items) - accepted - duplicates,
        "results": results,
    }


def rejections(items: Sequence[Any], receipt: dict[str, Any], *, key: str) -> list[Rejection]:
    """The refused items of a batch answer, each with its first error (the field relative to
    the item), for the dead-letter store."""
    found: list[Rejection] = []
    for result in receipt["results"]:
        errors = result.get("errors")
        if not errors:
            continue
        index = result["index"]
        first = errors[0]
        prefix = f"{key}.{index}"
        field = first["field"].removeprefix(prefix).removeprefix(".") or "message"
        found.append(Rejection(index, first["code"], field, first["message"], items[index]))
    return found


def _event_id_of(item: Any, names: dict[str, str] | None) -> str | None:
    if not isinstance(item, dict):
        return None
    value = item.get(names.get("event_id", "event_id") if names else "event_id")
    return value.strip() if isinstance(value, str) else None
