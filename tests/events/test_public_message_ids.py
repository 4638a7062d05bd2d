"""A public (ingest-only) key's event never makes a trusted key's event with the same id a
duplicate: a page could otherwise claim the messageId the shop's server derives from an order
before the order is sent, and the order would be dropped. The trusted event takes its id, the
public one is kept under an id nobody can send (it begins with a space); retries from either
key still de-duplicate (docs/tracking.md, one event per message)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.events import service as events
from rapport.events.models import Event
from rapport.orders.models import Order
from rapport.platform import clock
from rapport.platform import service as platform
from tests.conftest import auth
from tests.events.factories import basic_auth
from tests.orders.factories import CHIANTI, seed_catalog
from tests.orders.test_tracked_orders import process

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLAIM = {"userId": "T2-1005", "event": "Button Clicked", "messageId": "order-T2-O-5"}
ORDER = {
    "userId": "T2-1005",
    "event": "Order Completed",
    "messageId": "order-T2-O-5",
    "properties": {
        "order_id": "T2-O-5",
        "currency": "EUR",
        "products": [{"sku": CHIANTI, "price": 9.49}],
    },
}


def _key(db: Session, *scopes: str) -> str:
    issued = platform.create_api_key(
        db, name=f"key {'+'.join(scopes)}", scopes=[platform.Scope(s) for s in scopes]
    )
    issued.key.orders_from_tracking = True
    db.commit()
    return issued.secret


def _stored(db: Session) -> list[tuple[str, str, str]]:
    tracked = select(Event.event_id, Event.type, Event.source).where(Event.source != "command")
    rows = db.execute(tracked.order_by(Event.position))
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_public_key_cannot_claim_the_id_of_the_servers_order(client, db) -> None:
    # given a shop whose pages carry a public key and whose server sends orders
    clock.set_clock(lambda: NOW)
    seed_catalog(db, stock=50)
    public, server = _key(db, "ingest"), _key(db, "ingest", "write")

    # when a page sends the messageId the server will derive from order T2-O-5, then the
    # server sends the order (twice: a retry), and the public key its message again
    claim = client.post("/v1/track", json=CLAIM, headers=basic_auth(public))
    assert claim.status_code == 200, claim.text
    for _ in range(2):
        sent = client.post("/v1/track", json=ORDER, headers=basic_auth(server))
        assert sent.status_code == 200, sent.text
    again = client.post(
        "/v1/batch", json={"batch": [{**CLAIM, "type": "track"}]}, headers=basic_auth(public)
    )
    assert again.json()["duplicates"] == 1, again.text
    retried = client.post(
        "/v1/batch", json={"batch": [{**ORDER, "type": "track"}]}, headers=basic_auth(server)
    )
    assert (retried.json()["accepted"], retried.json()["duplicates"]) == (0, 1), retried.text
    process(db)

    # then the order holds its id and is placed once; the page's message is kept aside
    assert _stored(db) == [
        (" order-T2-O-5", "button_clicked", "segment-public"),
        ("order-T2-O-5", "order_completed", "segment"),
    ]
    assert list(db.scalars(select(Order.order_id))) == ["T2-O-5"]


def test_an_event_id_a_public_key_used_is_still_the_servers_on_the_events_api(client, db) -> None:
    # given an event id a public key has used
    clock.set_clock(lambda: NOW)
    public, server = _key(db, "ingest"), _key(db, "ingest", "write")
    event = {
        "event_id": "sale-77",
        "type": "product_viewed",
        "customer_id": "C-1",
        "channel": "web",
        "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "properties": {"sku": "A"},
    }
    assert client.post("/v1/events", json=event, headers=auth(public)).status_code == 201

    # when the server sends another event with that id, and sends it again
    own = {**event, "properties": {"sku": "B"}}
    first = client.post("/v1/events", json=own, headers=auth(server))
    second = client.post("/v1/events", json=own, headers=auth(server))

    # then it is stored (not a conflict with the page's), and the retry is a duplicate
    assert first.status_code == 201, first.text
    assert (first.json()["event_id"], first.json()["duplicate"]) == ("sale-77", False)
    assert second.status_code == 200, second.text
    assert second.json()["position"] == first.json()["position"]
    assert _stored(db) == [
        (" sale-77", "product_viewed", "api-public"),
        ("sale-77", "product_viewed", "api"),
    ]


def test_a_public_and_a_trusted_event_committed_together_are_both_kept(db) -> None:
    # given a public key's event and a trusted one with the same id, in one group commit
    when = datetime.now(UTC) - timedelta(minutes=1)

    def sent(source: str) -> events.NewEvent:
        return {
            "event_id": "order-9",
            "type": "button_clicked" if source.endswith("public") else "order_completed",
            "user_id": "C-9",
            "anonymous_id": None,
            "channel": "web",
            "occurred_at": when,
            "properties": {},
            "context": {},
            "source": source,
        }

    # when they are stored together, in either order, and each sent again
    outcomes = events.ingest_events(db, events=[sent("segment-public"), sent("segment")])
    again = events.ingest_events(db, events=[sent("segment"), sent("segment-public")])

    # then both are accepted once, the trusted one under its id
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert [o.status for o in again] == ["duplicate", "duplicate"]
    assert _stored(db) == [
        (" order-9", "button_clicked", "segment-public"),
        ("order-9", "order_completed", "segment"),
    ]
