"""Erasure leaves no free text in tracked events, whatever the key: only text known to name a
thing (a SKU, an order, a currency, the page) stays; amounts still add up."""

from __future__ import annotations

import base64
import json

from sqlalchemy import select

from rapport.events.models import Event
from tests.conftest import command
from tests.customers.factories import process

REVIEW = "Drank it at my flat on 7 Lindenstrasse with my husband Wolfram"
INSTRUCTIONS = "Leave it with the neighbour, gate code 4711"


def test_free_text_and_groups_in_tracked_events_are_gone_after_erasure(client, api_key, db):
    key = api_key("write", "admin", "ingest")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    made = client.post(
        "/v1/customers",
        json={"external_id": "Z-1", "email": "zelda@example.com"},
        headers=command(key),
    )
    assert made.status_code == 201, made.text
    messages = [
        {
            "type": "track",
            "userId": "Z-1",
            "event": "Product Reviewed",
            "messageId": "z-review",
            "properties": {"product_id": "W-1", "rating": 4, "review_body": REVIEW},
        },
        {
            "type": "track",
            "userId": "Z-1",
            "event": "Checkout Step Completed",
            "messageId": "z-step",
            "properties": {
                "step": "2",
                "order_id": "O-77",
                "delivery_instructions": INSTRUCTIONS,
                "gift": {"wrapping": "blue", "card": {"to": "Wolfram, my love"}},
                "products": [{"sku": "W-1", "name": "Riesling 2021", "price": 12.5, "quantity": 2}],
                "currency": "EUR",
            },
        },
        {"type": "group", "userId": "Z-1", "groupId": "household-zelda", "messageId": "z-grp"},
    ]
    sent = client.post("/v1/batch", json={"batch": messages}, headers=basic)
    assert sent.status_code == 200, sent.text
    process(db)
    erased = client.post(
        "/v1/customers/Z-1/erase", json={"requested_by": "DPO ticket #2"}, headers=command(key)
    )
    assert erased.status_code == 200, erased.text
    db.expire_all()
    stored = {
        event.type: event
        for event in db.scalars(
            select(Event).where(
                Event.type.in_(["product_reviewed", "checkout_step_completed", "grouped"])
            )
        )
    }
    assert set(stored) == {"product_reviewed", "checkout_step_completed", "grouped"}
    text = json.dumps([[e.properties, e.context] for e in stored.values()])
    for personal in ("Lindenstrasse", "Wolfram", "4711", "household-zelda", "blue"):
        assert personal not in text
    review = stored["product_reviewed"].properties
    assert review == {"product_id": "W-1", "rating": 4, "review_body": "erased"}
    step = stored["checkout_step_completed"].properties
    assert step["order_id"] == "O-77"
    assert step["currency"] == "EUR"
    assert step["delivery_instructions"] == "erased"
    assert step["gift"] == {"wrapping": "erased", "card": {"to": "erased"}}
    assert step["products"] == [
        {"sku": "W-1", "name": "Riesling 2021", "price": 12.5, "quantity": 2}
    ]
    assert stored["grouped"].properties["group_id"] == "erased"
