"""Reading and maintaining the event log on behalf of processors and privacy requests.

(Ingestion lives in ``ingest.py`` and ``tracking_store.py``; commands append through
``appending.py``.)"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from rapport.events.models import Event
from rapport.events.suppression import suppress_identities
from rapport.platform.identity import identity_digest
from rapport.platform.ids import new_id

# Keys (compared lower-cased, without '_', '-', '.' or spaces) whose values are personal data
# wherever they sit in properties, traits or context; erasure drops them.
PERSONAL_KEYS = frozenset(
    {
        # names ("name" alone only at the top or under a person: see is_personal_key)
        "firstname", "lastname", "fullname", "givenname", "familyname", "surname",
        "middlename", "nickname", "username", "displayname", "customername", "contactname",
        "recipientname", "billingname", "shippingname",
        # contact details and identifiers of the person
        "email", "mail", "phone", "mobile", "tel", "telephone", "fax", "userid",
        "anonymousid", "externalid", "loyaltycard", "membershipnumber", "customernumber",
        "recipient", "recipients", "cc", "bcc", "replyto",
        # addresses and places
        "address", "street", "postalcode", "postcode", "zip", "zipcode", "city", "location",
        "latitude", "longitude", "lat", "lon", "lng", "geo", "coordinates",
        # the person themselves
        "birthday", "birthdate", "dateofbirth", "dob", "gender", "traits", "password",
        "ssn", "iban", "cardnumber",
        # network and devices
        "ip", "ipaddress", "clientip", "remoteip", "ipv4", "ipv6", "xforwardedfor",
        "useragent", "ua", "deviceid", "idfa", "idfv", "gaid", "adid", "advertisingid",
        "androidid", "imei", "macaddress", "pushtoken", "devicetoken", "token",
        # what the person wrote or searched for
        "comment", "comments", "text", "message", "body", "note", "notes", "query", "q",
        "search", "searchquery", "searchterm", "searchtext", "keyword", "keywords", "term",
    }
)  # fmt: skip
# Keys that hold personal data when they contain one of these words (email_address, phoneNumber,
# billingAddress, home_street, ...).
_PERSONAL_PARTS = (
    "email", "phone", "address", "street", "postcode", "advertising", "note", "comment", "message",
)  # fmt: skip
# Generic keys that identify the person or their device inside these objects (Segment's
# ``context.device.id``, ``context.device.token``, ``properties.user.id``).
_PERSONAL_PARENTS = frozenset(
    {"device", "user", "customer", "person", "contact", "identity", "member", "recipient"}
)
_PERSONAL_UNDER_PARENT = frozenset({"id", "token", "name"})
# Keys whose values are addresses of pages: kept for analytics, without their query string
# and fragment (``?email=...``, ``#token=...``).
_URL_KEYS = frozenset(
    {"url", "referrer", "referer", "href", "link", "path", "landingpage", "pageurl", "uri"}
)
# Keys of free text in Rapport's own facts (the declared event shapes, ``source`` "command"):
# text staff or a client wrote about something done to the person (a points movement's
# "reason", "Zoetrope bonus"; a consent's "source", "checkout box at Lindenstrasse"). Erasure
# keeps the key, its text becomes ERASED_TEXT. Every other text field of a declared fact is
# either personal (PERSONAL_KEYS: an order's "note") or chosen by Rapport (ids, codes, dates,
# names of things); tests/events/test_erasure_free_text.py holds each declared field to one.
FREE_TEXT_KEYS = frozenset({"reason", "source"})
ERASED_TEXT = "erased"
# What a sender may put in a tracked event is an open set: no list of personal key names can
# be complete (``review_body``, ``delivery_instructions``, a household's ``group_id``). So at
# erasure a tracked event keeps text only under these keys (compared as PERSONAL_KEYS are),
# known to name things, not people: products, orders, money, places of the shop, the page and
# the software that sent it. Every other string becomes ERASED_TEXT, however deeply nested;
# numbers and booleans stay (amounts, quantities, ratings add up). Rapport's own facts
# (``source`` "command") have declared shapes and keep theirs, scrubbed by the key rules.
KEPT_TRACKED_TEXT = frozenset(
    {
        # products and carts
        "sku", "productid", "variantid", "variant", "category", "categories", "brand",
        "listid", "cartid", "wishlistid", "size", "color", "colour",
        # orders and money
        "orderid", "checkoutid", "currency", "coupon", "couponid", "promotionid", "creative",
        "shippingmethod", "paymentmethod", "step", "affiliation",
        # the shop
        "storeid", "channel",
        # what happened
        "type", "event", "status", "purpose",
        # the page or screen (addresses lose their query string, see _URL_KEYS)
        "url", "referrer", "referer", "href", "link", "path", "landingpage", "pageurl", "uri",
        # the software that sent it
        "library", "version", "build", "namespace", "os", "platform", "model", "manufacturer",
        "locale", "language",
    }
)  # fmt: skip
# "name" is kept under these (a product's, a campaign's, the SDK's), never on its own.
_NAMED_THINGS = frozenset(
    {"products", "product", "items", "item", "lines", "campaign", "library", "app", "os",
     "browser", "promotion", "promotions"}
)  # fmt: skip
_EMAIL_IN_TEXT = re.compile(r"[^\s@/?&=#:;,]+(?:@|%40)[^\s@/?&=#:;,]+\.[a-z]{2,}", re.IGNORECASE)
_NOT_KEY_CHAR = re.compile(r"[^a-z0-9]")


def _key_form(key: str) -> str:
    return _NOT_KEY_CHAR.sub("", key.lower())


def is_personal_key(key: str, *, parent: str | None = None) -> bool:
    """Whether values under ``key`` are personal data (see :data:`PERSONAL_KEYS`)."""
    form = _key_form(key)
    if form in PERSONAL_KEYS or any(part in form for part in _PERSONAL_PARTS):
        return True
    if form not in _PERSONAL_UNDER_PARENT:
        return False
    # A bare "name" at the top is the person's (Segment traits); under "campaign", "library"
    # or an order line it names a thing, and stays.
    return (parent is None and form == "name") or (
        parent is not None and _key_form(parent) in _PERSONAL_PARENTS
    )


def _kept_text(key: str | None, parent: str | None) -> bool:
    """Whether a tracked event's text under ``key`` (inside ``parent``) names a thing, and
    stays at erasure (a list's items are under the list's key)."""
    if key is None:
        return False
    form = _key_form(key)
    if form in KEPT_TRACKED_TEXT:
        return True
    if parent is None:
        return False
    if form in {"source", "medium"}:  # a campaign's (UTM), not a consent's "phone call"
        return _key_form(parent) == "campaign"
    return form in {"name", "id"} and _key_form(parent) in _NAMED_THINGS


class Scrubber:
    """Removes a person's data from event documents: values under personal keys, strings
    that contain an email address or one of the person's known values (their email, phone,
    ids, names; also URL-encoded, inside URLs and query strings), the query strings of page
    addresses, and free text (a ``reason``, which becomes ``"erased"``). In a tracked event
    every string not under :data:`KEPT_TRACKED_TEXT` becomes ``"erased"`` as well. Numbers,
    booleans and other keys stay, so aggregates still add up."""

    def __init__(self, known_values: Iterable[str] = ()) -> None:
        words: list[str] = []
        phones: list[str] = []
        for value in known_values:
            value = value.strip() if isinstance(value, str) else ""
            if len(value) < 2:
                continue
            forms = {value, quote(value, safe=""), quote_plus(value)}
            digits = re.sub(r"[^0-9]", "", value)
            if value.startswith("+") and len(digits) >= 8:
                # A phone as people write it: national form, spaces, dots or dashes
                # ("06 12 34 56 78" for +33612345678): its last nine digits, however spaced.
                phones.append(r"[\s.\-()/]*".join(digits[-9:]) + r"(?![0-9])")
            words.extend(re.escape(form) for form in forms)
        # Word boundaries, so that the name "Ana" does not match "Banana".
        self._known = (
            re.compile(r"(?<![0-9a-z])(?:" + "|".join(sorted(set(words))) + r")(?![0-9a-z])", re.I)
            if words
            else None
        )
        self._phones = re.compile("|".join(phones)) if phones else None

    def names_person(self, text: str) -> bool:
        """Whether ``text`` holds an email address or one of the person's known values."""
        if _EMAIL_IN_TEXT.search(text):
            return True
        if self._phones is not None and self._phones.search(text):
            return True
        return self._known is not None and self._known.search(text) is not None

    def _string(self, key: str | None, text: str) -> str | None:
        if key is not None and _key_form(key) in _URL_KEYS:
            text = text.split("?", 1)[0].split("#", 1)[0]
        return None if self.names_person(text) else text

    def _value(
        self, key: str | None, value: Any, parent: str | None, *, tracked: bool
    ) -> tuple[bool, Any]:
        """(keep, cleaned value)."""
        if isinstance(value, dict):
            return True, self.document(value, parent=key, tracked=tracked)
        if isinstance(value, list):
            cleaned = []
            for item in value:
                keep, item = self._value(key, item, parent, tracked=tracked)
                if keep:
                    cleaned.append(item)
            return True, cleaned
        if isinstance(value, str):
            if tracked and not _kept_text(key, parent):
                return True, ERASED_TEXT
            text = self._string(key, value)
            return text is not None, text
        return True, value

    def document(
        self, document: dict[str, Any], *, parent: str | None = None, tracked: bool = False
    ) -> dict[str, Any]:
        """A copy of ``document`` without the person's data. ``tracked``: a document a sender
        wrote (a tracked event's properties or context), whose text is kept only under
        :data:`KEPT_TRACKED_TEXT`."""
        cleaned: dict[str, Any] = {}
        for key, value in document.items():
            if is_personal_key(key, parent=parent) or self.names_person(key):
                continue
            if not tracked and isinstance(value, str) and _key_form(key) in FREE_TEXT_KEYS:
                cleaned[key] = ERASED_TEXT
                continue
            keep, value = self._value(key, value, parent, tracked=tracked)
            if keep:
                cleaned[key] = value
        return cleaned

    def event(self, event: Event) -> None:
        """Scrub one event in place; its person columns are cleared too, and its id is
        replaced by a random one when a sender chose it (it may spell the person out:
        ``signup-ana@example.com``, the demo's ``demo-C0000080-signup``, a digest of the
        message) or when it names the person. Ids Rapport gave its own facts stay. (A retry
        of a tracked event under its old id cannot store it again: it names the person, whose
        identities ingestion refuses from now on.)"""
        tracked = event.source != "command"
        if tracked or self.names_person(event.event_id):
            event.event_id = new_id("evt")
        event.properties = self.document(event.properties or {}, tracked=tracked)
        event.context = self.document(event.context or {}, tracked=tracked)
        event.user_id = None
        event.anonymous_id = None


