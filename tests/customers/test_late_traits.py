"""Out-of-order tracking: apps flush offline queues late, so an identify said earlier may
arrive after a newer one. Each profile field and custom trait keeps the value said last (by
the event's time), whatever order the calls arrive or are processed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rapport.customers import service as customers
from rapport.customers.models import Customer
from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import T0, process, track
from tests.events.factories import basic_auth

NEWER = {"email": "new@example.com", "firstName": "Newer", "plan": "new"}
OLDER = {"email": "old@example.com", "firstName": "Older", "lastName": "Only", "plan": "old"}


def _profile(db, user_id: str) -> Customer:  # type: ignore[no-untyped-def]
    customer = customers.find_customer(db, kind="external_id", value=user_id)
    assert customer is not None
    db.refresh(customer)
    return customer


def test_an_older_identify_arriving_late_keeps_the_newer_values(db) -> None:
    # given the newer identify applied first
    track(db, "identified", user_id="OO-1", at=T0, properties={"traits": NEWER})
    process(db)

    # when an identify said eleven months earlier arrives, and a page view as old
    track(
        db, "identified", user_id="OO-1", at=T0 - timedelta(days=330), properties={"traits": OLDER}
    )
    track(
        db,
        "page_viewed",
        user_id="OO-1",
        at=T0 - timedelta(days=300),
        context={"traits": {"firstName": "Oldest", "plan": "older"}},
    )
    process(db)

    # then every field the newer call said keeps its value; one only the older said is taken
    oo = _profile(db, "OO-1")
    assert (oo.email, oo.first_name, oo.last_name) == ("new@example.com", "Newer", "Only")
    assert oo.attributes == {"plan": "new"}
    # and the older email is still one of theirs, as an identity
    assert customers.find_customer(db, kind="email", value="old@example.com") == oo


def test_calls_in_their_own_order_still_take_the_latest(db) -> None:
    track(db, "identified", user_id="OO-2", at=T0 - timedelta(days=1), properties={"traits": OLDER})
    track(db, "identified", user_id="OO-2", at=T0, properties={"traits": NEWER})
    process(db)

    oo = _profile(db, "OO-2")
    assert (oo.email, oo.first_name, oo.last_name) == ("new@example.com", "Newer", "Only")
    assert oo.attributes == {"plan": "new"}


def test_sign_up_is_not_undone_by_an_identify_said_before_it(client, api_key, db) -> None:
    writer, ingest = api_key("write"), api_key("ingest")
    client.post(
        "/v1/customers",
        json={"external_id": "OO-3", "first_name": "Signed"},
        headers=command(writer),
    )
    said = (clock.now() - timedelta(days=2)).isoformat()
    client.post(
        "/v1/identify",
        json={"userId": "OO-3", "timestamp": said, "traits": {"firstName": "Before"}},
        headers=basic_auth(ingest),
    )
    process(db)

    assert _profile(db, "OO-3").first_name == "Signed"


def test_out_of_order_in_one_batch_and_across_batches(client, api_key, db) -> None:
    ingest, reader = api_key("ingest"), api_key("read")
    newer = (clock.now() - timedelta(hours=1)).isoformat()
    older = datetime(2026, 1, 1, tzinfo=UTC).isoformat()

    def identify(user: str, at: str, traits: dict, message: str) -> dict:  # type: ignore[type-arg]
        return {
            "type": "identify",
            "userId": user,
            "timestamp": at,
            "messageId": message,
            "traits": traits,
        }

    # given one batch holding the newer call before the older one
    sent = client.post(
        "/v1/batch",
        json={
            "batch": [
                identify("OO-4", newer, NEWER, "b-1"),
                identify("OO-4", older, OLDER, "b-2"),
                identify("OO-5", newer, {**NEWER, "email": "new5@example.com"}, "b-3"),
            ]
        },
        headers=basic_auth(ingest),
    )
    assert sent.status_code == 200
    process(db)
    # and the older call for OO-5 in a batch of its own, after the newer was applied
    client.post(
        "/v1/batch",
        json={"batch": [identify("OO-5", older, {**OLDER, "email": "old5@example.com"}, "b-4")]},
        headers=basic_auth(ingest),
    )
    process(db)

    # then both read as the newer call said
    for user, email in (("OO-4", "new@example.com"), ("OO-5", "new5@example.com")):
        profile = client.get(f"/v1/customers/{user}", headers=auth(reader)).json()
        assert (profile["email"], profile["first_name"], profile["attributes"]) == (
            email,
            "Newer",
            {"plan": "new"},
        )


def test_a_merged_visitors_values_keep_their_times(db) -> None:
    # given a visitor who said their plan and city, then signed in: the profiles merged
    track(
        db,
        "page_viewed",
        anonymous_id="anon-oo",
        at=T0,
        context={"traits": {"plan": "new", "address": {"city": "Utrecht"}}},
    )
    process(db)
    track(db, "identified", user_id="OO-6", anonymous_id="anon-oo", at=T0 + timedelta(minutes=1))
    process(db)
    assert _profile(db, "OO-6").attributes["plan"] == "new"

    # when a call said before them arrives late
    track(
        db,
        "page_viewed",
        user_id="OO-6",
        at=T0 - timedelta(days=30),
        context={"traits": {"plan": "old", "address": {"city": "Delft"}}},
    )
    process(db)

    # then the visitor's values stand
    oo = _profile(db, "OO-6")
    assert (oo.attributes["plan"], oo.home_city) == ("new", "Utrecht")
