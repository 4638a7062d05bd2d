"""Customer 360, identify, merge, preferences and privacy endpoints."""

from __future__ import annotations

from tests.conftest import auth, command
from tests.customers.factories import order_placed, process, track


def test_identify_then_lookup_by_any_identity(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    created = client.post(
        "/v1/customers/identify",
        json={
            "identities": {"email": "Ana@Example.com", "loyalty_card": "LC-77"},
            "first_name": "Ana",
        },
        headers=command(writer),
    )
    assert created.status_code == 200
    customer_id = created.json()["customer_id"]
    by_card = client.get("/v1/customers/lookup?kind=loyalty_card&value=LC-77", headers=auth(reader))
    assert by_card.status_code == 200
    assert by_card.json()["customer_id"] == customer_id
    assert by_card.json()["first_name"] == "Ana"
    assert sorted(i["kind"] for i in by_card.json()["identities"]) == ["email", "loyalty_card"]
    missing = client.get(
        "/v1/customers/lookup?kind=email&value=nobody@example.com", headers=auth(reader)
    )
    assert missing.status_code == 404
    assert missing.json()["field"] == "value"


def test_profile_shows_traits_after_processing(client, api_key, db) -> None:
    track(db, "order_placed", user_id="C-1", properties=order_placed(3000, ["Wine/Red"]))
    process(db)
    profile = client.get(
        "/v1/customers/lookup?kind=external_id&value=C-1", headers=auth(api_key("read"))
    ).json()
    assert profile["traits"]["order_count"] == 1
    assert profile["traits"]["spend_minor"] == 3000
    assert profile["traits"]["favourite_categories"] == ["Wine/Red"]
    timeline = client.get(
        f"/v1/customers/{profile['customer_id']}/timeline", headers=auth(api_key("read"))
    ).json()
    assert [e["type"] for e in timeline] == ["order_placed"]


def test_merge_over_api_and_old_id_answers_with_the_survivor(client, api_key) -> None:
    writer = api_key("write")
    a = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "a@example.com"}},
        headers=command(writer),
    ).json()
    b = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "b@example.com"}},
        headers=command(writer),
    ).json()
    merged = client.post(
        "/v1/customers/merge",
        json={
            "source_customer_id": a["customer_id"],
            "target_customer_id": b["customer_id"],
            "reason": "same person",
        },
        headers=command(writer),
    )
    assert merged.status_code == 200
    assert merged.json()["moved"]["identities"] == 1
    survivor = client.get(f"/v1/customers/{a['customer_id']}", headers=auth(api_key("read"))).json()
    assert survivor["customer_id"] == b["customer_id"]


def test_preferences_are_validated_and_stored(client, api_key) -> None:
    writer = api_key("write")
    customer_id = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "p@example.com"}},
        headers=command(writer),
    ).json()["customer_id"]
    bad = client.put(
        f"/v1/customers/{customer_id}/preferences",
        json={"clothing_size": "XXXL"},
        headers=auth(writer),
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "clothing_size"
    empty = client.put(f"/v1/customers/{customer_id}/preferences", json={}, headers=auth(writer))
    assert empty.status_code == 422
    ok = client.put(
        f"/v1/customers/{customer_id}/preferences",
        json={"clothing_size": "M", "favourite_categories": ["Wine/Red"], "birthday": "1990-04-01"},
        headers=auth(writer),
    )
    assert ok.status_code == 200
    assert {p["field"]: p["value"] for p in ok.json()} == {
        "clothing_size": "M",
        "favourite_categories": ["Wine/Red"],
        "birthday": "1990-04-01",
    }


def test_export_and_erase_need_the_admin_scope(client, api_key) -> None:
    writer, admin = api_key("write"), api_key("admin")
    customer_id = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "q@example.com"}},
        headers=command(writer),
    ).json()["customer_id"]
    assert (
        client.get(f"/v1/customers/{customer_id}/export", headers=auth(writer)).status_code == 403
    )
    refused = client.post(
        f"/v1/customers/{customer_id}/erase", json={"requested_by": "x"}, headers=command(writer)
    )
    assert refused.status_code == 403
    exported = client.get(f"/v1/customers/{customer_id}/export", headers=auth(admin))
    assert exported.status_code == 200
    assert exported.json()["customer"]["email"] == "q@example.com"


def test_consent_history_endpoint(client, api_key) -> None:
    writer = api_key("write")
    customer_id = client.post(
        "/v1/customers/identify",
        json={"identities": {"email": "h@example.com"}},
        headers=command(writer),
    ).json()["customer_id"]
    for granted in (True, False):
        client.put(
            f"/v1/customers/{customer_id}/consents/marketing_push",
            json={"granted": granted, "source": "app"},
            headers=auth(writer),
        )
    history = client.get(
        f"/v1/customers/{customer_id}/consents/history", headers=auth(api_key("read"))
    ).json()["items"]
    assert [(h["purpose"], h["granted"]) for h in history] == [
        ("marketing_push", True),
        ("marketing_push", False),
    ]
