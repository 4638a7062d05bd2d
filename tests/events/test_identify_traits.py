"""What an identify call's traits must be, checked when they arrive so the sender hears of
it: a birthday that is a real date, an email that is an address, an integer that fits in 64
bits (kept exactly as sent until checked, never read as a float nobody sent). A refused
message stores nothing; an earlier logged one is read as it is and changes no contact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.events.ingest import parse_body
from rapport.events.models import Event
from rapport.platform import clock
from tests.conftest import auth
from tests.customers.factories import process, track
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BIG = 123456789012345678901234567890


def _stored(db) -> int:  # type: ignore[no-untyped-def]
    return int(db.scalar(select(func.count()).select_from(Event)) or 0)


@pytest.mark.parametrize(
    ("_case", "traits", "field", "code"),
    [
        ("no 30th of February", {"birthday": "1985-02-30"}, "traits.birthday", "date_parsing"),
        ("a birthday to come", {"birthday": "2031-01-01"}, "traits.birthday", "date_parsing"),
        ("a birthday as a number", {"birthday": 19850201}, "traits.birthday", "date_parsing"),
        (
            "an email that is no address",
            {"email": "not-an-email"},
            "traits.email",
            "string_pattern_mismatch",
        ),
        ("a 30-digit integer", {"ltv": BIG}, "traits.ltv", "number_too_large"),
        ("below 64 bits", {"ltv": -(2**63) - 1}, "traits.ltv", "number_too_large"),
        ("nested in a list", {"codes": [1, BIG]}, "traits.codes", "number_too_large"),
    ],
)
def test_an_identify_call_with_a_trait_the_profile_cannot_keep_is_refused_naming_it(
    client, api_key, db, _case, traits, field, code
) -> None:
    clock.set_clock(lambda: NOW)
    secret = api_key("ingest")
    before = _stored(db)

    # when it is sent alone, and in a batch beside a valid message
    message: dict[str, Any] = {"userId": "u-9", "messageId": "m-1", "traits": traits}
    single = client.post("/v1/identify", json=message, headers=basic_auth(secret))
    good = {"type": "identify", "userId": "u-9", "messageId": "m-2", "traits": {"plan": "pro"}}
    batch = client.post(
        "/v1/batch",
        json={"batch": [{**message, "type": "identify"}, good]},
        headers=basic_auth(secret),
    )
    native = client.post(
        "/v1/events",
        json={
            "event_id": "e-1",
            "type": "identified",
            "customer_id": "u-9",
            "channel": "web",
            "occurred_at": NOW.isoformat(),
            "properties": {"traits": traits},
        },
        headers=auth(secret),
    )

    # then each refuses it naming the trait, and only the valid message is stored
    assert single.status_code == 422, single.text
    assert (single.json()["field"], single.json()["errors"][0]["code"]) == (field, code)
    assert batch.status_code == 200
    refused = batch.json()["errors"]
    assert [(e["field"], e["reason"]) for e in refused] == [(f"batch.0.{field}", code)]
    assert native.status_code == 422, native.text
    assert native.json()["field"] == f"properties.{field}"
    assert _stored(db) == before + 1


def test_a_valid_birthday_email_and_large_number_still_pass(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    secret = api_key("ingest")
    traits = {
        "birthday": "1985-02-28T00:00:00Z",
        "email": " Ann@Example.com ",
        "ltv": 2**63 - 1,
        "note": "order 1234567890123456789012345",
    }
    sent = client.post(
        "/v1/identify",
        json={"userId": "u-10", "messageId": "m-3", "traits": traits},
        headers=basic_auth(secret),
    )
    assert sent.status_code == 200, sent.text
    stored = db.scalar(select(Event).where(Event.user_id == "u-10"))
    assert stored is not None
    assert stored.properties["traits"] == traits


def test_a_tracks_context_traits_email_is_not_checked_as_it_is_never_used(
    client, api_key, db
) -> None:
    # an SDK copies the user's traits onto every call; only identify calls link an email
    clock.set_clock(lambda: NOW)
    secret = api_key("ingest")
    message = {
        "userId": "u-11",
        "event": "Product Viewed",
        "messageId": "m-4",
        "context": {"traits": {"email": "not-an-email"}},
    }
    assert client.post("/v1/track", json=message, headers=basic_auth(secret)).status_code == 200
    message = {**message, "messageId": "m-5", "context": {"traits": {"birthday": "1985-02-30"}}}
    refused = client.post("/v1/track", json=message, headers=basic_auth(secret))
    assert refused.status_code == 422
    assert refused.json()["field"] == "context.traits.birthday"


def test_an_email_logged_before_it_was_checked_does_not_replace_the_contact_email(db) -> None:
    # given a profile with a valid email, and an identify logged with one that is no address
    track(db, "identified", user_id="u-12", properties={"traits": {"email": "ann@example.com"}})
    process(db)
    track(db, "identified", user_id="u-12", properties={"traits": {"email": "not-an-email"}})

    # when it is processed
    process(db)

    # then the contact email stays, and no identity is made of the other
    customer = customers.find_customer(db, kind="external_id", value="u-12")
    assert customer is not None
    assert customer.email == "ann@example.com"
    assert customers.find_customer(db, kind="email", value="not-an-email") is None


def test_a_body_keeps_integers_beyond_64_bits_exact() -> None:
    assert parse_body(b'{"a": 123456789012345678901234567890, "b": 1.5}') == {
        "a": BIG,
        "b": 1.5,
    }
    assert parse_body(b'{"a": -9223372036854775809}') == {"a": -(2**63) - 1}
    assert parse_body(b'{"a": 12}') == {"a": 12}
