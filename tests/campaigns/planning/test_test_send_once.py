"""A test send retried with its Idempotency-Key (a client whose answer was lost) sends one
message, over HTTP on both databases."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.campaigns.planning import editing
from tests.campaigns.planning.factories import make_customer, make_segment, write_template
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth


def test_a_test_send_retried_with_its_key_sends_one_message(
    client: TestClient, api_key: Callable[..., str], db: Session, smtp_sink: SmtpSink
) -> None:
    # given a campaign with its message and a customer
    customer_id = make_customer(db, first_name="Ada")
    campaign = editing.create_campaign(
        db, settings=editing.CampaignSettings(name="Autumn", segment_id=make_segment(db))
    )
    write_template(db, campaign.id)
    path = f"/v1/campaigns/{campaign.id}/test-send"
    body = {"customer_id": customer_id, "to_address": "qa@example.com"}
    headers = {**auth(api_key("write")), "Idempotency-Key": "test-send-1"}

    # when the test is sent, and retried with the same key
    first = client.post(path, json=body, headers=headers)
    again = client.post(path, json=body, headers=headers)

    # then one message went out, and the retry was answered with the first answer
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert [m.to for m in smtp_sink.messages] == ["qa@example.com"]
    # and the same key for another address is refused, sending nothing
    refused = client.post(path, json={**body, "to_address": "qa2@example.com"}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "Idempotency-Key"
    # and without a key the test is not sent
    missing = client.post(path, json=body, headers=auth(api_key("write")))
    assert missing.status_code == 400, missing.text
    assert missing.json()["field"] == "Idempotency-Key"
    assert len(smtp_sink.messages) == 1
