"""A tracking key is public in a shop's pages: it may report what a person did, never assert
one of the facts Rapport's own commands log (an order placed, a review verified, a late
delivery), on which loyalty awards points and campaigns send messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rapport.domains import load_tasks
from rapport.events.ingest import RECORDED_BY, TRACKING_MAY_SEND, reserved_type_error
from rapport.events.models import Event
from rapport.platform import clock
from rapport.platform.domain_events import event_classes
from tests.conftest import auth
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _event(event_id: str, type_: str, **properties: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": type_,
        "customer_id": "C-77",
        "channel": "web",
        "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": properties,
    }


def _stored(db) -> int:  # type: ignore[no-untyped-def]
    return int(db.scalar(select(func.count()).select_from(Event)) or 0)


@pytest.mark.parametrize(
    ("type_", "properties", "where"),
    [
        ("review_verified", {"review_id": "r1", "sku": "W-1", "rating": 5}, "/v1/feedback/"),
        ("order_placed", {"order_id": "X1", "total_minor": 900000}, "POST /v1/orders "),
        ("delivery_late", {"order_id": "X1"}, "POST /v1/orders/{order_id}/status"),
        ("points_earned", {"points": 5000}, "/v1/loyalty/members/{customer_id}/earn"),
    ],
)
def test_a_tracking_event_may_not_claim_one_of_rapport_s_own_facts(
    client, api_key, db, type_, properties, where
) -> None:
    # given a shop's tracking key
    clock.set_clock(lambda: NOW)
    key = api_key("ingest")
    before = _stored(db)

    # when it sends a fact that earns points or sends messages
    response = client.post(
        "/v1/events", json=_event("evt-claim", type_, **properties), headers=auth(key)
    )

    # then it is refused, naming the type and saying what to do; nothing is stored
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "type"
    assert problem["errors"][0]["code"] == "reserved_type"
    assert where in problem["detail"]
    assert _stored(db) == before


def test_the_types_a_site_shares_with_commands_are_still_tracked(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    key = api_key("ingest")
    identified = _event("evt-id", "identified", traits={"email": "c77@example.com"})
    consent = _event("evt-consent", "consent_changed", purpose="analytics", granted=True)
    for body in (identified, consent):
        assert client.post("/v1/events", json=body, headers=auth(key)).status_code == 201


def test_segment_calls_and_batches_refuse_them_per_message(client, api_key, db) -> None:
    clock.set_clock(lambda: NOW)
    key = api_key("ingest")
    basic = basic_auth(key)
    claim = {"userId": "C-77", "event": "Review Verified", "properties": {"rating": 5}}

    single = client.post("/v1/track", json=claim, headers=basic)
    assert single.status_code == 422, single.text
    assert single.json()["field"] == "event"

    viewed = {"type": "track", "userId": "C-77", "event": "Product Viewed", "messageId": "m-2"}
    batch = client.post(
        "/v1/batch",
        json={"batch": [{**claim, "type": "track", "messageId": "m-1"}, viewed]},
        headers=basic,
    )
    assert batch.status_code == 200
    assert (batch.json()["accepted"], batch.json()["rejected"]) == (1, 1)
    assert batch.json()["errors"][0]["reason"] == "reserved_type"

    native = client.post(
        "/v1/events/batch",
        json={"events": [_event("evt-b1", "order_placed", order_id="X2")]},
        headers=auth(key),
    )
    assert native.json()["rejected"] == 1


def test_each_reserved_type_says_how_that_fact_is_recorded(app) -> None:
    # given every fact Rapport logs itself, but the two a site may send too
    load_tasks()
    reserved = sorted(set(event_classes()) - TRACKING_MAY_SEND)
    assert "delivery_late" in reserved

    # then each refusal names how that very fact is recorded
    assert [t for t in reserved if t not in RECORDED_BY] == []
    paths = {
        path
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in {"post", "put"}
    }
    for type_ in reserved:
        error = reserved_type_error(type_, ("event",))
        assert error is not None
        named = re.findall(r"(?:POST|PUT) (/v1/[^ ,;)]*)", error[1])
        assert all(path in paths for path in named), (type_, named)
        assert named or "Rapport logs it itself" in error[1], type_
    # a late delivery is recorded by the order's status updates, not by posting an order
    late = reserved_type_error("delivery_late", ("event",))
    assert late is not None
    assert "POST /v1/orders/{order_id}/status" in late[1]
    assert "Order Completed" not in late[1]
