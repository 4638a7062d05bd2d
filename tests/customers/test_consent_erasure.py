"""Consent after erasure: the overview's reach counts live customers only, and an erased
person's consent rows grant nothing and keep no free-text source."""

from __future__ import annotations

from sqlalchemy import select

from rapport.customers import service as customers
from rapport.customers.models import Consent, ConsentChange
from tests.conftest import auth, command


def test_an_erased_persons_consents_count_nowhere_and_keep_no_source(client, api_key, db):
    key = api_key("write", "admin")
    ids = []
    for name in ("ana", "bo"):
        answer = client.post(
            "/v1/customers",
            json={"email": f"{name}@example.com", "consents": {"marketing_email": True}},
            headers=command(key),
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["customer_id"])
    client.put(
        f"/v1/customers/{ids[1]}/consents/analytics",
        json={"granted": True, "source": "call with Bo Lindqvist"},
        headers=auth(key),
    )
    assert customers.consent_counts(db) == {"marketing_email": 2, "analytics": 1}
    erased = client.post(
        f"/v1/customers/{ids[1]}/erase",
        json={"requested_by": "DPO ticket #1"},
        headers=command(key),
    )
    assert erased.status_code == 200, erased.text
    db.expire_all()
    assert customers.consent_counts(db) == {"marketing_email": 1}
    assert customers.count_customers(db) == 1
    rows = db.scalars(select(Consent).where(Consent.customer_id == ids[1])).all()
    assert {(c.purpose, c.granted, c.source) for c in rows} == {
        ("marketing_email", False, "erased"),
        ("analytics", False, "erased"),
    }
    history = db.scalars(select(ConsentChange).where(ConsentChange.customer_id == ids[1])).all()
    assert len(history) == 2
    assert {c.source for c in history} == {"erased"}
