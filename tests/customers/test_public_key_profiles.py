"""What the public tracking key (ingest-only, readable by anyone in a shop's pages) may do to
a customer profile beyond their contact details: it may fill a trait the profile lacks and
update one it set itself, never replace what a trusted source (a key that may write, the
admin, an import) said; and a profile only it ever wrote is adopted by the shop's sign-up."""

from __future__ import annotations

from typing import Any

from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth


def _identify(client, secret: str, traits: dict[str, Any], user_id: str = "C0000002", **more):  # type: ignore[no-untyped-def]
    message = {
        "type": "identify",
        "userId": user_id,
        "messageId": f"m-{clock.now().timestamp()}-{sorted(traits)}",
        "traits": traits,
        **more,
    }
    answer = client.post("/v1/identify", json=message, headers=basic_auth(secret))
    assert answer.status_code == 200, answer.text


def _group(client, secret: str, group_id: str, user_id: str = "C0000002") -> None:  # type: ignore[no-untyped-def]
    message = {"userId": user_id, "groupId": group_id, "messageId": f"g-{group_id}"}
    answer = client.post("/v1/group", json=message, headers=basic_auth(secret))
    assert answer.status_code == 200, answer.text


def _profile(client, reader: str, ref: str = "C0000002") -> dict[str, Any]:  # type: ignore[no-untyped-def]
    found = client.get(f"/v1/customers/{ref}", headers=auth(reader))
    assert found.status_code == 200, found.text
    return found.json()


def _known(client, writer: str, **fields: Any) -> None:  # type: ignore[no-untyped-def]
    body = {"external_id": "C0000002", "email": "vic@example.com", **fields}
    created = client.post("/v1/customers", json=body, headers=command(writer))
    assert created.status_code == 201, created.text


TRUSTED = {"address": {"city": "Lyon"}, "timezone": "Europe/Paris", "tier_hint": "gold"}
FORGED = {"address": {"city": "Lille"}, "timezone": "America/New_York", "tier_hint": "none"}


def test_the_public_key_cannot_replace_what_the_shop_said(client, api_key, db) -> None:
    # given a known customer whose city, zone, a custom trait and group the shop's server set
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    server = api_key("ingest", "write")
    _known(client, writer)
    _identify(client, server, TRUSTED)
    _group(client, server, "household-1")
    process(db)

    # when someone with the page's key says other values
    _identify(client, public, FORGED)
    _group(client, public, "household-evil")
    process(db)

    # then the customer keeps the shop's values
    profile = _profile(client, reader)
    assert (profile["home_city"], profile["time_zone"]) == ("Lyon", "Europe/Paris")
    assert profile["attributes"]["tier_hint"] == "gold"
    assert profile["group_id"] == "household-1"


def test_the_public_key_fills_what_is_empty_and_updates_its_own(client, api_key, db) -> None:
    # given a known customer with no city, zone, custom trait or group
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _known(client, writer)

    # when the page's key says them, and later changes them (the visitor's own choice) ...
    _identify(client, public, {**TRUSTED, "newsletter_language": "fr"})
    _group(client, public, "household-1")
    process(db)
    filled = _profile(client, reader)
    _identify(client, public, {**FORGED, "newsletter_language": "de"})
    process(db)

    # then the page filled them, and may change what it said itself
    assert (filled["home_city"], filled["time_zone"]) == ("Lyon", "Europe/Paris")
    assert filled["group_id"] == "household-1"
    profile = _profile(client, reader)
    assert (profile["home_city"], profile["time_zone"]) == ("Lille", "America/New_York")
    assert profile["attributes"]["newsletter_language"] == "de"

    # ... until the shop's server says a value: the page no longer replaces it
    server = api_key("ingest", "write")
    _identify(client, server, {"address": {"city": "Nantes"}})
    process(db)
    _identify(client, public, {"address": {"city": "Brest"}})
    process(db)
    assert _profile(client, reader)["home_city"] == "Nantes"


