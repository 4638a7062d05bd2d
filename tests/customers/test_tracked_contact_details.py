"""A tracked identify's contact email and phone obey the rule the API's identities obey
(platform.identity): a phone is kept as the + number it is (``+33 6 11 22 33 46`` and
``0033 6 11 22 33 45`` as ``+33…``, the form its identity has); a national number (06 …, no
country) or one the API cannot read is refused naming ``traits.phone``, and one logged
before ingestion refused it is left out of the profile, as an email the API would refuse."""

from __future__ import annotations

import pytest

from tests.conftest import auth
from tests.customers.factories import process, track
from tests.events.factories import basic_auth


def _send(client, secret: str, route: str, user_id: str, traits: dict):  # type: ignore[no-untyped-def]
    call = {"userId": user_id, "messageId": f"m-{user_id}", "traits": traits}
    body = {"batch": [{**call, "type": "identify"}]} if route == "/v1/batch" else call
    return client.post(route, json=body, headers=basic_auth(secret))


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch"])
def test_a_tracked_phone_is_kept_in_the_form_of_its_identity(client, api_key, db, route) -> None:
    ingest, reader = api_key("ingest"), api_key("read")
    for user_id, phone in (("INTP-1", "0033 6 11 22 33 45"), ("INTP-2", "+33 6 11 22 33 46")):
        sent = _send(client, ingest, route, user_id, {"phone": phone})
        assert sent.status_code == 200, sent.text
    process(db)

    for user_id, number in (("INTP-1", "+33611223345"), ("INTP-2", "+33611223346")):
        profile = client.get(f"/v1/customers/{user_id}", headers=auth(reader)).json()
        assert profile["phone"] == number
        assert {(i["kind"], i["value"]) for i in profile["identities"]} == {
            ("external_id", user_id),
            ("phone", number),
        }


@pytest.mark.parametrize(
    ("phone", "says"),
    [
        ("06 11 22 33 44", "international form"),
        ("+06 11 22 33 44", "international form"),
        ("call me", "not a phone number"),
        (33611223344, "as text"),
    ],
)
def test_a_national_or_unreadable_tracked_phone_is_refused_naming_it(
    client, api_key, db, phone, says
) -> None:
    ingest = api_key("ingest")
    single = _send(client, ingest, "/v1/identify", "NATP-1", {"phone": phone, "firstName": "Nat"})
    assert single.status_code == 422, single.text
    assert single.json()["field"] == "traits.phone"
    assert single.json()["errors"][0]["code"] == "string_pattern_mismatch"
    assert says in single.json()["detail"]
    batch = _send(client, ingest, "/v1/batch", "NATP-1", {"phone": phone})
    assert [(e["field"], e["reason"]) for e in batch.json()["errors"]] == [
        ("batch.0.traits.phone", "string_pattern_mismatch")
    ]


def test_a_national_phone_logged_before_it_was_refused_is_no_contact_phone(
    client, api_key, db
) -> None:
    reader = api_key("read")
    for user_id, phone in (("OLD-1", "06 11 22 33 44"), ("OLD-2", "+06 11 22 33 44")):
        track(
            db,
            "identified",
            user_id=user_id,
            properties={"traits": {"phone": phone, "firstName": "Nat"}},
        )
    track(db, "identified", user_id="OLD-3", properties={"traits": {"phone": "call me"}})
    process(db)

    national = client.get("/v1/customers/OLD-1", headers=auth(reader)).json()
    assert (national["phone"], national["first_name"]) == (None, "Nat")
    assert [i["kind"] for i in national["identities"]] == ["external_id"]
    for other in ("OLD-2", "OLD-3"):
        assert client.get(f"/v1/customers/{other}", headers=auth(reader)).json()["phone"] is None
