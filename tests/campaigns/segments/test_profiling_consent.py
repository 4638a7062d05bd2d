"""Behavioural conditions (what a customer bought, spent, browsed: profiling) pick only those
who granted ``personalization``; what they told (their city) and consent itself pick anyone.
The live count, the stored members and the launch all read the same rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.campaigns.segments.factories import make_customer
from tests.conftest import auth

BIG_SPENDERS = {
    "match": "all",
    "conditions": [
        {"kind": "trait", "field": "spend_minor", "op": "gte", "value": 10_000},
        {"kind": "event", "type": "product_viewed", "did": False, "days": 30},
    ],
}
IN_LYON = {"conditions": [{"kind": "trait", "field": "home_city", "op": "eq", "value": "Lyon"}]}
# either told (Nice) or behavioural: the city alone still picks a customer without the grant
NICE_OR_BIG = {
    "match": "any",
    "conditions": [
        {"kind": "trait", "field": "home_city", "op": "eq", "value": "Nice"},
        {"kind": "trait", "field": "spend_minor", "op": "gte", "value": 10_000},
    ],
}
BIG = {"spend_minor": 20_000, "order_count": 4}


def _members(client: TestClient, headers: dict[str, str], segment_id: int) -> set[str]:
    answer = client.get(
        f"/v1/segments/{segment_id}/members", params={"limit": 1000}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return set(answer.json()["members"])


def _preview(client: TestClient, headers: dict[str, str], definition: dict[str, Any]) -> Any:
    answer = client.post(
        "/v1/segments/preview", json={"definition": definition, "sample": 50}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _choose(client: TestClient, key: str, customer_id: str, *, granted: bool) -> None:
    answer = client.put(
        f"/v1/customers/{customer_id}/consents/personalization",
        json={"granted": granted, "source": "web"},
        headers=auth(key),
    )
    assert answer.status_code == 200, answer.text


def test_a_behavioural_segment_picks_only_those_who_grant_personalization(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    writer, reader = api_key("write"), auth(api_key("read"))
    # given two big spenders in Lyon, one who granted personalization, one who did not
    # (email only), and a third who refused it
    profiled = make_customer(db, home_city="Lyon", traits=BIG)
    email_only = make_customer(db, consents={"marketing_email": True}, home_city="Lyon", traits=BIG)
    refused = make_customer(
        db,
        consents={"marketing_email": True, "personalization": False},
        home_city="Nice",
        traits=BIG,
    )
    ours = {profiled, email_only, refused}
    # when a segment of big spenders (and a "did not" condition) is saved
    created = client.post(
        "/v1/segments",
        json={"name": "Big spenders", "definition": BIG_SPENDERS},
        headers={**auth(writer), "Idempotency-Key": "big-1"},
    )
    assert created.status_code == 201, created.text
    segment = created.json()
    # then its members, its count and the live preview hold only the one who granted it
    assert _members(client, reader, segment["id"]) & ours == {profiled}
    preview = _preview(client, reader, BIG_SPENDERS)
    assert (
        preview["count"] == segment["member_count"] == len(_members(client, reader, segment["id"]))
    )
    assert {m["customer_id"] for m in preview["sample"]} & ours == {profiled}
    # and a segment on what they told (their city) holds them all, as does one on consent
    assert {m["customer_id"] for m in _preview(client, reader, IN_LYON)["sample"]} & ours == {
        profiled,
        email_only,
    }
    no_grant = {"conditions": [{"kind": "consent", "purpose": "personalization", "granted": False}]}
    assert {m["customer_id"] for m in _preview(client, reader, no_grant)["sample"]} & ours == {
        email_only,
        refused,
    }
    # and with "any", the city picks the one who refused, the spend does not pick the other
    assert {m["customer_id"] for m in _preview(client, reader, NICE_OR_BIG)["sample"]} & ours == {
        profiled,
        refused,
    }

    # when the email-only customer grants personalization
    _choose(client, writer, email_only, granted=True)
    # then the live preview and the refreshed members hold them
    assert {m["customer_id"] for m in _preview(client, reader, BIG_SPENDERS)["sample"]} & ours == {
        profiled,
        email_only,
    }
    refreshed = client.put(
        f"/v1/segments/{segment['id']}", json={"definition": BIG_SPENDERS}, headers=auth(writer)
    )
    assert refreshed.status_code == 200, refreshed.text
    assert _members(client, reader, segment["id"]) & ours == {profiled, email_only}

    # and once they withdraw it, they are out again
    _choose(client, writer, email_only, granted=False)
    assert {m["customer_id"] for m in _preview(client, reader, BIG_SPENDERS)["sample"]} & ours == {
        profiled
    }
    client.put(
        f"/v1/segments/{segment['id']}", json={"definition": BIG_SPENDERS}, headers=auth(writer)
    )
    assert _members(client, reader, segment["id"]) & ours == {profiled}
