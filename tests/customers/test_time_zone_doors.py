"""A customer's time zone, which quiet hours read, is set where a shop knows it: sign-up's
``time_zone``, an identify call's ``timezone`` trait (Segment's reserved name) and any call's
``context.timezone`` (the device's zone Segment's SDKs send), the one said last winning. An
unknown zone is refused naming the field, but for a device's, which is passed over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rapport.customers import service as customers
from tests.conftest import auth, command
from tests.customers.factories import T0, process, track
from tests.events.factories import basic_auth


def test_sign_up_takes_a_time_zone_and_shows_it(client, api_key, db) -> None:
    created = client.post(
        "/v1/customers",
        json={"external_id": "TZ-1", "time_zone": "Asia/Tokyo"},
        headers=command(api_key("write")),
    )
    assert created.status_code == 201, created.text
    assert created.json()["time_zone"] == "Asia/Tokyo"
    read = client.get("/v1/customers/TZ-1", headers=auth(api_key("read")))
    assert read.json()["time_zone"] == "Asia/Tokyo"
    exported = client.get("/v1/customers/TZ-1/export", headers=auth(api_key("admin")))
    assert exported.json()["customer"]["time_zone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons",
        "+09:00",
        "../../etc/passwd",
        # files zoneinfo opens that are no place's zone: the pseudo-zones and the copies
        "localtime",
        "posixrules",
        "Factory",
        "posix/Europe/Paris",
        "right/UTC",
    ],
)
def test_sign_up_refuses_an_unknown_time_zone_naming_it(client, api_key, db, zone) -> None:
    refused = client.post(
        "/v1/customers", json={"time_zone": zone}, headers=command(api_key("write"))
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["field"] == "time_zone"
    assert "IANA" in refused.json()["detail"]
    assert customers.count_customers(db) == 0


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+2", "America/Argentina/Buenos_Aires"])
def test_sign_up_takes_utc_etc_and_deep_zones(client, api_key, db, zone) -> None:
    created = client.post(
        "/v1/customers", json={"time_zone": zone}, headers=command(api_key("write"))
    )
    assert created.status_code == 201, created.text
    assert created.json()["time_zone"] == zone


@pytest.mark.parametrize("route", ["/v1/identify", "/v1/batch"])
def test_an_identify_calls_timezone_trait_is_the_time_zone(client, api_key, db, route) -> None:
    # given identify calls, one with a zone zoneinfo knows and one with a zone it does not
    ingest = api_key("ingest")
    for user_id, zone in (("TZI-1", "Asia/Tokyo"), ("TZI-2", "Mars/Olympus_Mons")):
        call = {"userId": user_id, "messageId": f"m-{user_id}", "traits": {"timezone": zone}}
        body = {"batch": [{**call, "type": "identify"}]} if route == "/v1/batch" else call
        sent = client.post(route, json=body, headers=basic_auth(ingest))
        if zone == "Asia/Tokyo":
            assert sent.status_code == 200, sent.text
        elif route == "/v1/batch":
            assert [(e["field"], e["reason"]) for e in sent.json()["errors"]] == [
                ("batch.0.traits.timezone", "time_zone")
            ]
        else:
            # then the unknown one is refused naming the trait, like any bad trait
            assert sent.status_code == 422, sent.text
            assert sent.json()["field"] == "traits.timezone"
            assert "Unknown time zone" in sent.json()["detail"]
    process(db)

    # and the known one is the profile's time zone, not a custom attribute
    profile = client.get("/v1/customers/TZI-1", headers=auth(api_key("read"))).json()
    assert profile["time_zone"] == "Asia/Tokyo"
    assert "timezone" not in profile["attributes"]


def test_the_devices_zone_is_taken_and_the_latest_said_wins(client, api_key, db) -> None:
    # given a person whose phone says Tokyo, then an identify saying Paris an hour later
    track(db, "page_viewed", user_id="TZC-1", context={"timezone": "Asia/Tokyo"})
    process(db)
    reader = auth(api_key("read"))
    assert client.get("/v1/customers/TZC-1", headers=reader).json()["time_zone"] == "Asia/Tokyo"
    track(
        db,
        "identified",
        user_id="TZC-1",
        at=T0 + timedelta(hours=1),
        properties={"traits": {"timezone": "Europe/Paris"}},
    )
    process(db)
    assert client.get("/v1/customers/TZC-1", headers=reader).json()["time_zone"] == ("Europe/Paris")

    # when an older call arrives late, and a newer one names a zone nobody knows
    track(db, "page_viewed", user_id="TZC-1", context={"timezone": "America/Lima"})
    track(
        db,
        "page_viewed",
        user_id="TZC-1",
        at=T0 + timedelta(hours=2),
        context={"timezone": "Middle/Earth"},
    )
    process(db)

    # then neither moves it: the late one was said before, the unknown one is passed over
    assert client.get("/v1/customers/TZC-1", headers=reader).json()["time_zone"] == ("Europe/Paris")

    # and a newer device zone does
    track(
        db,
        "page_viewed",
        user_id="TZC-1",
        at=T0 + timedelta(hours=3),
        context={"timezone": "Asia/Tokyo"},
    )
    process(db)
    assert client.get("/v1/customers/TZC-1", headers=reader).json()["time_zone"] == "Asia/Tokyo"


def test_a_tracked_call_with_an_unknown_device_zone_is_still_taken(client, api_key, db) -> None:
    sent = client.post(
        "/v1/track",
        json={
            "userId": "TZD-1",
            "event": "Product Viewed",
            "messageId": "m-tzd-1",
            "context": {"timezone": "Not/AZone"},
        },
        headers=basic_auth(api_key("ingest")),
    )
    assert sent.status_code == 200, sent.text
    process(db)
    profile = client.get("/v1/customers/TZD-1", headers=auth(api_key("read"))).json()
    assert profile["time_zone"] is None