def test_the_shop_adopts_a_customer_number_only_the_public_key_named(client, api_key, db) -> None:
    # given a profile the page's key made for an unused customer number
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _identify(
        client,
        public,
        {"email": "squatter@evil.io", "firstName": "Squat", **FORGED},
        user_id="C0009999",
        anonymousId="anon-squatter",
    )
    process(db)
    squatted = _profile(client, reader, "C0009999")

    # when the shop signs the real customer up under that number
    body = {"external_id": "C0009999", "email": "real@example.com", "first_name": "Rea"}
    answer = client.post("/v1/customers", json=body, headers=command(writer))

    # then the profile is theirs: the shop's fields replace the page's, whose contact and
    # visitor id are no way to find them any more, and the history says so
    assert answer.status_code == 201, answer.text
    profile = _profile(client, reader, "C0009999")
    assert profile["customer_id"] == squatted["customer_id"]
    assert (profile["email"], profile["first_name"], profile["home_city"]) == (
        "real@example.com",
        "Rea",
        None,
    )
    assert profile["time_zone"] is None
    assert "tier_hint" not in profile["attributes"]
    assert sorted(i["value"] for i in profile["identities"]) == ["C0009999", "real@example.com"]
    lookup = {"kind": "email", "value": "squatter@evil.io"}
    found = client.get("/v1/customers/lookup", params=lookup, headers=auth(reader))
    assert found.status_code == 404
    timeline = client.get(f"/v1/customers/{profile['customer_id']}/timeline", headers=auth(reader))
    assert "customer_created" in [e["type"] for e in timeline.json()]

    # and a second sign-up under that number is a conflict, as for any customer
    again = client.post(
        "/v1/customers", json={**body, "email": "other@example.com"}, headers=command(writer)
    )
    assert again.status_code == 409, again.text


def test_a_profile_the_shop_wrote_is_never_adopted(client, api_key, db) -> None:
    # given a number the page's key named first, then the shop's server identified
    writer, public = api_key("write"), api_key("ingest")
    server = api_key("ingest", "write")
    _identify(client, public, {"email": "someone@example.com"}, user_id="C0009998")
    process(db)
    _identify(client, server, {"firstName": "Sam"}, user_id="C0009998")
    process(db)

    # when a sign-up names that number, it is a conflict as before
    body = {"external_id": "C0009998", "email": "other@example.com"}
    answer = client.post("/v1/customers", json=body, headers=command(writer))
    assert answer.status_code == 409, answer.text


def _track(client, secret: str, event: str, properties: dict[str, Any], **who: Any) -> None:  # type: ignore[no-untyped-def]
    message = {"event": event, "properties": properties, "messageId": f"t-{event}", **who}
    answer = client.post("/v1/track", json=message, headers=basic_auth(secret))
    assert answer.status_code == 200, answer.text


def test_an_adopted_profile_keeps_nothing_the_page_said(client, api_key, db) -> None:
    # given a profile the page's key made, with the visitor's consent and browsing
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    page = {"userId": "C0009600", "anonymousId": "nz1"}
    _identify(client, public, {"email": "page@evil.io"}, user_id="C0009600", anonymousId="nz1")
    _track(
        client, public, "Consent Changed", {"purpose": "personalization", "granted": True}, **page
    )
    _track(client, public, "Product Viewed", {"category": "Pharmacy/Pregnancy"}, **page)
    process(db)
    squatted = _profile(client, reader, "C0009600")
    assert [c["purpose"] for c in squatted["consents"]] == ["personalization"]
    assert squatted["traits"]["favourite_categories"] == ["Pharmacy/Pregnancy"]

    # when the shop signs the real customer up under that number, with the consent it asked
    body = {
        "external_id": "C0009600",
        "email": "real9600@shop.test",
        "first_name": "Real",
        "consents": {"analytics": True},
    }
    answer = client.post("/v1/customers", json=body, headers=command(writer))
    assert answer.status_code == 201, answer.text

    # then none of the page's consents, traits or events is the customer's
    profile = _profile(client, reader, "C0009600")
    assert profile["customer_id"] == squatted["customer_id"]
    assert [(c["purpose"], c["granted"]) for c in profile["consents"]] == [("analytics", True)]
    assert not (profile["traits"] or {}).get("favourite_categories")
    timeline = client.get(f"/v1/customers/{profile['customer_id']}/timeline", headers=auth(reader))
    assert [e["type"] for e in timeline.json()] == ["customer_created"]


def test_a_page_identify_queued_before_the_adoption_is_not_applied(client, api_key, db) -> None:
    # given a page's identify of an unused number, waiting in the worker's queue
    writer, reader, public = api_key("write"), api_key("read"), api_key("ingest")
    _identify(client, public, {"email": "page@evil.io"}, user_id="C0009601", anonymousId="y1")
    process(db)
    _identify(client, public, {"plan": "evil"}, user_id="C0009601", anonymousId="y2")

    # when the shop adopts the number and the worker then runs
    body = {"external_id": "C0009601", "email": "real9601@shop.test"}
    answer = client.post("/v1/customers", json=body, headers=command(writer))
    assert answer.status_code == 201, answer.text
    process(db)

    # then the queued identify neither links the visitor nor sets the trait
    profile = _profile(client, reader, "C0009601")
    assert "plan" not in profile["attributes"]
    assert sorted(i["value"] for i in profile["identities"]) == ["C0009601", "real9601@shop.test"]
    lookup = {"kind": "anonymous_id", "value": "y2"}
    found = client.get("/v1/customers/lookup", params=lookup, headers=auth(reader))
    assert found.status_code == 404 or found.json()["customer_id"] != profile["customer_id"]
