"""Erasure's scrub of the event log: nothing of the person survives in any event, wherever it
sits (nested objects, lists, URLs and query strings, unusual keys, search text, device and
advertising ids), while what the aggregates need stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from rapport.events import log as event_log
from rapport.events import service as events
from rapport.events.models import Event
from rapport.platform.identity import identity_digest

EMAIL = "nora.quist@example.org"
PHONE = "+33612345678"
EXTERNAL_ID = "CRM-88231"
ANONYMOUS_ID = "5f0c1d2e-anon-88231"
FIRST, LAST = "Nora", "Quist"
ADVERTISING_ID = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
DEVICE_ID = "B8A1C4D2-device-88231"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
KNOWN = [EMAIL, PHONE, EXTERNAL_ID, ANONYMOUS_ID, FIRST, LAST, f"{FIRST} {LAST}"]
# Everything of the person that must not survive, in every form it is written below.
PERSONAL = [
    EMAIL,
    "nora.quist%40example.org",
    PHONE,
    "06 12 34 56 78",
    EXTERNAL_ID,
    ANONYMOUS_ID,
    FIRST,
    LAST,
    ADVERTISING_ID,
    DEVICE_ID,
    "203.0.113.45",
    "linen summer dress size 38",
    "friend.one@example.com",
    "12 rue des Lilas",
    "75011",
    "Mozilla/5.0 (iPhone",
]


def _event(db, type: str, properties: dict, context: dict, *, customer_id: str | None) -> Event:  # type: ignore[no-untyped-def]
    event = Event(
        event_id=f"scrub-{type}-{len(properties)}-{customer_id}",
        type=type,
        user_id=EXTERNAL_ID,
        anonymous_id=ANONYMOUS_ID,
        customer_id=customer_id,
        channel="app",
        occurred_at=T0,
        received_at=T0,
        properties=properties,
        context=context,
        source="api",
    )
    db.add(event)
    db.flush()
    return event


def _segment_context() -> dict:  # type: ignore[type-arg]
    return {
        "ip": "203.0.113.45",
        "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "locale": "fr-FR",
        "library": {"name": "analytics-ios", "version": "4.1.0"},
        "device": {
            "id": DEVICE_ID,
            "advertisingId": ADVERTISING_ID,
            "adTrackingEnabled": True,
            "manufacturer": "Apple",
            "model": "iPhone15,2",
            "type": "ios",
            "token": "apns-token-88231",
        },
        "page": {
            "url": f"https://shop.example/account?email={EMAIL.replace('@', '%40')}&tab=orders",
            "path": f"/account/{EXTERNAL_ID}",
            "referrer": f"https://mail.example/open?to={EMAIL}",
            "search": f"?email={EMAIL}",
            "title": "My account",
        },
        "traits": {"email": EMAIL, "name": f"{FIRST} {LAST}"},
        "campaign": {"name": "summer-sale", "source": "newsletter", "medium": "email"},
        "location": {"city": "Paris", "latitude": 48.86, "longitude": 2.35},
    }


def _seed(db, customer_id: str) -> None:  # type: ignore[no-untyped-def]
    # given Segment- and Snowplow-like events holding the person's data in every way a real
    # tracker sends it
    _event(
        db,
        "page_viewed",
        {
            "url": f"https://shop.example/checkout?step=2&email={EMAIL}#confirm",
            "referrer": "https://www.search.example/?q=linen+summer+dress",
            "title": "Checkout",
            "category": "Women/Dresses",
        },
        _segment_context(),
        customer_id=customer_id,
    )
    _event(
        db,
        "products_searched",
        {"query": "linen summer dress size 38", "results": 24, "filters": {"size": "38"}},
        _segment_context(),
        customer_id=customer_id,
    )
    _event(
        db,
        "order_placed",
        {
            "order_id": "O-88231",
            "total_minor": 12900,
            "currency": "EUR",
            "lines": [
                {"sku": "DRS-1", "category": "Women/Dresses", "quantity": 1, "name": "Linen"},
            ],
            "traits": {"email_address": EMAIL},
            "full_name": f"{FIRST} {LAST}",
            "shipping": {
                "street": "12 rue des Lilas",
                "postcode": "75011",
                "city": "Paris",
                "contact_phone": "06 12 34 56 78",
            },
            "gift_note": "Joyeux anniversaire Nora !",
        },
        {"ip": "203.0.113.45"},
        customer_id=customer_id,
    )
    _event(
        db,
        "wishlist_shared",
        {
            "recipients": ["friend.one@example.com", EMAIL],
            "sender": {"id": EXTERNAL_ID, "name": FIRST},
            "share_link": f"https://shop.example/w/123?from={EXTERNAL_ID}",
            "item_count": 3,
        },
        {"idfa": ADVERTISING_ID, "gaid": ADVERTISING_ID, "ad_id": ADVERTISING_ID},
        customer_id=customer_id,
    )
    _event(
        db,
        "se_action",  # Snowplow structured event
        {
            "se_category": "newsletter",
            "se_action": "subscribe",
            "se_label": EMAIL,
            "se_property": f"tel:{PHONE}",
            "contexts": [
                {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"userId": EXTERNAL_ID}}
            ],
        },
        {"user_ipaddress": "203.0.113.45", "domain_userid": ANONYMOUS_ID},
        customer_id=customer_id,
    )


def _events_as_text(db) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(
        json.dumps(
            [e.user_id, e.anonymous_id, e.properties, e.context], ensure_ascii=False, default=str
        )
        for e in db.scalars(select(Event))
    )


def test_erasure_scrub_leaves_nothing_of_the_person_in_any_event(db) -> None:
    _seed(db, "cus_scrubbed01")
    before = _events_as_text(db)
    assert all(value in before for value in PERSONAL)  # the seed really holds them all
    # when the events domain pseudonymises the person's events
    changed = event_log.pseudonymise_customer_events(
        db, customer_id="cus_scrubbed01", known_values=KNOWN
    )
    # then none of their data is left anywhere in the log
    assert changed == 5
    after = _events_as_text(db)
    for value in PERSONAL:
        assert value not in after, f"{value!r} survived the scrub"
    # but what the aggregates need stays: type, time, channel, the random id, totals, lines
    order = db.scalar(select(Event).where(Event.type == "order_placed"))
    assert (order.customer_id, order.channel, order.occurred_at) == ("cus_scrubbed01", "app", T0)
    assert order.properties["total_minor"] == 12900
    assert order.properties["lines"] == [
        {"sku": "DRS-1", "category": "Women/Dresses", "quantity": 1, "name": "Linen"}
    ]
    page = db.scalar(select(Event).where(Event.type == "page_viewed"))
    assert page.properties["url"] == "https://shop.example/checkout"  # no query string
    assert page.properties["category"] == "Women/Dresses"
    assert page.context["device"] == {
        "adTrackingEnabled": True,
        "manufacturer": "Apple",
        "model": "iPhone15,2",
        "type": "ios",
    }
    assert page.context["campaign"] == {
        "name": "summer-sale",
        "source": "newsletter",
        "medium": "email",
    }
    searched = db.scalar(select(Event).where(Event.type == "products_searched"))
    assert searched.properties == {"results": 24, "filters": {"size": "38"}}
    shared = db.scalar(select(Event).where(Event.type == "wishlist_shared"))
    assert shared.properties["item_count"] == 3


def test_events_still_waiting_for_the_processor_are_scrubbed_and_given_the_person(db) -> None:
    # given events the profile processor has not resolved yet (no customer id), naming the
    # person by their retailer id or their visitor id, and someone else's event
    _seed(db, None)  # type: ignore[arg-type]
    other = Event(
        event_id="someone-else",
        type="page_viewed",
        user_id="CRM-1",
        anonymous_id="anon-other",
        channel="web",
        occurred_at=T0,
        received_at=T0,
        properties={"url": "https://shop.example/?email=other@example.com"},
        context={},
        source="api",
    )
    db.add(other)
    db.flush()
    # when the person's events are pseudonymised with their ids
    changed = event_log.pseudonymise_customer_events(
        db,
        customer_id="cus_scrubbed02",
        known_values=KNOWN,
        user_ids=[EXTERNAL_ID],
        anonymous_ids=[ANONYMOUS_ID],
    )
    # then the waiting events are scrubbed and belong to the (erased) random id
    assert changed == 5
    theirs = db.scalars(select(Event).where(Event.customer_id == "cus_scrubbed02")).all()
    assert len(theirs) == 5
    assert all(e.user_id is None and e.anonymous_id is None for e in theirs)
    text = _events_as_text(db)
    for value in PERSONAL:
        assert value not in text, f"{value!r} survived the scrub"
    # and someone else's event is untouched
    db.refresh(other)
    assert (other.user_id, other.anonymous_id, other.customer_id) == ("CRM-1", "anon-other", None)
    assert other.properties == {"url": "https://shop.example/?email=other@example.com"}


def test_a_name_does_not_remove_words_that_merely_contain_it() -> None:
    # given a person called "Ana"
    scrubber = event_log.Scrubber(["Ana", "+4915112345678"])
    # then "Banana" stays, while the name itself, and their phone however written, go
    cleaned = scrubber.document(
        {
            "category": "Fruit/Banana",
            "gift_message_to": "For Ana",
            "label": "ana",
            "contact": "0151 1234 5678",
            "order_number": "9915112345678001",
        }
    )
    assert cleaned == {"category": "Fruit/Banana", "order_number": "9915112345678001"}


def test_the_browser_a_person_identified_in_is_theirs_too(db) -> None:
    # given, still waiting for the processor, a page view from a browser, the person
    # identifying in that browser, and someone else signing in on the same browser later
    def waiting(event_id: str, user_id: str | None, url: str) -> Event:
        event = Event(
            event_id=event_id,
            type="page_viewed",
            user_id=user_id,
            anonymous_id="browser-77",
            channel="web",
            occurred_at=T0,
            received_at=T0,
            properties={"url": url},
            context={},
            source="api",
        )
        db.add(event)
        return event

    before = waiting("w-1", None, "https://shop.example/p/1?ref=nora")
    identified = waiting("w-2", EXTERNAL_ID, "https://shop.example/login")
    someone_else = waiting("w-3", "CRM-2", "https://shop.example/p/2")
    db.flush()
    # when the person's events are pseudonymised
    event_log.pseudonymise_customer_events(
        db, customer_id="cus_scrubbed03", known_values=KNOWN, user_ids=[EXTERNAL_ID]
    )
    # then the anonymous page view is theirs, scrubbed, and the browser's id is suppressed
    for event in (before, identified):
        db.refresh(event)
        assert (event.customer_id, event.anonymous_id, event.user_id) == (
            "cus_scrubbed03",
            None,
            None,
        )
    assert before.properties == {"url": "https://shop.example/p/1"}
    assert events.suppressed(db, digests=[identity_digest("anonymous_id", "browser-77")]) == {
        identity_digest("anonymous_id", "browser-77")
    }
    # and the other person's event is left alone
    db.refresh(someone_else)
    assert (someone_else.customer_id, someone_else.user_id) == (None, "CRM-2")
