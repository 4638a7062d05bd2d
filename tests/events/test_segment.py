"""Segment tracking-API compatibility: message mapping, the endpoints, and Segment's own
Python SDK sending to a running server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rapport.events import service as events
from rapport.events.ingest import PUBLIC_SEGMENT_SOURCE
from rapport.events.models import Event
from rapport.events.segment import event_type, to_event
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# --- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "name", "expected"),
    [
        ("spec name", "Product Viewed", "product_viewed"),
        ("spec name", "Order Completed", "order_completed"),
        ("e-commerce spec", "Product Added", "product_added"),
        ("e-commerce spec", "Product Removed", "product_removed"),
        ("e-commerce spec", "Cart Viewed", "cart_viewed"),
        ("e-commerce spec", "Product List Viewed", "product_list_viewed"),
        ("e-commerce spec", "Order Refunded", "order_refunded"),
        ("camel case", "productAddedToWishlist", "product_added_to_wishlist"),
        ("punctuation", "  Checkout - Step 2 (Shipping) ", "checkout_step_2_shipping"),
        ("accents", "Réservation Confirmée", "reservation_confirmee"),
        ("Rapport's own type", "Application Opened", "app_opened"),
        ("Rapport's own type", "Products Searched", "searched"),
        ("leading digit", "404 Seen", "event_404_seen"),
        ("nothing usable", "!!", None),
        ("too long", "x" * 61, None),
    ],
)
def test_track_event_names_become_snake_case_types(_case, name, expected) -> None:
    assert event_type(name) == expected


def test_track_message_maps_every_field() -> None:
    # given a mobile track call as Segment's SDKs send it
    message = {
        "type": "track",
        "messageId": "m-1",
        "userId": 4711,
        "anonymousId": "dev-1",
        "event": "Product Viewed",
        "timestamp": "2026-06-01T13:58:00.000+02:00",
        "properties": {"sku": "W-1", "price": 12.5},
        "context": {
            "ip": "203.0.113.9",
            "app": {"name": "Shop", "version": "3.1"},
            "device": {"type": "ios", "model": "iPhone15,2", "advertisingId": "ad-1"},
            "location": {"latitude": 52.37, "longitude": 4.89, "city": "Amsterdam"},
            "library": {"name": "analytics-ios", "version": "4.1.0"},
        },
        "integrations": {"All": True},
        "writeKey": "ignored",
    }

    # when it is mapped
    event = to_event(message, kind=None, received_at=NOW)

    # then every field lands where Rapport keeps it
    assert event == {
        "event_id": "m-1",
        "type": "product_viewed",
        "user_id": "4711",
        "anonymous_id": "dev-1",
        "channel": "app",
        "occurred_at": datetime(2026, 6, 1, 11, 58, tzinfo=UTC),
        "properties": {"sku": "W-1", "price": 12.5},
        "context": {
            "ip": "203.0.113.9",
            "app": {"name": "Shop", "version": "3.1"},
            "device": "ios",
            "location": {"lat": 52.37, "lon": 4.89},
            "library": {"name": "analytics-ios", "version": "4.1.0"},
            "segment": {
                "device": {"type": "ios", "model": "iPhone15,2", "advertisingId": "ad-1"},
                "location": {"latitude": 52.37, "longitude": 4.89, "city": "Amsterdam"},
            },
        },
        "source": "segment",
    }


def test_page_screen_and_identify_calls() -> None:
    # given a web page call, an app screen call and an identify call
    page = {
        "anonymousId": "a-1",
        "name": "Wok",
        "category": "Product",
        "properties": {"url": "https://shop.example/p/W-1", "title": "Wok"},
        "messageId": "p",
    }
    screen = {"userId": "u-1", "name": "Basket", "messageId": "s"}
    identify = {"userId": "u-1", "traits": {"email": "ann@example.com"}, "messageId": "i"}

    # when they are mapped
    mapped = [
        to_event(page, kind="page", received_at=NOW),
        to_event(screen, kind="screen", received_at=NOW),
        to_event(identify, kind="identify", received_at=NOW),
    ]

    # then each gets Rapport's type, channel and properties; no timestamp means "received now"
    assert [(e["type"], e["channel"], e["occurred_at"]) for e in mapped] == [  # type: ignore[index]
        ("page_viewed", "web", NOW),
        ("screen_viewed", "app", NOW),
        ("identified", "web", NOW),
    ]
    assert mapped[0]["properties"] == {  # type: ignore[index]
        "url": "https://shop.example/p/W-1",
        "title": "Wok",
        "name": "Wok",
        "category": "Product",
    }
    assert mapped[0]["context"] == {  # type: ignore[index]
        "page": {"url": "https://shop.example/p/W-1", "title": "Wok"}
    }
    assert mapped[1]["properties"] == {"name": "Basket"}  # type: ignore[index]
    assert mapped[2]["properties"] == {"traits": {"email": "ann@example.com"}}  # type: ignore[index]


def test_identify_traits_come_from_traits_and_context_traits() -> None:
    # given an identify call as RudderStack's SDK sends it (traits in context.traits), with
    # one trait also at the top level
    message = {
        "userId": "u-1",
        "messageId": "i",
        "traits": {"plan": "max"},
        "context": {"traits": {"email": "ann@example.com", "plan": "pro", "age": 41}},
    }

    # when it is mapped
    event = to_event(message, kind="identify", received_at=NOW)

    # then the event's traits hold both, the top-level ones winning, and context keeps none
    assert event["properties"] == {  # type: ignore[index]
        "traits": {"email": "ann@example.com", "plan": "max", "age": 41}
    }
    assert event["context"] == {}  # type: ignore[index]


def test_a_track_call_keeps_its_context_traits_checked() -> None:
    # given a track call carrying the SDK's copy of the user's traits
    message = {"userId": "u-1", "event": "A B", "context": {"traits": {"plan": "pro"}}}

    # when it is mapped, then they stay in its context for the profile processor
    event = to_event(message, kind="track", received_at=NOW)
    assert event["context"] == {"traits": {"plan": "pro"}}  # type: ignore[index]


def test_device_clock_is_corrected_with_sent_at() -> None:
    # given a device whose clock is 1 hour behind: it stamped the event, then sent it 2 s later
    message = {
        "userId": "u-1",
        "event": "Cart Viewed",
        "messageId": "m",
        "originalTimestamp": "2026-06-01T10:59:58Z",
        "sentAt": "2026-06-01T11:00:00Z",
    }

    # when it arrives at noon
    event = to_event(message, kind="track", received_at=NOW)

    # then it happened 2 s before it arrived
    assert event["occurred_at"] == NOW - timedelta(seconds=2)  # type: ignore[index]


def test_message_without_id_gets_a_stable_one() -> None:
    # given the same message twice, sent at different times, without messageId
    first = {
        "userId": "u-1",
        "event": "A B",
        "timestamp": "2026-06-01T11:00:00Z",
        "sentAt": "2026-06-01T11:00:01Z",
    }
    retry = {**first, "sentAt": "2026-06-01T11:05:00Z"}

    # when both are mapped
    ids = [to_event(m, kind="track", received_at=NOW)["event_id"] for m in (first, retry)]  # type: ignore[index]

    # then they get the same event_id, so the retry is a duplicate
    assert ids[0] == ids[1]
    assert ids[0].startswith("seg-")


@pytest.mark.parametrize(
    ("_case", "message", "loc", "code"),
    [
        ("nobody", {"event": "A B"}, ("userId",), "person_missing"),
        ("no event name", {"userId": "u"}, ("event",), "missing"),
        (
            "latitude out of range",
            {
                "userId": "u",
                "event": "A B",
                "context": {"location": {"latitude": 91, "longitude": 4}},
            },
            ("context", "location", "latitude"),
            "out_of_range",
        ),
        (
            "bad timestamp",
            {"userId": "u", "event": "A B", "timestamp": "yesterday"},
            ("timestamp",),
            "datetime_parsing",
        ),
        ("not an object", ["track"], (), "model_type"),
        (
            "trait name with a space",
            {"userId": "u", "type": "identify", "traits": {"plan type": "pro"}},
            ("traits", "plan type"),
            "trait_name",
        ),
        (
            "trait text too long",
            {"userId": "u", "type": "identify", "traits": {"bio": "x" * 501}},
            ("traits", "bio"),
            "string_too_long",
        ),
        (
            "known trait too long",
            {"userId": "u", "type": "identify", "traits": {"phone": "1" * 41}},
            ("traits", "phone"),
            "string_too_long",
        ),
        (
            "trait nested too deep",
            {"userId": "u", "type": "identify", "traits": {"company": {"address": {"a": 1}}}},
            ("traits", "company"),
            "trait_type",
        ),
        (
            "too many custom traits",
            {"userId": "u", "type": "identify", "traits": {f"t{i}": i for i in range(51)}},
            ("traits",),
            "too_many_traits",
        ),
        (
            "context traits on a track call",
            {"userId": "u", "event": "A B", "context": {"traits": {"plan": [[1]]}}},
            ("context", "traits", "plan"),
            "trait_type",
        ),
        (
            "context traits not an object",
            {"userId": "u", "type": "identify", "context": {"traits": "pro"}},
            ("context", "traits"),
            "dict_type",
        ),
        (
            "group traits",
            {"userId": "u", "type": "group", "groupId": "g", "traits": {"x": "y" * 501}},
            ("traits", "x"),
            "string_too_long",
        ),
        (
            "sentAt that is not a time, beside a timestamp",
            {"userId": "u", "event": "A B", "timestamp": "2026-06-01T11:00:00Z", "sentAt": "soon"},
            ("sentAt",),
            "datetime_parsing",
        ),
        (
            "sentAt that is not a time, alone",
            {"userId": "u", "type": "screen", "name": "Home", "sentAt": "\u00e6"},
            ("sentAt",),
            "datetime_parsing",
        ),
    ],
)
def test_invalid_messages_name_the_field(_case, message, loc, code) -> None:
    errors = to_event(message, kind=None if "type" in message else "track", received_at=NOW)
    assert isinstance(errors, list)
    assert [(found_loc, found_code) for found_loc, _, found_code in errors] == [(loc, code)]


# --- the endpoints -----------------------------------------------------------------------------


def test_track_call_is_stored_once_and_answered_like_segment(client, api_key, db) -> None:
    # given a track call with the shop's server-side key (it may write: its orders are
    # trusted) as basic-auth user
    clock.set_clock(lambda: NOW)
    key = basic_auth(api_key("ingest", "write"))
    message = {
        "userId": "u-1",
        "event": "Order Completed",
        "messageId": "m-1",
        "properties": {"order_id": "O-1"},
        "timestamp": "2026-06-01T11:59:00Z",
    }

    # when it is sent twice
    first = client.post("/v1/track", json=message, headers=key)
    again = client.post("/v1/track", json=message, headers=key)

    # then both get Segment's answer and the event is stored once
    assert (first.status_code, first.json()) == (200, {"success": True})
    assert (again.status_code, again.json()) == (200, {"success": True})
    stored = events.get_event(db, event_id="m-1")
    assert stored is not None
    assert (stored.type, stored.user_id, stored.channel, stored.source) == (
        "order_completed",
        "u-1",
        "web",
        "segment",
    )
    assert stored.properties == {"order_id": "O-1"}
    assert events.count_events(db) == 1


def test_invalid_single_call_is_a_problem(client, api_key, db) -> None:
    # given a page call without any person
    # when it is sent
    response = client.post("/v1/page", json={"name": "Home"}, headers=basic_auth(api_key("ingest")))

    # then it is problem+json naming the Segment field
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "userId"
    assert events.count_events(db) == 0


def test_invalid_traits_are_refused_naming_the_trait(client, api_key, db) -> None:
    # given identify calls with a trait Rapport cannot keep, alone and in a batch
    key = basic_auth(api_key("ingest"))
    bad = {"userId": "u-1", "traits": {"plan": {"tier": {"level": 1}}}, "messageId": "m-1"}
    batch = {
        "batch": [
            {"type": "identify", **bad},
            {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}, "messageId": "m-2"},
        ]
    }

    # when they are sent
    single = client.post("/v1/identify", json=bad, headers=key)
    batched = client.post("/v1/batch", json=batch, headers=key)

    # then the single call is a problem naming the trait, the batch stores the good message
    # and lists the refused one with its field
    assert single.status_code == 422
    assert single.json()["field"] == "traits.plan"
    assert batched.status_code == 200
    answer = batched.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert [(e["index"], e["field"], e["code"]) for e in answer["errors"]] == [
        (0, "batch.0.traits.plan", "trait_type")
    ]
    assert events.count_events(db) == 1


def test_native_identified_events_follow_the_same_trait_rules(client, api_key, db) -> None:
    # given a native identified event with a trait name Rapport does not take
    clock.set_clock(lambda: NOW)
    event = {
        "event_id": "e-1",
        "type": "identified",
        "customer_id": "u-1",
        "channel": "web",
        "occurred_at": "2026-06-01T11:59:00Z",
        "properties": {"traits": {"email": "ann@example.com", "Plan-Type": "pro"}},
    }

    # when it is sent
    response = client.post("/v1/events", json=event, headers=basic_auth(api_key("ingest")))

    # then it is refused naming the trait
    assert response.status_code == 422
    assert response.json()["field"] == "properties.traits.Plan-Type"
    assert events.count_events(db) == 0


def test_batch_stores_valid_messages_and_lists_rejected_ones(client, api_key, db) -> None:
    # given a batch with shared context, an invalid message and every call type
    clock.set_clock(lambda: NOW)
    body = {
        "batch": [
            {"type": "track", "userId": "u-1", "event": "Cart Viewed", "messageId": "b-0"},
            {"type": "track", "userId": "u-1", "messageId": "b-1"},
            {"type": "identify", "userId": "u-1", "traits": {"tier": "gold"}, "messageId": "b-2"},
            {"type": "alias", "userId": "u-1", "previousId": "dev-1", "messageId": "b-3"},
            {"type": "group", "userId": "u-1", "groupId": "g-1", "messageId": "b-4"},
            {"type": "shout", "userId": "u-1", "messageId": "b-5"},
        ],
        "context": {"channel": "store"},
        "sentAt": "2026-06-01T12:00:00Z",
    }

    # when it is sent
    till = api_key("ingest", "write")  # a key that may claim the store channel
    response = client.post("/v1/batch", json=body, headers=basic_auth(till))

    # then the valid messages are stored with the batch's context and the rest named
    assert response.status_code == 200
    answer = response.json()
    assert (answer["success"], answer["accepted"], answer["rejected"]) == (True, 4, 2)
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [
        ("batch.1.event", "missing"),
        ("batch.5.type", "enum"),
    ]
    stored = list(
        db.execute(
            select(Event.event_id, Event.type, Event.channel, Event.properties).order_by(
                Event.position
            )
        )
    )
    assert [tuple(row) for row in stored] == [
        ("b-0", "cart_viewed", "store", {}),
        ("b-2", "identified", "store", {"traits": {"tier": "gold"}}),
        ("b-3", "aliased", "store", {"previous_id": "dev-1"}),
        ("b-4", "grouped", "store", {"group_id": "g-1", "traits": {}}),
    ]


# --- Segment's own SDK against a running server ------------------------------------------------


def test_segment_python_sdk_sends_to_rapport(live_server) -> None:
    from segment.analytics import Client
    from segment.analytics.version import VERSION

    # given an ingest key (as a site's pages carry: its orders and contact details are never
    # trusted, and its events say so in their source), and Segment's client pointed at Rapport
    with open_session(live_server.database_url) as db:
        secret = platform.create_api_key(db, name="sdk", scopes=[platform.Scope.INGEST]).secret
    sdk = Client(write_key=secret, host=live_server.base_url, sync_mode=True, max_retries=0)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    # when the shop's code makes one call of each kind
    sdk.identify("u-42", {"email": "ann@example.com"}, timestamp=at, message_id="sdk-1")
    sdk.track("u-42", "Product Viewed", {"sku": "W-1"}, timestamp=at, message_id="sdk-2")
    sdk.page(
        "u-42",
        "Shop",
        "Wok",
        {"url": "https://shop.example/p/W-1"},
        timestamp=at,
        message_id="sdk-3",
    )
    sdk.screen(
        "u-42",
        None,
        "Basket",
        {"items": 2},
        context={"app": {"name": "Shop"}},
        timestamp=at,
        message_id="sdk-4",
    )
    sdk.track("u-42", "Product Viewed", {"sku": "W-1"}, timestamp=at, message_id="sdk-2")

    # then Rapport stored exactly these four events, once each
    library = {"name": "analytics-python", "version": VERSION}
    with open_session(live_server.database_url) as db:
        stored = list(db.scalars(select(Event).order_by(Event.position)))
        rows = [
            (
                e.event_id,
                e.type,
                e.user_id,
                e.anonymous_id,
                e.channel,
                e.occurred_at,
                e.properties,
                e.context,
                e.source,
            )
            for e in stored
        ]
    assert rows == [
        (
            "sdk-1",
            "identified",
            "u-42",
            None,
            "web",
            at,
            {"traits": {"email": "ann@example.com"}},
            {"library": library},
            PUBLIC_SEGMENT_SOURCE,
        ),
        (
            "sdk-2",
            "product_viewed",
            "u-42",
            None,
            "web",
            at,
            {"sku": "W-1"},
            {"library": library},
            PUBLIC_SEGMENT_SOURCE,
        ),
        (
            "sdk-3",
            "page_viewed",
            "u-42",
            None,
            "web",
            at,
            {"url": "https://shop.example/p/W-1", "name": "Wok", "category": "Shop"},
            {"library": library, "page": {"url": "https://shop.example/p/W-1"}},
            PUBLIC_SEGMENT_SOURCE,
        ),
        (
            "sdk-4",
            "screen_viewed",
            "u-42",
            None,
            "app",
            at,
            {"items": 2, "name": "Basket"},
            {"app": {"name": "Shop"}, "library": library},
            PUBLIC_SEGMENT_SOURCE,
        ),
    ]
