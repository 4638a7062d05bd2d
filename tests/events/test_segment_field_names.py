"""A refused Segment message names the field as the sender sent it (``userId``,
``traits.plan``), once per field, on the single calls, in ``/v1/batch`` and on the admin page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from rapport.events.models import DeadLetter, Event
from tests.events.factories import basic_auth

NUL = "\u0000"


@pytest.mark.parametrize(
    ("path", "message", "field"),
    [
        ("/v1/track", {"event": "A B", "userId": f"u{NUL}1"}, "userId"),
        ("/v1/track", {"event": "A B", "anonymousId": f"a{NUL}"}, "anonymousId"),
        ("/v1/track", {"event": "A B", "userId": "u", "messageId": f"m{NUL}"}, "messageId"),
        ("/v1/track", {"event": f"Nul{NUL}Test", "userId": "u"}, "event"),
        (
            "/v1/track",
            {"event": "A B", "userId": "u", "properties": {"sku": f"W{NUL}"}},
            "properties.sku",
        ),
        (
            "/v1/track",
            {"event": "A B", "userId": "u", "context": {"page": {"url": f"x{NUL}"}}},
            "context.page.url",
        ),
        ("/v1/identify", {"userId": "u", "traits": {"plan": f"p{NUL}"}}, "traits.plan"),
        ("/v1/identify", {"userId": "u", "traits": {"tags": ["a", f"b{NUL}"]}}, "traits.tags.1"),
        ("/v1/page", {"userId": "u", "name": f"Home{NUL}"}, "name"),
        ("/v1/alias", {"userId": "u", "previousId": f"p{NUL}"}, "previousId"),
        ("/v1/group", {"userId": "u", "groupId": f"g{NUL}"}, "groupId"),
        ("/v1/track", {"event": "A B", "userId": "u" * 5000}, "userId"),
        ("/v1/track", {"event": "A B", "userId": True}, "userId"),
    ],
)
def test_a_single_call_names_the_segment_field(client, api_key, db, path, message, field) -> None:
    # when a call with one bad field is sent
    response = client.post(path, json=message, headers=basic_auth(api_key("ingest")))

    # then it is refused naming that field as sent, once, and nothing is stored
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field
    assert [error["field"] for error in problem["errors"]] == [field]
    assert list(db.scalars(select(Event))) == []


def test_a_batch_names_each_refused_message_s_field_as_sent(client, api_key, db) -> None:
    # given a batch whose messages each have one bad field
    body = {
        "batch": [
            {"type": "track", "event": "A B", "userId": "u", "messageId": f"m{NUL}1"},
            {"type": "identify", "userId": "u", "traits": {"plan": f"p{NUL}"}},
            {"type": "page", "userId": "u", "name": f"p{NUL}"},
            {"type": "track", "event": "A B", "userId": "u" * 5000},
            {"type": "track", "event": "A B", "userId": "u", "messageId": "m" * 5000},
            {"type": "track", "event": f"Nul{NUL}Test", "userId": "u"},
            {"type": "track", "event": "A B", "userId": "u", "messageId": "ok-1"},
        ]
    }

    # when it is sent
    response = client.post("/v1/batch", json=body, headers=basic_auth(api_key("ingest")))

    # then each refusal names the message's own field, once
    answer = response.json()
    assert (response.status_code, answer["accepted"], answer["rejected"]) == (200, 1, 6)
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [
        ("batch.0.messageId", "nul_character"),
        ("batch.1.traits.plan", "nul_character"),
        ("batch.2.name", "nul_character"),
        ("batch.3.userId", "string_too_long"),
        ("batch.4.messageId", "string_too_long"),
        ("batch.5.event", "nul_character"),
    ]
    # and the Tracking page's store keeps the same names
    kept = db.scalars(select(DeadLetter.field).order_by(DeadLetter.item_index))
    assert list(kept) == ["messageId", "traits.plan", "name", "userId", "messageId", "event"]
    assert list(db.scalars(select(Event.event_id))) == ["ok-1"]


def test_an_integer_user_id_is_still_taken(client, api_key, db) -> None:
    response = client.post(
        "/v1/track", json={"event": "A B", "userId": 4711}, headers=basic_auth(api_key("ingest"))
    )
    assert response.status_code == 200, response.text
    assert list(db.scalars(select(Event.user_id))) == ["4711"]
