"""Every command that creates something or acts takes an Idempotency-Key, over real HTTP on
both databases: a retry with the same key is answered with the first answer and applies
nothing more (rows counted, messages sent counted), the same key with another body is 422,
and a command without a key is 400. And the OpenAPI document says which operations take it,
so a new command without the key fails here."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rapport.campaigns.delivery.queueing import Recipient, queue_deliveries
from rapport.campaigns.models import Campaign, Delivery
from rapport.campaigns.planning import editing
from rapport.catalog.models import ChannelPrice, Product, Store
from rapport.customers.models import Customer, CustomerMerge, Identity, PrivacyRequest
from rapport.events.models import Event
from rapport.feedback import service as feedback
from rapport.feedback.models import Invitation, Review, Survey
from rapport.feedback.schemas import ReviewIn, SurveyIn
from rapport.loyalty.models import Announcement
from rapport.orders.models import OrderStatusChange
from rapport.platform import clock
from rapport.platform.models import ApiKey, Job
from tests.campaigns.planning.factories import make_customer, make_segment, write_template
from tests.conftest import auth
from tests.orders.factories import CHIANTI, order_body, seed_catalog

_numbers = itertools.count(1)


def _count(db: Session, model: Any, *where: Any) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@dataclass(frozen=True)
class Sent:
    """A command as the test sends it: path and body, and another body (or path) that the
    same key must refuse. ``other`` is None for a command with nothing to vary."""

    path: str
    body: dict[str, Any] | None
    other: tuple[str, dict[str, Any] | None] | None


@dataclass(frozen=True)
class Case:
    name: str
    scopes: tuple[str, ...]
    prepare: Callable[[Session, TestClient, dict[str, str]], Sent]
    # What the command leaves behind (rows counted, times changed): the command changes it
    # once, and a retry must leave it as the first left it.
    applied: Callable[[Session], Any]
    # A replayed answer that differs from the first on purpose (a key's secret is never kept).
    replayed: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda answer: answer)


def _customer(db: Session) -> str:
    return make_customer(db, consents={"marketing_email": True})


def _new_customer(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    return Sent("/v1/customers", {"last_name": "D"}, ("/v1/customers", {"last_name": "E"}))


def _identify(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    body = {"identities": {"email": "same@example.com"}, "first_name": "Ann"}
    return Sent(
        "/v1/customers/identify", body, ("/v1/customers/identify", {**body, "first_name": "Bo"})
    )


def _merge(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    body = {
        "source_customer_id": _customer(db),
        "target_customer_id": _customer(db),
        "reason": "one",
    }
    return Sent("/v1/customers/merge", body, ("/v1/customers/merge", {**body, "reason": "two"}))


def _identity(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    path = f"/v1/customers/{_customer(db)}/identities"
    body = {"kind": "loyalty_card", "value": "CARD-1"}
    return Sent(path, body, (path, {**body, "value": "CARD-2"}))


def _erase(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    path = f"/v1/customers/{_customer(db)}/erase"
    body = {"requested_by": "dpo@example.com", "reason": "asked"}
    return Sent(path, body, (path, {**body, "reason": "asked twice"}))


def _announcement(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    body = {"kind": "new_benefit", "title": "New store", "body": "Open in Lyon", "audience": "all"}
    return Sent(
        "/v1/loyalty/announcements", body, ("/v1/loyalty/announcements", {**body, "title": "Other"})
    )


def _api_key(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    body = {"name": "till 7", "scopes": ["ingest"]}
    return Sent("/v1/keys", body, ("/v1/keys", {**body, "name": "till 8"}))


def _channel_price(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    seed_catalog(db)
    body = {"sku": CHIANTI, "channel": "app", "price_minor": 1100, "reason": "app launch"}
    return Sent("/v1/prices/channel", body, ("/v1/prices/channel", {**body, "price_minor": 1000}))


def _products(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    product = {
        "sku": "P-1",
        "name": "Scarf",
        "price_minor": 2500,
        "cost_minor": 900,
        "currency": "EUR",
    }
    other = {"products": [{**product, "name": "Hat"}]}
    return Sent("/v1/products/bulk", {"products": [product]}, ("/v1/products/bulk", other))


def _stores(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    store = {
        "store_id": "S-9",
        "name": "Nantes",
        "city": "Nantes",
        "address": "1 quai",
        "country": "FR",
    }
    other = {"stores": [{**store, "name": "Nantes 2"}]}
    return Sent("/v1/stores/bulk", {"stores": [store]}, ("/v1/stores/bulk", other))


SURVEY = {
    "survey_id": "nps-web",
    "name": "NPS",
    "kind": "nps",
    "trigger": "manual",
    "fatigue_days": 0,
}


def _survey(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    return Sent(
        "/v1/feedback/surveys", SURVEY, ("/v1/feedback/surveys", {**SURVEY, "name": "Other"})
    )


def _invitation(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    feedback.save_survey(db, survey=SurveyIn.model_validate(SURVEY))
    path = "/v1/feedback/surveys/nps-web/invitations"
    body = {"customer_id": _customer(db), "channel": "web"}
    return Sent(path, body, (path, {**body, "channel": "app"}))


def _moderation(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    seed_catalog(db)
    review = feedback.submit_review(
        db, review=ReviewIn(customer_id="cus_ghost", sku=CHIANTI, rating=5, text="Great")
    )
    path = f"/v1/feedback/reviews/{review.review_id}/moderation"
    return Sent(path, {"decision": "publish"}, (path, {"decision": "reject"}))


def _training(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    return Sent("/v1/recommendations/models", None, None)


def _placed(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    placed = client.post(
        "/v1/orders",
        json=order_body(**overrides),
        headers={**headers, "Idempotency-Key": f"order-{next(_numbers)}"},
    )
    assert placed.status_code == 201, placed.text
    return placed.json()  # type: ignore[no-any-return]


def _pickup(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    seed_catalog(db)
    order = _placed(
        client,
        headers,
        fulfilment="pickup_in_store",
        store_id="st-par-01",
        shipping_minor=0,
        total_minor=3000,
        payments=[],
    )
    path = f"/v1/orders/{order['order_id']}/pickup"
    body = {"pickup_code": order["pickup_code"], "store_id": "st-par-01"}
    return Sent(path, body, (path, {**body, "store_id": "st-lyo-01"}))


def _status(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    seed_catalog(db)
    order = _placed(client, headers)
    path = f"/v1/orders/{order['order_id']}/status"
    return Sent(path, {"status": "shipped"}, (path, {"status": "delivered"}))


def _campaign(db: Session, *, status: str = "draft") -> int:
    _customer(db)
    campaign = editing.create_campaign(
        db, settings=editing.CampaignSettings(name="Autumn", segment_id=make_segment(db))
    )
    write_template(db, campaign.id)
    if status != "draft":
        campaign.status = status
        db.commit()
    return campaign.id


def _campaign_action(action: str, status: str = "draft", body: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    def prepare(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
        first, second = _campaign(db, status=status), _campaign(db, status=status)
        return Sent(
            f"/v1/campaigns/{first}/{action}", body, (f"/v1/campaigns/{second}/{action}", body)
        )

    return prepare


def _stamps(model: Any, *columns: str) -> Callable[[Session], Any]:
    """The rows of ``model`` as those columns have them (a change moves a time on)."""

    def read(db: Session) -> Any:
        db.expire_all()
        return sorted(
            tuple(str(getattr(row, column)) for column in columns)
            for row in db.scalars(select(model))
        )

    return read


def _dead_delivery(db: Session) -> int:
    campaign = db.get(Campaign, _campaign(db, status="sending"))
    assert campaign is not None
    queue_deliveries(db, campaign=campaign, recipients=[Recipient(customer_id=_customer(db))])
    delivery = db.scalars(select(Delivery).where(Delivery.campaign_id == campaign.id)).one()
    delivery.status = "dead"
    db.commit()
    return delivery.id


def _replay(db: Session, client: TestClient, headers: dict[str, str]) -> Sent:
    first, second = _dead_delivery(db), _dead_delivery(db)
    return Sent(f"/v1/deliveries/{first}/replay", None, (f"/v1/deliveries/{second}/replay", None))


CASES = [
    Case("create customer", ("write",), _new_customer, lambda db: _count(db, Customer)),
    Case(
        "identify customer",
        ("write",),
        _identify,
        lambda db: _count(db, Event, Event.type == "identified"),
    ),
    Case("merge customers", ("write",), _merge, lambda db: _count(db, CustomerMerge)),
    Case("add identity", ("write",), _identity, lambda db: _count(db, Identity)),
    Case("erase customer", ("admin",), _erase, lambda db: _count(db, PrivacyRequest)),
    Case("announcement", ("admin",), _announcement, lambda db: _count(db, Announcement)),
    Case(
        "api key",
        ("admin",),
        _api_key,
        lambda db: _count(db, ApiKey),
        replayed=lambda answer: {**answer, "secret": None},
    ),
    Case("channel price", ("write",), _channel_price, lambda db: _count(db, ChannelPrice)),
    Case(
        "products bulk",
        ("write",),
        _products,
        _stamps(Product, "sku", "name", "updated_at"),
    ),
    Case(
        "stores bulk",
        ("write",),
        _stores,
        _stamps(Store, "store_id", "name", "updated_at"),
    ),
    Case(
        "survey",
        ("write",),
        _survey,
        _stamps(Survey, "survey_id", "name", "updated_at"),
    ),
    Case("invitation", ("write",), _invitation, lambda db: _count(db, Invitation)),
    Case(
        "moderation",
        ("write",),
        _moderation,
        _stamps(Review, "review_id", "status", "moderated_at"),
    ),
    Case(
        "training",
        ("write",),
        _training,
        lambda db: _count(db, Job, Job.kind == "recommend.train"),
    ),
    Case("pickup", ("write",), _pickup, lambda db: _count(db, OrderStatusChange)),
    Case("delivery status", ("write",), _status, lambda db: _count(db, OrderStatusChange)),
    Case(
        "launch",
        ("write",),
        _campaign_action("launch"),
        _stamps(Campaign, "id", "status", "updated_at"),
    ),
    Case(
        "schedule",
        ("write",),
        _campaign_action("schedule", body={"scheduled_at": "2099-01-01T09:00:00+00:00"}),
        _stamps(Campaign, "id", "status", "updated_at"),
    ),
    Case(
        "pause",
        ("write",),
        _campaign_action("pause", "sending"),
        _stamps(Campaign, "id", "status", "updated_at"),
    ),
    Case(
        "resume",
        ("write",),
        _campaign_action("resume", "paused"),
        _stamps(Campaign, "id", "status", "updated_at"),
    ),
    Case(
        "cancel",
        ("write",),
        _campaign_action("cancel", "scheduled"),
        _stamps(Campaign, "id", "status", "updated_at"),
    ),
    Case("replay", ("admin",), _replay, _stamps(Delivery, "id", "status", "updated_at")),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_retry_with_the_same_key_is_answered_not_applied(
    case: Case, client: TestClient, api_key: Callable[..., str], db: Session
) -> None:
    # given what the command acts on, and a key that may send it
    clock.set_clock(clock.FrozenClock(clock.now()))
    headers = auth(api_key(*case.scopes, "write"))
    sent = case.prepare(db, client, headers)
    before = case.applied(db)
    keyed = {**headers, "Idempotency-Key": f"retry-{case.name}"}

    # when it is sent, and sent again with the same key a moment later
    first = client.post(sent.path, json=sent.body, headers=keyed)
    assert first.status_code < 300, first.text
    applied = case.applied(db)
    clock.set_clock(clock.FrozenClock(clock.now() + timedelta(seconds=5)))
    again = client.post(sent.path, json=sent.body, headers=keyed)

    # then the retry is answered with the first answer and applies nothing more
    assert applied != before
    assert again.status_code == first.status_code
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == case.replayed(first.json())
    assert case.applied(db) == applied

    # and the same key with another request is refused, changing nothing
    if sent.other is not None:
        path, body = sent.other
        refused = client.post(path, json=body, headers=keyed)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "Idempotency-Key"
        assert "another body, or another resource in the path" in refused.json()["detail"]
        assert case.applied(db) == applied

    # and without a key the command is refused before it starts
    missing = client.post(sent.path, json=sent.body, headers=headers)
    assert missing.status_code == 400, missing.text
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"] == "https://rapport.dev/problems/idempotency-key-required"
    assert missing.json()["title"] == "Idempotency-Key header required"
    assert missing.json()["field"] == "Idempotency-Key"
    assert case.applied(db) == applied


# The POSTs that take no Idempotency-Key, and why (docs/api.md, "Idempotency-Key").
TRACKING = {
    # stored once per event_id (Segment's messageId)
    "/v1/events",
    "/v1/events/batch",
    "/v1/track",
    "/v1/page",
    "/v1/screen",
    "/v1/identify",
    "/v1/alias",
    "/v1/group",
    "/v1/batch",
}
COMPUTE_ONLY = {
    "/v1/loyalty/simulate",
    "/v1/loyalty/checkout",
    "/v1/loyalty/coupons/validate",
    "/v1/segments/preview",
    "/v1/orders/return-risk",
}
SETS_A_STATE = {"/v1/customers/{customer_id}/inbox/{message_id}/read"}


def test_every_command_takes_an_idempotency_key_in_the_openapi_document(app: FastAPI) -> None:
    document = app.openapi()
    posts = {
        path: operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method == "post" and operation.get("security")
    }
    exempt = TRACKING | COMPUTE_ONLY | SETS_A_STATE
    assert exempt <= set(posts), sorted(exempt - set(posts))  # the list names real routes
    for path, operation in posts.items():
        keys = [
            parameter
            for parameter in operation.get("parameters", [])
            if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
        ]
        if path in exempt:
            assert keys == [], f"POST {path} changes nothing twice; it takes no key"
        else:
            assert [k["required"] for k in keys] == [True], f"POST {path} needs Idempotency-Key"
