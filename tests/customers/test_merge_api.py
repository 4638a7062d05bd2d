"""Merging over the API: what a refusal says, and the references it takes."""

from __future__ import annotations

from rapport.customers import service as customers
from tests.conftest import command


def test_merging_an_id_already_merged_into_the_target_says_so(client, api_key, db) -> None:
    writer = api_key("write")
    target = customers.identify_customer(db, identities={"email": "t@example.com"}).customer_id
    source = customers.identify_customer(db, identities={"email": "s@example.com"}).customer_id
    body = {"source_customer_id": source, "target_customer_id": target, "reason": "dup"}
    assert client.post("/v1/customers/merge", json=body, headers=command(writer)).status_code == 200
    again = client.post("/v1/customers/merge", json=body, headers=command(writer))
    assert again.status_code == 409
    assert again.json()["field"] == "source_customer_id"
    assert again.json()["code"] == "already_merged"
    assert again.json()["detail"] == f"{source} was already merged into {target}; nothing to merge"
    assert "itself" not in again.text


def test_merge_takes_a_reference_as_long_as_any_other(client, api_key, db) -> None:
    writer = api_key("write")
    number = "N" * 100
    customers.identify_customer(db, identities={"email": "long@example.com", "external_id": number})
    target = customers.identify_customer(db, identities={"email": "t@example.com"}).customer_id
    body = {"source_customer_id": number, "target_customer_id": target, "reason": "dup"}
    merged = client.post("/v1/customers/merge", json=body, headers=command(writer))
    assert merged.status_code == 200, merged.text
    too_long = {**body, "source_customer_id": "N" * 101}
    refused = client.post("/v1/customers/merge", json=too_long, headers=command(writer))
    assert refused.status_code == 422


def test_an_unknown_consent_purpose_at_sign_up_names_the_purpose(client, api_key, db) -> None:
    answer = client.post(
        "/v1/customers",
        json={"email": "ana@example.com", "consents": {"marketing_sms": True}},
        headers=command(api_key("write")),
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["consents.marketing_sms"]
    assert "Unknown consent purpose" in answer.json()["errors"][0]["message"]
    assert customers.count_customers(db) == 0
