"""Consent decisions through every door: the most recent decision stands, a late one only
joins the history, a choice sent again records nothing, and withdrawing location forgets it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from rapport.customers import service as customers
from rapport.customers.models import ConsentChange
from rapport.platform import clock
from tests.conftest import auth, command
from tests.customers.factories import process
from tests.events.factories import basic_auth


def _customer(client, writer, external_id: str) -> str:
    answer = client.post(
        "/v1/customers",
        json={"external_id": external_id, "email": f"{external_id.lower()}@example.com"},
        headers=command(writer),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["customer_id"]


def _track(client, key, event_id: str, customer: str, at, **properties) -> None:
    answer = client.post(
        "/v1/events",
        json={
            "event_id": event_id,
            "type": "consent_changed",
            "channel": "web",
            "customer_id": customer,
            "occurred_at": at.isoformat(),
            "properties": properties,
        },
        headers=auth(key),
    )
    assert answer.status_code == 201, answer.text


def test_a_late_tracked_grant_does_not_undo_a_newer_withdrawal(client, api_key, db) -> None:
    writer = api_key("write", "read", "ingest")
    customer_id = _customer(client, writer, "T-wanda")
    withdrawn = client.put(
        "/v1/customers/T-wanda/consents/marketing_email",
        json={"granted": False, "source": "phone call"},
        headers=auth(writer),
    )
    assert withdrawn.status_code == 200
    two_hours_ago = clock.now() - timedelta(hours=2)
    _track(
        client,
        writer,
        "wan-late-1",
        "T-wanda",
        two_hours_ago,
        purpose="marketing_email",
        granted=True,
        source="old_banner",
    )
    process(db)
    consents = {
        c["purpose"]: c
        for c in client.get("/v1/customers/T-wanda", headers=auth(writer)).json()["consents"]
    }
    assert consents["marketing_email"]["granted"] is False
    assert consents["marketing_email"]["source"] == "phone call"
    assert not customers.may_contact(db, customer_id=customer_id, purpose="marketing_email")
    # the late decision is in the history at its own time, which is read oldest first
    history = client.get("/v1/customers/T-wanda/consents/history", headers=auth(writer)).json()
    assert [(h["granted"], h["source"]) for h in history["items"]] == [
        (True, "old_banner"),
        (False, "phone call"),
    ]
    first = client.get(
        "/v1/customers/T-wanda/consents/history?limit=1", headers=auth(writer)
    ).json()
    rest = client.get(
        f"/v1/customers/T-wanda/consents/history?limit=1&cursor={first['next_cursor']}",
        headers=auth(writer),
    ).json()
    assert [h["source"] for h in first["items"] + rest["items"]] == ["old_banner", "phone call"]
    # a newer tracked decision does stand
    _track(
        client,
        writer,
        "wan-new-1",
        "T-wanda",
        clock.now() + timedelta(seconds=1),
        purpose="marketing_email",
        granted=True,
        source="banner",
    )
    process(db)
    assert customers.may_contact(db, customer_id=customer_id, purpose="marketing_email")


def test_a_tracked_choice_sent_again_adds_no_history_row(client, api_key, db) -> None:
    key = api_key("write", "ingest")
    customer_id = _customer(client, key, "T-repeat")
    at = clock.now()
    for number in range(3):
        _track(
            client,
            key,
            f"rep-{number}",
            "T-repeat",
            at + timedelta(minutes=number),
            purpose="analytics",
            granted=True,
            source="banner",
        )
    process(db)
    # the PUT of the same choice changes nothing either: one code path for both doors
    client.put(
        "/v1/customers/T-repeat/consents/analytics",
        json={"granted": True, "source": "banner"},
        headers=auth(key),
    )
    rows = select(func.count()).select_from(ConsentChange)
    assert db.scalar(rows.where(ConsentChange.customer_id == customer_id)) == 1


def _located(client, key, customer: str, event_id: str) -> None:
    answer = client.post(
        "/v1/events",
        json={
            "event_id": event_id,
            "type": "location_updated",
            "channel": "app",
            "customer_id": customer,
            "occurred_at": clock.now().isoformat(),
            "context": {"location": {"lat": 48.85, "lon": 2.35}},
        },
        headers=auth(key),
    )
    assert answer.status_code == 201, answer.text


def test_withdrawing_location_forgets_the_last_known_location(client, api_key, db) -> None:
    key = api_key("write", "read", "ingest", "admin")
    _customer(client, key, "T-loc")
    client.put("/v1/customers/T-loc/consents/location", json={"granted": True}, headers=auth(key))
    _located(client, key, "T-loc", "loc-1")
    process(db)
    profile = client.get("/v1/customers/T-loc", headers=auth(key)).json()
    assert profile["traits"]["last_location"]["lat"] == 48.85
    client.put("/v1/customers/T-loc/consents/location", json={"granted": False}, headers=auth(key))
    profile = client.get("/v1/customers/T-loc", headers=auth(key)).json()
    assert profile["traits"]["last_location"] is None
    exported = client.get("/v1/customers/T-loc/export", headers=auth(key)).json()
    assert exported["traits"]["last_location"] is None
    # by tracking, in the same batch as the location it forgets
    client.put("/v1/customers/T-loc/consents/location", json={"granted": True}, headers=auth(key))
    _located(client, key, "T-loc", "loc-2")
    _track(
        client,
        key,
        "loc-no",
        "T-loc",
        clock.now() + timedelta(seconds=1),
        purpose="location",
        granted=False,
        source="app settings",
    )
    process(db)
    profile = client.get("/v1/customers/T-loc", headers=auth(key)).json()
    assert profile["traits"]["last_location"] is None


def test_a_merge_whose_standing_choice_is_no_keeps_no_location(client, api_key, db) -> None:
    key = api_key("write", "read", "ingest")
    _customer(client, key, "T-old")
    _customer(client, key, "T-dup")
    client.put("/v1/customers/T-dup/consents/location", json={"granted": True}, headers=auth(key))
    _located(client, key, "T-dup", "dup-loc")
    process(db)
    # the survivor said no later than the duplicate said yes
    client.put("/v1/customers/T-old/consents/location", json={"granted": False}, headers=auth(key))
    merged = client.post(
        "/v1/customers/merge",
        json={
            "source_customer_id": "T-dup",
            "target_customer_id": "T-old",
            "reason": "same person",
        },
        headers=command(key),
    )
    assert merged.status_code == 200, merged.text
    profile = client.get("/v1/customers/T-old", headers=auth(key)).json()
    assert profile["traits"]["last_location"] is None


def _identify_at(client, key, customer: str, lat: float) -> None:
    answer = client.post(
        "/v1/identify",
        json={
            "userId": customer,
            "traits": {
                "location": {"lat": lat, "lon": 2.1, "city": "Orléans"},
                "lat": lat,
                "lon": 2.1,
                "tier": "gold",
            },
        },
        headers=basic_auth(key),
    )
    assert answer.status_code == 200, answer.text


def _near_count(client, key, low: float, high: float) -> int:
    answer = client.post(
        "/v1/segments/preview",
        json={
            "definition": {
                "conditions": [
                    {
                        "kind": "trait",
                        "field": "attributes.lat",
                        "op": "between",
                        "value": [low, high],
                    }
                ]
            }
        },
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["count"])


def test_withdrawing_location_takes_coordinates_out_of_the_attributes(client, api_key, db) -> None:
    key = api_key("write", "read", "ingest", "admin")
    _customer(client, key, "T-geo")
    yes, no = {"granted": True, "source": "test"}, {"granted": False, "source": "test"}
    client.put("/v1/customers/T-geo/consents/location", json=yes, headers=auth(key))
    _identify_at(client, key, "T-geo", 48.1)
    process(db)
    attributes = client.get("/v1/customers/T-geo", headers=auth(key)).json()["attributes"]
    assert attributes["lat"] == 48.1
    assert attributes["location"]["lat"] == 48.1
    assert _near_count(client, key, 48.0, 48.2) == 1
    # by the API
    client.put("/v1/customers/T-geo/consents/location", json=no, headers=auth(key))
    attributes = client.get("/v1/customers/T-geo", headers=auth(key)).json()["attributes"]
    assert attributes == {"location": {"city": "Orléans"}, "tier": "gold"}
    assert _near_count(client, key, 48.0, 48.2) == 0
    # by tracking, in the same batch as the traits it withdraws
    client.put("/v1/customers/T-geo/consents/location", json=yes, headers=auth(key))
    _identify_at(client, key, "T-geo", 48.15)
    _track(
        client,
        key,
        "geo-no",
        "T-geo",
        clock.now() + timedelta(seconds=1),
        purpose="location",
        granted=False,
        source="app settings",
    )
    process(db)
    attributes = client.get("/v1/customers/T-geo", headers=auth(key)).json()["attributes"]
    assert attributes == {"location": {"city": "Orléans"}, "tier": "gold"}
    assert _near_count(client, key, 48.0, 48.2) == 0


def test_traits_stored_before_a_withdrawal_and_read_after_it_add_no_coordinates(
    client, api_key, db
) -> None:
    key = api_key("write", "read", "ingest", "admin")
    _customer(client, key, "T-lag")
    client.put(
        "/v1/customers/T-lag/consents/location",
        json={"granted": True, "source": "test"},
        headers=auth(key),
    )
    _identify_at(client, key, "T-lag", 48.1)  # stored with its coordinates: granted then
    client.put(
        "/v1/customers/T-lag/consents/location",
        json={"granted": False, "source": "test"},
        headers=auth(key),
    )
    process(db)  # the profile processor reads it after the withdrawal
    attributes = client.get("/v1/customers/T-lag", headers=auth(key)).json()["attributes"]
    assert attributes == {"location": {"city": "Orléans"}, "tier": "gold"}
    assert _near_count(client, key, 48.0, 48.2) == 0


def _consent(client, key, customer: str, granted: bool) -> None:
    answer = client.put(
        f"/v1/customers/{customer}/consents/location",
        json={"granted": granted, "source": "test"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text


def _identify_traits(client, key, customer: str, traits: dict[str, object]) -> None:
    answer = client.post(
        "/v1/identify", json={"userId": customer, "traits": traits}, headers=basic_auth(key)
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("located", "refusing", "refused_first"),
    [
        ("T-src", "T-tgt", False),  # the duplicate brings coordinates, the survivor said no
        ("T-tgt", "T-src", False),  # the survivor holds them, the duplicate's no is later
        ("T-src", "T-tgt", True),  # a grant later than the refusal stands: they stay
    ],
)
def test_a_merges_surviving_attributes_keep_coordinates_only_with_a_standing_yes(
    client, api_key, db, located, refusing, refused_first
) -> None:
    key = api_key("write", "read", "ingest")
    _customer(client, key, "T-src")
    _customer(client, key, "T-tgt")
    if refused_first:
        _consent(client, key, refusing, False)
    _consent(client, key, located, True)
    _identify_traits(client, key, located, {"lat": 40.1, "lon": -3.7, "hobby": "golf"})
    process(db)
    if not refused_first:
        _consent(client, key, refusing, False)
    merged = client.post(
        "/v1/customers/merge",
        json={"source_customer_id": "T-src", "target_customer_id": "T-tgt", "reason": "same"},
        headers=command(key),
    )
    assert merged.status_code == 200, merged.text
    profile = client.get("/v1/customers/T-tgt", headers=auth(key)).json()
    granted = {c["purpose"]: c["granted"] for c in profile["consents"]}["location"]
    assert granted is refused_first
    if granted:
        assert profile["attributes"] == {"lat": 40.1, "lon": -3.7, "hobby": "golf"}
        assert _near_count(client, key, 40.0, 40.2) == 1
    else:
        assert profile["attributes"] == {"hobby": "golf"}
        assert _near_count(client, key, 40.0, 40.2) == 0


SCATTERED = {
    "lng": -3.7,
    "Latitude": 40.1,
    "LONG": -3.7,
    "geo": {"latitude": 40.1, "longitude": -3.7},
    "home": {"lat": 40.1, "lon": -3.7, "city": "Madrid"},
    "address": {"Lat": 40.1, "Lng": -3.7},
    "hobby": "golf",
}
UNLOCATED = {"home": {"city": "Madrid"}, "hobby": "golf"}


def test_coordinates_under_any_name_and_depth_need_location_consent(client, api_key, db) -> None:
    key = api_key("write", "read", "ingest", "admin")
    _customer(client, key, "T-any")
    # without the grant, tracking's traits bring none of them
    _identify_traits(client, key, "T-any", SCATTERED)
    process(db)
    attributes = client.get("/v1/customers/T-any", headers=auth(key)).json()["attributes"]
    assert attributes == UNLOCATED
    # with it they are kept, and a withdrawal takes every one out, not half a coordinate
    _consent(client, key, "T-any", True)
    _identify_traits(client, key, "T-any", {**SCATTERED, "hobby": "chess"})
    process(db)
    attributes = client.get("/v1/customers/T-any", headers=auth(key)).json()["attributes"]
    assert attributes == {**SCATTERED, "hobby": "chess"}
    _consent(client, key, "T-any", False)
    attributes = client.get("/v1/customers/T-any", headers=auth(key)).json()["attributes"]
    assert attributes == {**UNLOCATED, "hobby": "chess"}
