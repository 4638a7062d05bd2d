"""No silent loss in tracking: messages refused inside a batch are answered (200, with counts
and reasons), counted in /metrics by reason, logged, kept in a bounded dead-letter store that
erasure reaches, and listed on an admin page."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rapport.events import service as events
from rapport.events.models import DeadLetter
from rapport.main import create_app
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import get_db
from rapport.platform.identity import identity_digest
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "messageId": message_id,
        "userId": "u-1",
        "event": "Product Viewed",
        "timestamp": (NOW - timedelta(minutes=1)).isoformat(),
    }
    message.update(fields)
    return message


def rejected_count(client: TestClient, reason: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'rapport_tracking_rejected_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def kept(db) -> list[DeadLetter]:  # type: ignore[no-untyped-def]
    return list(db.scalars(select(DeadLetter).order_by(DeadLetter.id)))


@pytest.fixture
def settings_with(settings, db):  # type: ignore[no-untyped-def]
    """A client of an app built with some settings changed."""
    clients: list[TestClient] = []

    def make(**changes: Any) -> TestClient:
        application = create_app(settings.model_copy(update=changes), run_worker=False)
        application.dependency_overrides[get_db] = lambda: db
        test_client = TestClient(application, raise_server_exceptions=False)
        clients.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


def test_segment_batch_answers_what_was_rejected_and_keeps_it(client, api_key, db, caplog) -> None:
    # given a batch with a valid message, an event name too long to be one, and a timestamp
    # ten minutes ahead
    clock.set_clock(lambda: NOW)
    secret = api_key("ingest")
    key_id = platform.authenticate_api_key(db, secret=secret).id  # type: ignore[union-attr]
    ahead = (NOW + timedelta(minutes=10)).isoformat()
    batch = [
        track("m-0"),
        track("m-1", event="x" * 201),
        track("m-2", timestamp=ahead, anonymousId="anon-2"),
    ]
    before = {r: rejected_count(client, r) for r in ("string_too_long", "clock_skew")}

    # when it is sent
    with caplog.at_level(logging.WARNING, logger="rapport.events.dead_letters"):
        response = client.post("/v1/batch", json={"batch": batch}, headers=basic_auth(secret))

    # then the answer stays 200 (Segment clients resend anything else) and says what was lost
    assert response.status_code == 200
    answer = response.json()
    assert (answer["success"], answer["accepted"], answer["rejected"]) == (True, 1, 2)
    assert [(e["index"], e["reason"], e["field"]) for e in answer["errors"]] == [
        (1, "string_too_long", "batch.1.event"),
        (2, "clock_skew", "batch.2.timestamp"),
    ]
    # and both are kept with their reason, field, sender and the message itself
    rows = kept(db)
    assert [(r.item_index, r.reason, r.field, r.event_id) for r in rows] == [
        (1, "string_too_long", "event", "m-1"),
        (2, "clock_skew", "timestamp", "m-2"),
    ]
    assert {(r.endpoint, r.api_key_id, r.customer_ref) for r in rows} == {
        ("/v1/batch", key_id, "u-1")
    }
    assert rows[1].anonymous_id == "anon-2"
    assert '"messageId":"m-2"' in (rows[1].raw or "")
    assert ahead in (rows[1].raw or "")
    # and counted by reason, and logged
    assert rejected_count(client, "string_too_long") == before["string_too_long"] + 1
    assert rejected_count(client, "clock_skew") == before["clock_skew"] + 1
    assert any("2 of 3 messages rejected" in r.getMessage() for r in caplog.records)


def test_native_batch_keeps_its_rejected_events(client, api_key, db) -> None:
    # given a native batch with an unknown channel and a time ahead
    clock.set_clock(lambda: NOW)
    good = {
        "event_id": "e-0",
        "type": "product_viewed",
        "customer_id": "C-1",
        "channel": "web",
        "occurred_at": NOW.isoformat(),
    }
    batch = [
        good,
        {**good, "event_id": "e-1", "channel": "fax"},
        {**good, "event_id": "e-2", "occurred_at": (NOW + timedelta(hours=1)).isoformat()},
    ]

    # when it is sent
    response = client.post(
        "/v1/events/batch", json={"events": batch}, headers=auth(api_key("ingest"))
    )

    # then the rejected ones are kept with their reason
    assert response.status_code == 200
    assert response.json()["rejected"] == 2
    assert [(r.endpoint, r.item_index, r.reason, r.field, r.customer_ref) for r in kept(db)] == [
        ("/v1/events/batch", 1, "literal_error", "channel", "C-1"),
        ("/v1/events/batch", 2, "clock_skew", "occurred_at", "C-1"),
    ]


def test_a_batch_without_rejections_keeps_nothing(client, api_key, db) -> None:
    # when an all-valid batch is sent
    clock.set_clock(lambda: NOW)
    response = client.post(
        "/v1/batch",
        json={"batch": [track("m-0"), track("m-1")]},
        headers=basic_auth(api_key("ingest")),
    )

    # then nothing is kept or listed
    assert response.json() == {
        "success": True,
        "accepted": 2,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
    }
    assert kept(db) == []


def test_the_store_keeps_only_the_newest_and_cuts_large_messages(
    settings_with, api_key, db
) -> None:
    # given a store of 3 dead letters of at most 300 bytes each
    clock.set_clock(lambda: NOW)
    client = settings_with(dead_letter_limit=3, dead_letter_max_bytes=300)
    secret = api_key("ingest")

    # when two batches bring 5 rejected messages, one of them large
    big = track("m-big", event="", properties={"text": "y" * 5000})
    client.post(
        "/v1/batch", json={"batch": [track("m-1", event=""), big]}, headers=basic_auth(secret)
    )
    client.post(
        "/v1/batch",
        json={"batch": [track(f"m-{n}", event="") for n in (3, 4, 5)]},
        headers=basic_auth(secret),
    )

    # then only the newest three are kept
    rows = kept(db)
    assert [r.event_id for r in rows] == ["m-3", "m-4", "m-5"]
    # and a large message is cut, and says so
    client.post("/v1/batch", json={"batch": [big]}, headers=basic_auth(secret))
    newest = kept(db)[-1]
    assert newest.event_id == "m-big"
    assert newest.truncated
    assert newest.raw is not None
    assert len(newest.raw.encode()) <= 300


def test_nul_characters_are_kept_on_every_database(client, api_key, db) -> None:
    # when a rejected message carries NUL characters in its ids and body
    clock.set_clock(lambda: NOW)
    message = track("m-\x00", userId="u\x00-1", event="", properties={"a\x00": "b\x00"})
    response = client.post(
        "/v1/batch", json={"batch": [message]}, headers=basic_auth(api_key("ingest"))
    )

    # then it is answered and kept (PostgreSQL stores no NUL in text)
    assert response.status_code == 200
    (row,) = kept(db)
    assert row.customer_ref == "u\ufffd-1"
    assert "\\u0000" in (row.raw or "")


def test_erasure_removes_the_persons_dead_letters(client, api_key, db) -> None:
    # given dead letters naming a person by user id, by anonymous id and by email in traits,
    # and one of somebody else
    clock.set_clock(lambda: NOW)
    batch = [
        track("m-1", event="", userId="ann-1"),
        track("m-2", event="", userId=None, anonymousId="ann-device"),
        {
            "type": "identify",
            "messageId": "m-3",
            "userId": "shared-till",
            "traits": {"email": "ann@example.com"},
            "timestamp": "not a time",
        },
        track("m-4", event="", userId="bob-1"),
    ]
    client.post("/v1/batch", json={"batch": batch}, headers=basic_auth(api_key("ingest")))
    assert len(kept(db)) == 4

    # when the erasure workflow erases Ann's identities
    removed = events.erase_dead_letters(db, ["ann-1", "ann-device", "ann@example.com"])
    db.commit()

    # then only Bob's dead letter is left
    assert removed == 3
    assert [r.event_id for r in kept(db)] == ["m-4"]


def test_an_erased_persons_rejected_message_is_kept_without_them(client, api_key, db) -> None:
    # given an erased person
    events.suppress_identities(db, digests=[identity_digest("external_id", "gone-1")])
    db.commit()

    # when a malformed message of theirs arrives in a batch
    clock.set_clock(lambda: NOW)
    client.post(
        "/v1/batch",
        json={"batch": [track("m-1", event="", userId="gone-1")]},
        headers=basic_auth(api_key("ingest")),
    )

    # then only the fact and the reason are kept
    (row,) = kept(db)
    assert (row.reason, row.customer_ref, row.event_id, row.raw) == (
        "string_too_short",
        None,
        None,
        None,
    )


def test_single_calls_refused_are_counted(client, api_key) -> None:
    # when a single track call and a single event are refused
    clock.set_clock(lambda: NOW)
    secret = api_key("ingest")
    before = rejected_count(client, "string_too_short")
    ahead = rejected_count(client, "clock_skew")
    assert (
        client.post(
            "/v1/track", json=track("m-1", event=""), headers=basic_auth(secret)
        ).status_code
        == 422
    )
    event = {
        "event_id": "e-1",
        "type": "product_viewed",
        "customer_id": "C-1",
        "channel": "web",
        "occurred_at": (NOW + timedelta(hours=1)).isoformat(),
    }
    assert client.post("/v1/events", json=event, headers=auth(secret)).status_code == 422

    # then both are counted by reason
    assert rejected_count(client, "string_too_short") == before + 1
    assert rejected_count(client, "clock_skew") == ahead + 1


@pytest.fixture
def signed_in(client, db) -> TestClient:  # type: ignore[no-untyped-def]
    platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
    page = client.get("/admin/login").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    client.post(
        "/admin/login",
        data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": match.group(1)},
        follow_redirects=False,
    )
    return client


def test_admin_page_lists_rejected_messages_by_reason(signed_in, api_key) -> None:
    # given two rejected messages of different reasons
    clock.set_clock(lambda: NOW)
    ahead = (NOW + timedelta(minutes=10)).isoformat()
    signed_in.post(
        "/v1/batch",
        json={"batch": [track("m-1", event=""), track("m-2", timestamp=ahead)]},
        headers=basic_auth(api_key("ingest")),
    )

    # when the tracking page is opened, then filtered to one reason
    page = signed_in.get("/admin/events/rejected")
    only = signed_in.get("/admin/events/rejected", params={"reason": "clock_skew"})

    # then it lists both with their reasons, and the filter only one
    assert page.status_code == 200
    assert 'href="/admin/events/rejected"' in signed_in.get("/admin/settings").text
    assert "m-1" in page.text
    assert "m-2" in page.text
    assert ">string_too_short<" in page.text
    assert ">clock_skew<" in page.text
    assert "m-2" in only.text
    # (the message id's cell: a random CSRF token may spell m-1)
    assert '<span title="m-1">m-1</span>' not in only.text
    assert '<span title="m-1">m-1</span>' in page.text


def test_admin_page_needs_a_signed_in_admin(client) -> None:
    response = client.get("/admin/events/rejected", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")
