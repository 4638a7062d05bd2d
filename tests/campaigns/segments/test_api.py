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
    assert answer.json()["field"] == "definition.conditions.2.days"
    assert answer.json()["errors"] == [
        {
            "field": "definition.conditions.2.days",
            "location": "body",
            "pointer": "/definition/conditions/2/days",
            "message": "Input should be greater than or equal to 1",
            "code": "greater_than_equal",
        }
    ]
    unknown = client.post(
        "/v1/segments/preview",
        json={"definition": {"conditions": [{"kind": "horoscope"}]}},
        headers=writer,
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "definition.conditions.0.kind"


def test_a_control_character_is_named_at_its_own_field(
    client: TestClient, api_key: Callable[..., str]
) -> None:
    writer = auth(api_key("read", "write"))
    bad = {
        "conditions": [
            {"kind": "consent", "purpose": "marketing_email"},
            {"kind": "bought_category", "category": "Wi\u0000ne", "days": 30},
            {"kind": "trait", "field": "home_city", "op": "in", "value": ["Lyon", "Pa\u0001ris"]},
        ],
    }
    answer = client.post("/v1/segments", json={"name": "NUL", "definition": bad}, headers=writer)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "definition.conditions.1.category"
    assert [(e["field"], e["pointer"], e["code"]) for e in problem["errors"]] == [
        (
            "definition.conditions.1.category",
            "/definition/conditions/1/category",
            "control_character",
        ),
        (
            "definition.conditions.2.value.1",
            "/definition/conditions/2/value/1",
            "control_character",
        ),
    ]
    assert "\\u0000 at position 2" in problem["errors"][0]["message"]
    preview = client.post("/v1/segments/preview", json={"definition": bad}, headers=writer)
    assert preview.json()["field"] == "definition.conditions.1.category"
    assert client.get("/v1/segments", headers=writer).json() == []
    # a definition that is no JSON object is still named as the definition
    listed = client.post("/v1/segments", json={"name": "L", "definition": [1]}, headers=writer)
    assert listed.status_code == 422
    assert listed.json()["field"] == "definition"


def test_a_condition_refused_when_evaluated_is_named_in_the_definition(
    client: TestClient, api_key: Callable[..., str]
) -> None:
    writer = auth(api_key("read", "write"))
    nowhere = {"conditions": [{"kind": "store", "store_id": "nowhere", "by": "nearest"}]}
    expected = [
        {
            "field": "definition.conditions.0.store_id",
            "location": "body",
            "pointer": "/definition/conditions/0/store_id",
            "message": "No store 'nowhere' with coordinates",
            "code": "invalid",
        }
    ]
    preview = client.post("/v1/segments/preview", json={"definition": nowhere}, headers=writer)
    created = client.post(
        "/v1/segments",
        json={"name": "Nowhere", "definition": nowhere},
        headers={**writer, "Idempotency-Key": "seg-nowhere"},
    )
    for answer in (preview, created):
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "definition.conditions.0.store_id"
        assert answer.json()["errors"] == expected
    assert client.get("/v1/segments", headers=writer).json() == []


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
