"""Webhook endpoints over the API: a creation retried with its Idempotency-Key answers the
same endpoint without its signing secret, which no stored answer keeps."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.platform.models import IdempotencyRecord
from tests.conftest import auth


def test_a_retried_creation_answers_the_endpoint_without_its_secret(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given an endpoint created with an Idempotency-Key
    headers = {**auth(api_key("admin")), "Idempotency-Key": "crm-endpoint-1"}
    body = {"name": "CRM", "url": "https://crm.example.com/hooks"}
    first = client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")

    # when the same request is sent again with the same key (its answer was lost)
    again = client.post("/v1/webhook-endpoints", json=body, headers=headers)

    # then it answers the same endpoint, with the secret null: it was shown once
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    # and the answer kept for retries holds no trace of the secret
    stored = db.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.key == "crm-endpoint-1")
    ).one()
    assert stored.response_body["secret"] is None
    assert secret not in json.dumps(stored.response_body)
    assert secret[len("whsec_") :] not in json.dumps(stored.response_body)
