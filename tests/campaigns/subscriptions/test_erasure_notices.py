"""An erasure tells a webhook subscriber every Rapport id the person had: the profile erased
and each profile merged into it, so that erasing every id it was told about erases them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.sending import dispatch_batch
from rapport.campaigns.subscriptions.processor import deliver_events
from rapport.customers import service as customers
from rapport.customers.schemas import CustomerIn
from rapport.events import service as events
from rapport.events.models import Event
from rapport.flows import privacy
from rapport.loyalty import service as loyalty
from rapport.platform import clock
from rapport.platform.clock import FrozenClock
from tests.campaigns.receivers import WebhookReceiver
from tests.conftest import auth

T0 = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def _process_from(db: Session, position: int) -> None:
    deliver_events(db, events.events_after(db, position=position, limit=500))
    db.commit()


def _head(db: Session) -> int:
    return int(db.scalar(select(func.coalesce(func.max(Event.position), 0))) or 0)


def test_erasing_a_merged_person_names_every_id_the_subscriber_was_told(
    db: Session,
    client: TestClient,
    api_key: Callable[..., str],
    webhook_receiver: WebhookReceiver,
) -> None:
    # given a subscriber told about points of two profiles, by their ids and external ids
    clock.set_clock(FrozenClock(T0))
    answer = client.post(
        "/v1/webhooks/subscriptions",
        json={
            "name": "CRM",
            "url": webhook_receiver.url,
            "event_types": ["points_earned", "customer_erased"],
        },
        headers={**auth(api_key("admin")), "Idempotency-Key": "sub-crm-erasure"},
    )
    assert answer.status_code == 201, answer.text
    survivor, merged = (
        customers.create_customer(
            db, customer=CustomerIn(external_id=ref, email=f"{ref.lower()}@example.org")
        ).customer_id
        for ref in ("PRB-5", "PRB-6")
    )
    start = _head(db)
    loyalty.earn(db, customer_id=survivor, points=10, reason="Visit")
    loyalty.earn(db, customer_id=merged, points=20, reason="Visit")
    db.commit()
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    told = {(r.json()["customer_id"], r.json()["external_id"]) for r in webhook_receiver.requests}
    assert told == {(survivor, "PRB-5"), (merged, "PRB-6")}
    # when the second is merged into the first, and the first is erased
    customers.merge_customers(
        db, source_customer_id=merged, target_customer_id=survivor, reason="same", actor="ann"
    )
    db.commit()
    start = _head(db)
    webhook_receiver.requests.clear()
    privacy.erase_customer(db, customer_id=survivor, requested_by="dpo@example.org")
    _process_from(db, start)
    dispatch_batch(db, worker="w1")
    # then the subscriber is told to erase each id it knows, each notice naming one id only
    notices = [r.json() for r in webhook_receiver.requests]
    assert {n["type"] for n in notices} == {"customer_erased"}
    assert sorted(n["customer_id"] for n in notices) == sorted([survivor, merged])
    assert all(n["data"] == {} and "external_id" not in n for n in notices)
