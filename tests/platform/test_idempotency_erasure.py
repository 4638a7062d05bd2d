"""Idempotency-Keys that spell a person out do not survive their erasure: the key is kept as
its digest, so a retry with it still answers 410 Gone and applies nothing."""

from __future__ import annotations

from sqlalchemy import select

from rapport.platform.models import IdempotencyRecord
from tests.conftest import auth


def _headers(key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(key), "Idempotency-Key": idempotency_key}


def test_keys_naming_an_erased_person_are_kept_as_digests(client, api_key, db) -> None:
    key = api_key("write", "admin")
    signup = client.post(
        "/v1/customers",
        json={"external_id": "IVY-1", "email": "ivy.keyed@zqmail.test"},
        headers=_headers(key, "signup-ivy.keyed@zqmail.test"),
    )
    assert signup.status_code == 201, signup.text
    other = client.post(
        "/v1/customers",
        json={"external_id": "IVY-10", "email": "someone@zqmail.test"},
        headers=_headers(key, "signup-IVY-10"),
    )
    assert other.status_code == 201
    consent = client.put(
        "/v1/customers/IVY-1/consents/analytics", json={"granted": True}, headers=auth(key)
    )
    assert consent.status_code == 200
    erase = client.post(
        "/v1/customers/IVY-1/erase",
        json={"requested_by": "DPO"},
        headers=_headers(key, "erase-IVY-1-2026"),
    )
    assert erase.status_code == 200, erase.text
    db.expire_all()
    keys = set(db.scalars(select(IdempotencyRecord.key)))
    assert not {k for k in keys if "ivy.keyed" in k or "IVY-1-" in k}
    assert "signup-IVY-10" in keys  # another customer's, merely starting alike
    # a retry with each of the person's keys still answers 410 and applies nothing
    retry = client.post(
        "/v1/customers",
        json={"external_id": "IVY-1", "email": "ivy.keyed@zqmail.test"},
        headers=_headers(key, "signup-ivy.keyed@zqmail.test"),
    )
    assert retry.status_code == 410, retry.text
    # as a problem, like every error, naming the request it answers
    assert retry.headers["content-type"] == "application/problem+json"
    assert retry.headers["idempotent-replayed"] == "true"
    problem = retry.json()
    assert problem["type"] == "https://rapport.dev/problems/erased"
    assert problem["title"] == "Answer erased"
    assert problem["status"] == 410
    assert "erased" in problem["detail"]
    assert problem["instance"] == "/v1/customers"
    assert problem["field"] == "Idempotency-Key"
    # the erasure's own retry is answered with its first answer, as every erasure's is
    again = client.post(
        "/v1/customers/IVY-1/erase",
        json={"requested_by": "DPO"},
        headers=_headers(key, "erase-IVY-1-2026"),
    )
    assert again.status_code == 200
    assert again.json() == erase.json()
    assert len(set(db.scalars(select(IdempotencyRecord.key)))) == len(keys)