def get_event(db: Session, *, event_id: str) -> Event | None:
    return db.scalar(select(Event).where(Event.event_id == event_id))


def event_ids_at(db: Session, *, positions: Iterable[int]) -> dict[int, str]:
    """The event id now at each of ``positions`` in the log (an erasure may have replaced
    a sender's)."""
    wanted = sorted(set(positions))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 1000):
        for position, event_id in db.execute(
            select(Event.position, Event.event_id).where(
                Event.position.in_(wanted[start : start + 1000])
            )
        ):
            found[int(position)] = str(event_id)
    return found


def count_events(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Event)) or 0


def events_after(db: Session, *, position: int, limit: int) -> list[Event]:
    """The next ``limit`` events of the log after ``position``, in log order."""
    return list(
        db.scalars(
            select(Event).where(Event.position > position).order_by(Event.position).limit(limit)
        )
    )


def head_position(db: Session) -> int:
    """Position of the newest event (0 for an empty log)."""
    return int(db.scalar(select(Event.position).order_by(Event.position.desc()).limit(1)) or 0)


def assign_customer(db: Session, *, positions: Iterable[int], customer_id: str) -> None:
    """Record which customer the given events belong to (resolved by the profile processor)."""
    chosen = list(positions)
    if chosen:
        db.execute(
            update(Event)
            .where(Event.position.in_(chosen))
            .values(customer_id=customer_id)
            # The batch's Event objects are not read again; skip matching them in Python.
            .execution_options(synchronize_session=False)
        )


