"""Consent over the API: a repeated choice records nothing; the history pages."""

from __future__ import annotations

from sqlalchemy import func, select

from rapport.customers.models import ConsentChange
from rapport.events.models import Event
from tests.conftest import auth, command


def _customer(client, writer) -> str:
    return client.post(
        "/v1/customers", json={"email": "ana@example.com"}, headers=command(writer)
    ).json()["customer_id"]


def test_the_same_consent_sent_again_records_nothing(client, api_key, db) -> None:
    writer = api_key("write")
    customer_id = _customer(client, writer)
    for _ in range(3):
        answer = client.put(
            f"/v1/customers/{customer_id}/consents/analytics",
            json={"granted": True, "source": "web"},
            headers=auth(writer),
        )
        assert answer.status_code == 200
        assert answer.json()["granted"] is True
    assert db.scalar(select(func.count()).select_from(ConsentChange)) == 1
    changed = select(func.count()).select_from(Event).where(Event.type == "consent_changed")
    assert db.scalar(changed) == 1
    # a change is recorded
    client.put(
        f"/v1/customers/{customer_id}/consents/analytics",
        json={"granted": False, "source": "web"},
        headers=auth(writer),
    )
    assert db.scalar(select(func.count()).select_from(ConsentChange)) == 2
    assert db.scalar(changed) == 2


def test_consent_history_pages_with_a_cursor(client, api_key) -> None:
    writer, reader = api_key("write"), api_key("read")
    customer_id = _customer(client, writer)
    for granted in (True, False, True):
        client.put(
            f"/v1/customers/{customer_id}/consents/marketing_email",
            json={"granted": granted},
            headers=auth(writer),
        )
    url = f"/v1/customers/{customer_id}/consents/history"
    first = client.get(f"{url}?limit=2", headers=auth(reader)).json()
    assert [c["granted"] for c in first["items"]] == [True, False]
    assert first["next_cursor"]
    last = client.get(f"{url}?limit=2&cursor={first['next_cursor']}", headers=auth(reader)).json()
    assert [c["granted"] for c in last["items"]] == [True]
    assert last["next_cursor"] is None
    bad = client.get(f"{url}?cursor=nope", headers=auth(reader))
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"
    too_many = client.get(f"{url}?limit=501", headers=auth(reader))
    assert too_many.status_code == 422
