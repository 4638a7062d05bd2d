"""An erased profile's own Rapport id is on the blocklist: tracking that names it as the
sender is refused, by the native and the Segment-compatible APIs."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rapport.customers import service as customers
from rapport.events import service as events
from rapport.flows import privacy
from rapport.platform import clock
from tests.conftest import auth
from tests.events.factories import basic_auth


def test_events_naming_an_erased_customer_id_are_refused(client, api_key, db: Session) -> None:
    # given an erased customer
    cid = customers.identify_customer(db, identities={"email": "ida.revenant@example.org"})
    cid = cid.customer_id
    privacy.erase_customer(db, customer_id=cid, requested_by="dpo")
    secret = api_key("ingest")
    stored_before = events.count_events(db)

    # when a client sends an event naming their Rapport id as the sender
    native = client.post(
        "/v1/events",
        json={
            "event_id": "ev-revenant-1",
            "type": "page_viewed",
            "customer_id": cid,
            "channel": "web",
            "occurred_at": clock.now().isoformat(),
        },
        headers=auth(secret),
    )
    segment = client.post(
        "/v1/batch",
        json={
            "batch": [
                {
                    "type": "track",
                    "messageId": "m-revenant",
                    "userId": cid,
                    "event": "Product Viewed",
                }
            ]
        },
        headers=basic_auth(secret),
    )

    # then both are refused as an erased person's, naming the field, and nothing is stored
    assert native.status_code == 422, native.text
    assert native.headers["content-type"].startswith("application/problem+json")
    assert native.json()["field"] == "customer_id"
    assert segment.status_code == 200, segment.text
    answer = segment.json()
    assert (answer["accepted"], answer["rejected"]) == (0, 1)
    assert [(e["reason"], e["field"]) for e in answer["errors"]] == [
        ("suppressed", "batch.0.userId")
    ]
    assert events.count_events(db) == stored_before
