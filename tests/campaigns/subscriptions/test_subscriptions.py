"""Webhook subscriptions to Rapport's own events, delivered to a real HTTP receiver: a signed
POST per event and subscription, replay after the receiver failed, the new typed events
(tier changed, ticket breached, review published), an erased customer's notice without
personal data, nothing sent for an inactive subscription, and the API's field errors."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.models import Delivery
from rapport.campaigns.subscriptions.processor import deliver_events
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.events import service as events
from rapport.events.models import Event
from rapport.feedback import service as feedback
from rapport.feedback.schemas import ReviewIn, TicketIn
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.loyalty.models import QualifyingActivity
from rapport.loyalty.tiers.reviews import review_tier
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from tests.campaigns.receivers import WebhookReceiver
from tests.conftest import auth, command
from tests.feedback.factories import in_catalogue

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
URL = "/v1/webhooks/subscriptions"


def _verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: HMAC-SHA256 over f"{t}.{raw body}" with its secret."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def _subscribe(
    client: TestClient, admin: dict[str, str], url: str, *types: str, **fields: Any
) -> dict[str, Any]:
    answer = client.post(
        URL,
        json={"name": f"CRM {len(types)} {url}", "url": url, "event_types": list(types), **fields},
        headers={**admin, "Idempotency-Key": f"sub-{types}-{url}-{fields}"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _customer(db: Session, **fields: Any) -> str:
    customer = customers.create_customer(
        db, customer=CustomerIn(first_name="Noor", email="noor@example.org", **fields)
    )
    db.flush()
    return customer.customer_id


def _process_from(db: Session, position: int) -> None:
    """The subscriptions processor over the log after ``position`` (what the worker does)."""
    deliver_events(db, events.events_after(db, position=position, limit=500))
    db.commit()


def _head(db: Session) -> int:
    return int(db.scalar(select(func.coalesce(func.max(Event.position), 0))) or 0)


def test_points_earned_reaches_the_subscriber_once_signed(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    # given a subscription to points earned and a customer with the retailer's own number
    clock.set_clock(FrozenClock(T0))
    created = _subscribe(client, auth(api_key("admin")), webhook_receiver.url, "points_earned")
    customer = _customer(db, external_id="CRM-77")
    start = _head(db)
    # when the customer earns points (and redeems some: not subscribed) and the worker runs
    loyalty.earn(db, customer_id=customer, points=120, reason="Welcome")
    loyalty.redeem(db, customer_id=customer, points=20, reason="Coffee")
    _process_from(db, start)
    _process_from(db, start)  # a replayed batch queues nothing twice
    dispatch_batch(db, worker="w1")
    # then the receiver got one POST it can verify with the secret it was given once
    [request] = webhook_receiver.requests
    assert _verify(created["secret"], request.body, request.headers["rapport-signature"])
    payload = request.json()
    event = db.scalar(select(Event).where(Event.type == "points_earned"))
    assert event is not None
    assert payload == {
        "id": event.event_id,
        "type": "points_earned",
        "occurred_at": T0.isoformat(),
        "customer_id": customer,
        "external_id": "CRM-77",
        "data": event.properties,
    }
    assert payload["data"]["points"] == 120
    # and the body has the fields the API reference documents for this webhook
    document = client.get("/openapi.json").json()
    hook = document["webhooks"]["points_earned"]["post"]
    # what it says of retries is what the dispatcher does: other 4xx answers are final
    assert "any other 4xx answer is final" in hook["description"]
    assert "until a 2xx" not in hook["description"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) <= set(payload) <= set(body["properties"])
    data = document["components"]["schemas"][body["properties"]["data"]["$ref"].split("/")[-1]]
    assert set(data["required"]) <= set(payload["data"]) <= set(data["properties"])
    delivery = db.scalar(select(Delivery).where(Delivery.campaign_id == created["campaign_id"]))
    assert delivery is not None
    assert delivery.status == "sent"
    assert request.headers["rapport-delivery-id"] == str(delivery.id)


def test_a_dead_delivery_is_replayed_through_the_api(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    # given a subscription with one try, and a receiver that fails the first request
    clock.set_clock(FrozenClock(T0))
    admin = auth(api_key("admin"))
    created = _subscribe(client, admin, webhook_receiver.url, "points_earned", max_attempts=1)
    customer = _customer(db)
    start = _head(db)
    webhook_receiver.responses = [500]
    loyalty.earn(db, customer_id=customer, points=5, reason="Visit")
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    delivery = db.scalar(select(Delivery).where(Delivery.campaign_id == created["campaign_id"]))
    assert delivery is not None
    assert delivery.status == "dead"
    # when it is replayed and the dispatcher runs again
    replayed = client.post(f"/v1/deliveries/{delivery.id}/replay", headers=command(admin))
    assert replayed.status_code == 200, replayed.text
    dispatch_batch(db, worker="w1")
    # then the same delivery arrives, with the same id for the receiver to de-duplicate on
    first, second = webhook_receiver.requests
    assert first.body == second.body
    assert second.headers["rapport-delivery-id"] == str(delivery.id)
    db.refresh(delivery)
    assert delivery.status == "sent"


def test_a_tier_change_is_logged_as_tier_changed_and_delivered(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    clock.set_clock(FrozenClock(T0))
    _subscribe(client, auth(api_key("admin")), webhook_receiver.url, "tier_changed")
    customer = _customer(db)
    start = _head(db)
    # a first placement in the base tier is no move
    review_tier(db, customer_id=customer, at=T0)
    # spend past the silver threshold moves the member up, in the review's transaction
    db.execute(
        insert(QualifyingActivity).values(
            customer_id=customer,
            source_key="order:T-1",
            spend_minor=60_000,
            points=0,
            occurred_at=T0,
        )
    )
    assert review_tier(db, customer_id=customer, at=T0 + timedelta(minutes=1)) == "upgrade"
    review_tier(db, customer_id=customer, at=T0 + timedelta(minutes=2))  # nothing changes
    db.commit()
    logged = list(db.scalars(select(Event).where(Event.type == "tier_changed")))
    moves = [(e.customer_id, e.properties["from_tier"], e.properties["to_tier"]) for e in logged]
    assert moves == [(customer, "member", "silver")]
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    [request] = webhook_receiver.requests
    assert request.json()["data"]["change"] == "upgrade"


def test_a_ticket_past_its_due_time_is_announced_once(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    clock.set_clock(FrozenClock(T0))
    _subscribe(client, auth(api_key("admin")), webhook_receiver.url, "ticket_breached")
    customer = _customer(db)
    start = _head(db)
    ticket = feedback.open_ticket(
        db, ticket=TicketIn(customer_id=customer, kind="question", channel="web", subject="Size?")
    )
    late = feedback.open_ticket(
        db, ticket=TicketIn(kind="complaint", channel="email", subject="Broken")
    )
    # before the due time the check finds nothing
    assert feedback_flag(db) == 0
    # past it, the open ticket is announced once, however often the check runs ...
    clock.set_clock(FrozenClock(T0 + timedelta(hours=73)))
    feedback.resolve_ticket(db, ticket_id=late.ticket_id, resolution="Sorry", resolved_by="ann")
    assert feedback_flag(db) == 1
    assert feedback_flag(db) == 0
    breaches = list(db.scalars(select(Event).where(Event.type == "ticket_breached")))
    by_ticket = {e.properties["ticket_id"]: e.properties for e in breaches}
    assert set(by_ticket) == {ticket.ticket_id, late.ticket_id}
    assert by_ticket[ticket.ticket_id]["open"] is True
    # ... and one resolved late before the check saw it is announced at its resolution
    assert by_ticket[late.ticket_id]["open"] is False
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    assert sorted(r.json()["data"]["ticket_id"] for r in webhook_receiver.requests) == sorted(
        by_ticket
    )


def feedback_flag(db: Session) -> int:
    from rapport.feedback.tickets import flag_breached_tickets

    return flag_breached_tickets(db)


def test_a_published_review_is_logged_as_review_published(db: Session) -> None:
    in_catalogue(db, "SKU-1")
    clock.set_clock(FrozenClock(T0))
    review = feedback.submit_review(
        db, review=ReviewIn(sku="SKU-1", rating=5, title="Lovely", text="Fits well")
    )
    db.commit()
    logged = list(db.scalars(select(Event).where(Event.type == "review_published")))
    if review.status == "published":
        assert [e.properties["review_id"] for e in logged] == [review.review_id]
    else:  # held by screening: published when a moderator says so
        assert logged == []
        feedback.moderate_review(
            db, review_id=review.review_id, decision="publish", moderator="ann"
        )
        logged = list(db.scalars(select(Event).where(Event.type == "review_published")))
        assert [e.properties["moderated"] for e in logged] == [True]


def test_an_erased_customer_notice_carries_no_personal_data(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    # given a subscription to points and erasures, and points earned not yet delivered
    clock.set_clock(FrozenClock(T0))
    _subscribe(
        client, auth(api_key("admin")), webhook_receiver.url, "points_earned", "customer_erased"
    )
    customer = _customer(db, external_id="CRM-ERASED-9", phone="+15550001111")
    start = _head(db)
    loyalty.earn(db, customer_id=customer, points=40, reason="Welcome")
    # when the customer is erased before the worker runs
    privacy.erase_customer(db, customer_id=customer, requested_by="dpo@example.org")
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    # then only the erasure notice went out, naming the random id and nothing else
    [request] = webhook_receiver.requests
    payload = request.json()
    assert payload["type"] == "customer_erased"
    assert payload["customer_id"] == customer
    assert payload["data"] == {}
    assert set(payload) == {"id", "type", "occurred_at", "customer_id", "data"}
    for personal in (b"CRM-ERASED-9", b"noor", b"Noor", b"5550001111"):
        assert personal not in request.body


def test_an_inactive_or_deleted_subscription_sends_nothing(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    clock.set_clock(FrozenClock(T0))
    admin = auth(api_key("admin"))
    created = _subscribe(client, admin, webhook_receiver.url, "points_earned")
    customer = _customer(db)
    start = _head(db)
    loyalty.earn(db, customer_id=customer, points=10, reason="Visit")
    _process_from(db, start)  # queued while active
    # when the subscription is deactivated before the dispatcher runs
    patched = client.patch(f"{URL}/{created['id']}", json={"active": False}, headers=admin)
    assert patched.status_code == 200
    assert patched.json()["active"] is False
    middle = _head(db)
    loyalty.earn(db, customer_id=customer, points=10, reason="Visit again")
    _process_from(db, middle)  # logged while inactive
    dispatch_batch(db, worker="w1")
    # then nothing was sent: the waiting delivery was suppressed, the later event not queued
    assert webhook_receiver.requests == []
    rows = list(db.scalars(select(Delivery).where(Delivery.campaign_id == created["campaign_id"])))
    assert [(d.status, d.reason) for d in rows] == [("suppressed", "subscription inactive")]
    # and a deleted subscription is gone
    assert client.delete(f"{URL}/{created['id']}", headers=admin).status_code == 204
    assert client.get(f"{URL}/{created['id']}", headers=admin).status_code == 404
    # while its endpoint, kept with the delivery history, keeps its name and says so
    again = client.post(
        URL,
        json={
            "name": created["name"],
            "url": webhook_receiver.url,
            "event_types": ["points_earned"],
        },
        headers={**admin, "Idempotency-Key": "sub-again"},
    )
    assert again.status_code == 409
    assert again.json()["field"] == "name"
    assert "inactive endpoint" in again.json()["detail"]
    assert "choose another name" in again.json()["detail"]


def test_the_api_validates_and_names_the_field(
    client: TestClient, api_key: Callable[..., str], webhook_receiver: WebhookReceiver
) -> None:
    admin = auth(api_key("admin"))
    keys = iter(range(100))

    def keyed(headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Idempotency-Key": f"try-{next(keys)}"}

    body = {"name": "CRM", "url": webhook_receiver.url, "event_types": ["points_earned"]}
    unknown = client.post(
        URL, json={**body, "event_types": ["points_earned", "points_stolen"]}, headers=keyed(admin)
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["field"] == "event_types.1"
    assert "points_stolen" in unknown.json()["detail"]
    # one refused field is named in errors too, as pydantic's own are
    assert [(e["field"], e["pointer"], e["code"]) for e in unknown.json()["errors"]] == [
        ("event_types.1", "/event_types/1", "invalid")
    ]
    extra = client.post(URL, json={**body, "secret": "mine"}, headers=keyed(admin))
    assert extra.status_code == 422
    assert extra.json()["errors"][0]["field"] == "secret"
    bad_url = client.post(URL, json={**body, "url": "ftp://example.org/x"}, headers=keyed(admin))
    assert bad_url.status_code == 422
    assert bad_url.json()["field"] == "url"
    spaced = client.post(URL, json={**body, "url": "http://x y.example/"}, headers=keyed(admin))
    assert spaced.status_code == 422, spaced.text
    assert spaced.json()["field"] == "url"
    assert client.post(URL, json=body, headers=keyed(auth(api_key("write")))).status_code == 403
    # several fields wrong: one 422 naming each, the name taken among them
    taken = client.post(URL, json={**body, "name": "Taken"}, headers=keyed(admin))
    assert taken.status_code == 201, taken.text
    several = client.post(
        URL,
        json={
            **body,
            "name": "Taken",
            "url": "http://x y.example/",
            "event_types": ["points_earned", "points_stolen"],
        },
        headers=keyed(admin),
    )
    assert several.status_code == 422, several.text
    assert several.json()["field"] == "name"
    assert [(e["field"], e["code"]) for e in several.json()["errors"]] == [
        ("name", "taken"),
        ("url", "invalid"),
        ("event_types.1", "invalid"),
    ]
    # the tries out of bounds too: the service's rules, not the schema's first, so every
    # refused field is in the one answer
    all_wrong = client.post(
        URL,
        json={
            "name": "Taken",
            "url": "http://x y.example/",
            "event_types": ["points_earned", "bogus"],
            "max_attempts": 0,
        },
        headers=keyed(admin),
    )
    assert all_wrong.status_code == 422, all_wrong.text
    assert [(e["field"], e["code"]) for e in all_wrong.json()["errors"]] == [
        ("name", "taken"),
        ("url", "invalid"),
        ("max_attempts", "invalid"),
        ("event_types.1", "invalid"),
    ]
    assert "(and 3 more)" in all_wrong.json()["detail"]
    assert client.delete(f"{URL}/{taken.json()['id']}", headers=admin).status_code == 204
    # created once per Idempotency-Key
    first = client.post(URL, json=body, headers={**admin, "Idempotency-Key": "k-1"})
    again = client.post(URL, json=body, headers={**admin, "Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    sub = first.json()["id"]
    listing = client.get(URL, headers=admin)
    assert listing.status_code == 200, listing.text
    listed = listing.json()["subscriptions"]
    assert [s["id"] for s in listed] == [sub]
    assert "secret" not in listed[0]
    null = client.patch(f"{URL}/{sub}", json={"active": None}, headers=admin)
    assert null.status_code == 422
    assert null.json()["field"] == "active"
    wrong = client.patch(f"{URL}/{sub}", json={"event_types": ["nope"]}, headers=admin)
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "event_types.0"
    changed = client.patch(
        f"{URL}/{sub}", json={"event_types": ["tier_changed", "delivery_late"]}, headers=admin
    )
    assert changed.json()["event_types"] == ["tier_changed", "delivery_late"]
    assert changed.json()["url"] == webhook_receiver.url  # not given: kept
