"""A webhook subscription created over the API: a retry with its Idempotency-Key answers the
same subscription without its signing secret, which no stored answer keeps."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.platform.models import IdempotencyRecord
from tests.conftest import auth


def test_a_retried_subscription_answers_without_its_secret(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    # given a subscription created with an Idempotency-Key
    headers = {**auth(api_key("admin")), "Idempotency-Key": "crm-subscription-1"}
    body = {
        "name": "CRM",
        "url": "https://crm.example.com/hooks",
        "event_types": ["points_earned"],
    }
    first = client.post("/v1/webhooks/subscriptions", json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")

    # when the same request is sent again with the same key
    again = client.post("/v1/webhooks/subscriptions", json=body, headers=headers)

    # then it answers the same subscription with the secret null
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "secret": None}
    # and the stored answer does not hold it
    stored = db.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.key == "crm-subscription-1")
    ).one()
    assert stored.response_body["secret"] is None
    assert secret[len("whsec_") :] not in json.dumps(stored.response_body)
