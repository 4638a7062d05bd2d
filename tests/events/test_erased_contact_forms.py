"""An erased person's email is refused however it is written and wherever an event carries
it: full-width (U+FF20, folded by NFKC as identities are) under any key, as ``mailto:`` or
``Name <address>``, and anywhere in a Segment call's ``context`` (``context.email``,
``context.user.email``, ``context.externalIds``, a page URL's ``?email=``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rapport.events import service as events
from rapport.platform import clock
from rapport.platform.identity import identity_digest
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WHEN = (NOW - timedelta(minutes=1)).isoformat()
ERASED = "zoe.phone@example.com"


@pytest.fixture
def erased(db):  # type: ignore[no-untyped-def]
    clock.set_clock(lambda: NOW)
    events.suppress_identities(db, digests=[identity_digest("email", ERASED)])
    db.commit()


WRITTEN: list[tuple[dict[str, Any], str]] = [
    ({"subscriber": "ZOE.PHONE\uff20EXAMPLE.COM"}, "properties.subscriber"),
    ({"subscriber": "zoe.phone\ufe6bexample.com"}, "properties.subscriber"),
    ({"link": "mailto:zoe.phone@example.com?subject=hi"}, "properties.link"),
    ({"to": "Zoe Phone <zoe.phone@example.com>"}, "properties.to"),
    ({"cc": "bob@example.com, Zoe <zoe.phone@example.com>"}, "properties.cc"),
]


@pytest.mark.usefixtures("erased")
@pytest.mark.parametrize(("properties", "field"), WRITTEN)
def test_an_erased_email_written_otherwise_is_refused(
    client, api_key, db, properties, field
) -> None:
    # when a Segment track from the public key carries the erased email written otherwise
    track = {"anonymousId": "fw2", "event": "Newsletter Signup", "properties": properties}
    answer = client.post("/v1/t", json=track, headers=basic_auth(api_key("ingest")))

    # then it is refused naming where it sits, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert (answer.json()["field"], answer.json()["errors"][0]["code"]) == (field, "suppressed")
    assert events.count_events(db) == 0


IN_CONTEXT: list[tuple[dict[str, Any], str]] = [
    ({"externalIds": [{"id": ERASED, "type": "email"}]}, "context.externalIds.0.id"),
    ({"email": ERASED}, "context.email"),
    ({"user": {"email": ERASED}}, "context.user.email"),
    (
        {"page": {"url": "https://shop.example/welcome?email=zoe.phone%40example.com"}},
        "context.page.url?email",
    ),
    ({"page": {"search": "?ref=mail&email=zoe.phone@example.com"}}, "context.page.search?email"),
]


@pytest.mark.usefixtures("erased")
@pytest.mark.parametrize(("context", "field"), IN_CONTEXT)
def test_an_erased_email_in_context_is_refused(client, api_key, db, context, field) -> None:
    # when a Segment track carries the erased email in its context
    track = {"anonymousId": "fw2", "event": "Page Viewed", "context": context}
    answer = client.post("/v1/track", json=track, headers=basic_auth(api_key("ingest")))

    # then it is refused naming where it sits, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert (answer.json()["field"], answer.json()["errors"][0]["code"]) == (field, "suppressed")
    assert events.count_events(db) == 0


@pytest.mark.usefixtures("erased")
def test_an_erased_email_in_a_native_events_context_is_refused(client, api_key, db) -> None:
    # when POST /v1/events carries it in a page URL of its context
    event = {
        "event_id": "e-1",
        "type": "page_viewed",
        "channel": "web",
        "occurred_at": WHEN,
        "anonymous_id": "anon-1",
        "context": {"page": {"url": f"https://shop.example/?email={ERASED}"}},
    }
    answer = client.post("/v1/events", json=event, headers=auth(api_key("ingest")))

    # then it is refused, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["code"] == "suppressed"
    assert events.count_events(db) == 0


@pytest.mark.usefixtures("erased")
def test_other_people_and_plain_context_are_stored(client, api_key, db) -> None:
    # when an event names someone else in these forms and carries an ordinary context
    track = {
        "anonymousId": "fw2",
        "event": "Newsletter Signup",
        "properties": {"subscriber": "BOB\uff20EXAMPLE.COM", "to": "Bob <bob@example.com>"},
        "context": {
            "page": {"url": "https://shop.example/?email=bob%40example.com&utm_source=mail"},
            "userAgent": "Mozilla/5.0",
            "device": {"type": "mobile"},
        },
    }
    answer = client.post("/v1/track", json=track, headers=basic_auth(api_key("ingest")))

    # then it is stored
    assert answer.status_code == 200, answer.text
    assert events.count_events(db) == 1