def claim_anonymous_events(db: Session, *, anonymous_id: str, customer_id: str) -> int:
    """Give a customer the earlier events of an anonymous id nobody had claimed."""
    result = db.execute(
        update(Event)
        .where(Event.anonymous_id == anonymous_id, Event.customer_id.is_(None))
        .values(customer_id=customer_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def reassign_customer_events(db: Session, *, from_customer_id: str, to_customer_id: str) -> int:
    """Move a merged profile's history to the surviving profile."""
    result = db.execute(
        update(Event)
        .where(Event.customer_id == from_customer_id)
        .values(customer_id=to_customer_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def pseudonymise_customer_events(
    db: Session,
    *,
    customer_id: str,
    known_values: Iterable[str] = (),
    user_ids: Iterable[str] = (),
    anonymous_ids: Iterable[str] = (),
) -> int:
    """Strip personal data from a customer's events, keeping type, time, channel, the random
    customer id and non-personal properties (totals, lines, categories) so that aggregates
    stay true. ``known_values`` are the person's identity values and names: any string that
    contains one goes, wherever it sits.

    Events still waiting for the profile processor that name one of ``user_ids`` or
    ``anonymous_ids`` are the person's too, as are waiting events from the visitor ids those
    name (the browser they identified in): all are scrubbed and given ``customer_id``, and
    the visitor ids learned so go on the suppression list, so nothing queued or sent later
    can rebuild the profile. Returns how many events were changed."""
    users = set(user_ids) - {""}
    visitors = set(anonymous_ids) - {""}
    waiting = Event.customer_id.is_(None)
    learned: set[str] = set()
    if users:
        paired = db.scalars(
            select(Event.anonymous_id)
            .where(waiting, Event.user_id.in_(sorted(users)), Event.anonymous_id.is_not(None))
            .distinct()
        )
        learned = {visitor for visitor in paired if visitor} - visitors
    visitors |= learned
    scrubber = Scrubber([*known_values, *users, *visitors])
    theirs = Event.customer_id == customer_id
    naming: list[ColumnElement[bool]] = []
    if users:
        naming.append(Event.user_id.in_(sorted(users)))
    if visitors:
        # A visitor id also used by someone who signed in as another person stays theirs.
        naming.append(
            Event.anonymous_id.in_(sorted(visitors))
            & (Event.user_id.is_(None) | Event.user_id.in_(sorted(users)))
        )
    if naming:
        theirs = theirs | (waiting & or_(*naming))
    changed = 0
    for event in db.scalars(select(Event).where(theirs)):
        scrubber.event(event)
        event.customer_id = customer_id
        changed += 1
    if learned:
        suppress_identities(
            db, digests=[identity_digest("anonymous_id", value) for value in learned]
        )
    db.flush()
    return changed


def customer_timeline(
    db: Session, *, customer_id: str, limit: int = 50, before_position: int | None = None
) -> list[Event]:
    """A customer's events, newest first."""
    query = (
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.position.desc())
        .limit(limit)
    )
    if before_position is not None:
        query = query.where(Event.position < before_position)
    return list(db.scalars(query))


def customer_events(db: Session, *, customer_id: str) -> Iterator[Event]:
    """Every event of a customer, oldest first (for exports)."""
    yield from db.scalars(
        select(Event)
        .where(Event.customer_id == customer_id)
        .order_by(Event.position)
        .execution_options(yield_per=1000)
    )
