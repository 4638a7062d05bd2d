"""The segments API: create (once per Idempotency-Key), read, change, delete, preview without
saving, members page by page; scopes; problems naming the field."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.campaigns.segments.factories import make_customer
from tests.conftest import auth

EMAIL_OK = {"match": "all", "conditions": [{"kind": "consent", "purpose": "marketing_email"}]}


def test_create_read_change_delete_and_page_members(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    people = sorted(make_customer(db) for _ in range(3))
    writer = auth(api_key("write"))
    reader = auth(api_key("read"))
    body = {"name": "Email OK", "definition": EMAIL_OK}
    created = client.post("/v1/segments", json=body, headers={**writer, "Idempotency-Key": "seg-1"})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["member_count"] >= 3
    again = client.post("/v1/segments", json=body, headers={**writer, "Idempotency-Key": "seg-1"})
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == segment["id"]
    listed = client.get("/v1/segments", headers=reader).json()
    assert [s["name"] for s in listed].count("Email OK") == 1
    # members, two at a time, with a cursor
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if after:
            params["after"] = after
        page = client.get(f"/v1/segments/{segment['id']}/members", params=params, headers=reader)
        assert page.status_code == 200
        seen += page.json()["members"]
        after = page.json()["next"]
        if after is None:
            break
    assert seen == sorted(seen)
    assert set(people) <= set(seen)
    assert len(seen) == segment["member_count"]
    # change and delete
    changed = client.put(
        f"/v1/segments/{segment['id']}",
        json={
            "name": "Email refused",
            "definition": {
                "conditions": [{"kind": "consent", "purpose": "marketing_email", "granted": False}]
            },
        },
        headers=writer,
    )
    assert changed.status_code == 200
    assert changed.json()["name"] == "Email refused"
    assert not set(people) & set(
        client.get(f"/v1/segments/{segment['id']}/members", headers=reader).json()["members"]
    )
    assert client.delete(f"/v1/segments/{segment['id']}", headers=writer).status_code == 204
    assert client.get(f"/v1/segments/{segment['id']}", headers=reader).status_code == 404


def test_preview_counts_without_saving(
    client: TestClient, db: Session, api_key: Callable[..., str]
) -> None:
    make_customer(db, first_name="Ada", last_name="Lovelace", email="ada@example.com")
    reader = auth(api_key("read"))
    answer = client.post("/v1/segments/preview", json={"definition": EMAIL_OK}, headers=reader)
    assert answer.status_code == 200
    preview = answer.json()
    assert preview["count"] >= 1
    ada = next(m for m in preview["sample"] if m["name"] == "Ada L.")
    assert ada["email"] == "a•••@example.com"
    assert client.get("/v1/segments", headers=reader).json() == []


def test_a_bad_condition_is_named_in_problem_json(
    client: TestClient, api_key: Callable[..., str]
) -> None:
    writer = auth(api_key("read", "write"))
    bad = {
        "match": "all",
        "conditions": [
            {"kind": "consent", "purpose": "marketing_email"},
            {"kind": "bought_category", "category": "Wine", "days": 30},
            {"kind": "event", "type": "product_viewed", "days": 0},
        ],
    }
    answer = client.post("/v1/segments", json={"name": "Bad", "definition": bad}, headers=writer)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "definition.conditions[2].days"
    unknown = client.post(
        "/v1/segments/preview",
        json={"definition": {"conditions": [{"kind": "horoscope"}]}},
        headers=writer,
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "definition.conditions[0].kind"


def test_scopes_reads_need_read_and_changes_need_write(
    client: TestClient, api_key: Callable[..., str]
) -> None:
    reader = auth(api_key("read"))
    ingest_only = auth(api_key("ingest"))
    body = {"name": "No", "definition": EMAIL_OK}
    assert client.post("/v1/segments", json=body, headers=reader).status_code == 403
    assert client.get("/v1/segments", headers=ingest_only).status_code == 403
    assert client.get("/v1/segments").status_code == 401
    assert (
        client.get("/v1/segments/1/members", params={"limit": 5000}, headers=reader).status_code
        == 422
    )
