"""The unsubscribe link in every message withdraws the matching consent (and the next message
is suppressed); the inbox, sending-policy and deliveries API."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.api import ChannelName, DeliveryStatusName
from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import CHANNELS, DELIVERY_STATUSES, Delivery
from rapport.customers import service as customers
from rapport.flows import privacy
from tests.campaigns.delivery.factories import make_campaign, make_customer
from tests.campaigns.receivers import SmtpSink
from tests.conftest import auth


def _send(db: Session, campaign_channel: str, customer_id: str, **fields: object) -> Delivery:
    campaign = make_campaign(db, channel=campaign_channel, **fields)  # type: ignore[arg-type]
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=customer_id)])
    db.commit()
    while dispatch_batch(db, worker="w1"):
        pass
    row = db.scalar(select(Delivery).where(Delivery.campaign_id == campaign.id))
    assert row is not None
    return row


def test_the_one_click_unsubscribe_withdraws_email_consent_and_the_next_email_is_suppressed(
    db: Session, client: TestClient, smtp_sink: SmtpSink
) -> None:
    person = make_customer(db, consents={"marketing_email": True, "marketing_push": True})
    assert _send(db, "email", person).status == "sent"
    header = smtp_sink.messages[0].message["List-Unsubscribe"]
    path = urlsplit(header.strip("<>")).path

    page = client.get(path)  # what a mail scanner following the link does: nothing changes
    assert page.status_code == 200
    assert "Unsubscribe from marketing emails?" in page.text
    assert customers.has_consent(db, customer_id=person, purpose="marketing_email")

    done = client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    assert not customers.has_consent(db, customer_id=person, purpose="marketing_email")
    assert customers.has_consent(db, customer_id=person, purpose="marketing_push")
    history = customers.consent_history(db, customer_id=person)
    assert (history[-1].purpose, history[-1].granted, history[-1].source) == (
        "marketing_email",
        False,
        "unsubscribe",
    )

    after = _send(db, "email", person)
    assert (after.status, after.reason) == ("suppressed", "no marketing_email consent")
    assert len(smtp_sink.messages) == 1
    assert _send(db, "inbox", person, body="Still here").status == "sent"

    forged = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    assert client.get(forged).status_code == 404
    assert client.post(forged).status_code == 404


def test_the_inbox_api_pages_newest_first_and_marks_read(
    db: Session, client: TestClient, api_key: Callable[..., str]
) -> None:
    person = make_customer(db, consents={"marketing_push": True})
    for n in range(3):
        _send(db, "inbox", person, subject=f"Note {n}", body="Hello {{ first_name }}")
    reader = auth(api_key("read"))
    writer = auth(api_key("write"))

    first = client.get(f"/v1/customers/{person}/inbox?limit=2", headers=reader).json()
    assert [m["subject"] for m in first["messages"]] == ["Note 2", "Note 1"]
    assert first["messages"][0]["body"] == "Hello Ada"
    second = client.get(
        f"/v1/customers/{person}/inbox?limit=2&before={first['next_before']}", headers=reader
    ).json()
    assert [m["subject"] for m in second["messages"]] == ["Note 0"]
    assert second["next_before"] is None

    message_id = first["messages"][0]["id"]
    read = client.post(f"/v1/customers/{person}/inbox/{message_id}/read", headers=writer)
    assert read.status_code == 200
    assert read.json()["read_at"] is not None
    assert (
        client.post(f"/v1/customers/{person}/inbox/{message_id}/read", headers=reader).status_code
        == 403
    )
    other = make_customer(db)
    missing = client.post(f"/v1/customers/{other}/inbox/{message_id}/read", headers=writer)
    assert missing.status_code == 404


def test_the_sending_policy_api_changes_only_the_fields_given(
    db: Session, client: TestClient, api_key: Callable[..., str]
) -> None:
    admin = auth(api_key("admin"))
    before = client.get("/v1/campaigns/sending-policy", headers=auth(api_key("read"))).json()
    assert before["email"]["cap_messages"] == 3

    changed = client.put(
        "/v1/campaigns/sending-policy",
        json={"email": {"cap_messages": 5}, "inbox": {"default_time_zone": "Europe/Paris"}},
        headers=admin,
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["email"]["cap_messages"] == 5
    assert body["email"]["quiet_start"] == before["email"]["quiet_start"]
    assert body["inbox"]["default_time_zone"] == "Europe/Paris"

    wrong = client.put(
        "/v1/campaigns/sending-policy",
        json={"email": {"default_time_zone": "Mars/Olympus"}},
        headers=admin,
    )
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "email.default_time_zone"
    # a value refused in one channel changes no other channel
    mixed = client.put(
        "/v1/campaigns/sending-policy",
        json={"email": {"cap_messages": 7}, "inbox": {"default_time_zone": "Mars/Olympus"}},
        headers=admin,
    )
    assert mixed.status_code == 422
    assert mixed.json()["field"] == "inbox.default_time_zone"
    assert "Mars/Olympus" in mixed.json()["detail"]
    kept = client.get("/v1/campaigns/sending-policy", headers=auth(api_key("read"))).json()
    assert kept["email"]["cap_messages"] == 5
    # quiet hours sent as null would be dropped and kept unsaid: refused, naming the field,
    # and nothing else in the request is stored
    nulled = client.put(
        "/v1/campaigns/sending-policy",
        json={"email": {"cap_messages": 9, "quiet_start": None, "quiet_end": None}},
        headers=admin,
    )
    assert nulled.status_code == 422, nulled.text
    assert nulled.json()["field"] == "email.quiet_end"
    after = client.get("/v1/campaigns/sending-policy", headers=auth(api_key("read"))).json()
    assert after == kept
    refused = client.put(
        "/v1/campaigns/sending-policy",
        json={"email": {"cap_messages": 1}},
        headers=auth(api_key("write")),
    )
    assert refused.status_code == 403


def test_deliveries_api_lists_with_filters_and_shows_the_history(
    db: Session, client: TestClient, api_key: Callable[..., str], smtp_sink: SmtpSink
) -> None:
    person = make_customer(db, consents={})
    row = _send(db, "email", person)
    reader = auth(api_key("read"))
    listed = client.get(
        f"/v1/deliveries?campaign_id={row.campaign_id}&status=suppressed", headers=reader
    ).json()
    assert [d["id"] for d in listed["deliveries"]] == [row.id]
    assert (
        client.get(
            f"/v1/deliveries?campaign_id={row.campaign_id}&status=sent", headers=reader
        ).json()["deliveries"]
        == []
    )
    detail = client.get(f"/v1/deliveries/{row.id}", headers=reader).json()
    assert [h["status"] for h in detail["history"]] == ["queued", "sending", "suppressed"]
    assert detail["history"][-1]["reason"] == "no marketing_email consent"


def test_deliveries_api_refuses_an_unknown_status_or_channel_or_customer_and_an_erased_one(
    db: Session, client: TestClient, api_key: Callable[..., str]
) -> None:
    reader = auth(api_key("read"))
    assert get_args(DeliveryStatusName) == DELIVERY_STATUSES
    assert get_args(ChannelName) == CHANNELS
    for name, value in (("status", "bogus"), ("channel", "sms")):
        refused = client.get(f"/v1/deliveries?{name}={value}", headers=reader)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == name
    assert (
        client.get("/v1/deliveries?status=deferred&channel=inbox", headers=reader).json()[
            "deliveries"
        ]
        == []
    )
    # an unknown customer is a 404 naming the field, as on every customer-scoped list
    # (GET /v1/orders?customer_id=…), not an empty page; an erased one is said to be erased
    unknown = client.get("/v1/deliveries?customer_id=cus_nobody", headers=reader)
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["field"] == "customer_id"
    assert unknown.json()["detail"].startswith("No customer 'cus_nobody'")
    orders_answer = client.get("/v1/orders?customer_id=cus_nobody", headers=reader)
    assert (orders_answer.status_code, orders_answer.json()["field"]) == (404, "customer_id")
    empty = client.get("/v1/deliveries?customer_id=", headers=reader)
    assert empty.status_code == 422, empty.text
    assert empty.json()["errors"][0]["field"] == "customer_id"
    person = make_customer(db, consents={})
    _send(db, "email", person)
    privacy.erase_customer(db, customer_id=person, requested_by="dpo@example.org")
    erased = client.get(f"/v1/deliveries?customer_id={person}", headers=reader)
    assert erased.status_code == 404, erased.text
    assert "erased" in erased.json()["detail"]
    assert erased.json()["field"] == "customer_id"
