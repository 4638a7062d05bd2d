"""API keys: each scope allowed and refused, revoked keys refused, secrets never stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rapport.catalog import service as catalog
from rapport.events import service as events
from rapport.platform import service as platform
from rapport.platform.models import ApiKey
from tests.conftest import auth, command
from tests.events.factories import basic_auth

SCOPES = ("ingest", "read", "write", "admin")
EVENT = {
    "event_id": "evt-auth-1",
    "type": "product_viewed",
    "anonymous_id": "anon-1",
    "channel": "web",
    "occurred_at": datetime(2026, 1, 5, 12, 0, tzinfo=UTC).isoformat(),
}
PRODUCT = {
    "name": "Chianti Classico",
    "category_path": "Wine/Red",
    "price_minor": 1200,
    "cost_minor": 700,
    "currency": "EUR",
}

# (label, required scope, method, path, body)
ENDPOINTS: list[tuple[str, str, str, str, dict[str, Any] | None]] = [
    ("track event", "ingest", "POST", "/v1/events", EVENT),
    ("list products", "read", "GET", "/v1/products", None),
    ("list stores", "read", "GET", "/v1/stores", None),
    ("put product", "write", "PUT", "/v1/products/SKU-1", PRODUCT),
    ("list keys", "admin", "GET", "/v1/keys", None),
]


def _side_effects(db: Session) -> tuple[int, int]:
    return events.count_events(db), catalog.count_products(db)


@pytest.mark.parametrize(("_case", "required", "method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("scope", SCOPES)
def test_scope_allows_or_refuses(
    client, api_key, db, _case, required, method, path, body, scope
) -> None:
    # given a key holding exactly one scope
    secret = api_key(scope)
    before = _side_effects(db)
    # when it calls an endpoint
    response = client.request(method, path, json=body, headers=auth(secret))
    # then only the endpoint's own scope, or admin, gets through
    if scope in (required, "admin"):
        assert response.status_code in (200, 201)
    else:
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["required_scope"] == required
        assert problem["field"] == "Authorization"
        assert _side_effects(db) == before


def test_missing_key_is_401_problem_with_challenge(client) -> None:
    response = client.get("/v1/products")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "Bearer" in response.headers["www-authenticate"]
    assert response.json()["title"] == "Authentication required"


UNKNOWN = "The API key is unknown or revoked"
MISSING = "Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ({"Authorization": "Bearer rk_000000000000_nope"}, UNKNOWN),
        ({"Authorization": "Bearer not-a-key"}, UNKNOWN),
        ({"X-API-Key": "rk_abc"}, UNKNOWN),
        ({"Authorization": "Basic !!!"}, MISSING),  # not base64: no key was sent at all
    ],
)
def test_unknown_key_is_401(client, header, detail) -> None:
    response = client.get("/v1/products", headers=header)
    assert response.status_code == 401
    assert response.json()["detail"] == detail


def test_key_with_right_prefix_but_wrong_secret_is_refused(client, api_key) -> None:
    secret = api_key("read")
    tampered = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    assert client.get("/v1/products", headers=auth(tampered)).status_code == 401


def test_revoked_key_is_refused(client, db, api_key) -> None:
    # given a working key
    secret = api_key("read")
    assert client.get("/v1/products", headers=auth(secret)).status_code == 200
    key = platform.authenticate_api_key(db, secret=secret)
    assert key is not None
    # when it is revoked
    platform.revoke_api_key(db, key_id=key.id)
    # then it is refused at once
    response = client.get("/v1/products", headers=auth(secret))
    assert response.status_code == 401
    assert platform.authenticate_api_key(db, secret=secret) is None


def test_key_headers_x_api_key_and_basic_auth_are_accepted(client, api_key) -> None:
    secret = api_key("read")
    basic = basic_auth(secret)
    assert client.get("/v1/products", headers={"X-API-Key": secret}).status_code == 200
    assert client.get("/v1/products", headers=basic).status_code == 200


def _two_headers(x_api_key: str, authorization: str) -> dict[str, str]:
    return {"X-API-Key": x_api_key, "Authorization": authorization}


def test_two_different_credentials_are_refused_whichever_is_valid(client, api_key) -> None:
    # given a read key, an admin key, and a request carrying one of them in each header
    reader, admin = api_key("read"), api_key("admin")
    sent = [
        ("/v1/products", _two_headers(reader, "Bearer junk")),
        ("/v1/products", _two_headers(reader, "Bearer")),
        ("/v1/products", _two_headers(reader, "Token whatever")),
        ("/v1/keys", _two_headers(admin, f"Bearer {reader}")),
        ("/v1/keys", _two_headers(reader, f"Bearer {admin}")),
        ("/v1/products", {"X-API-Key": reader, **basic_auth(admin)}),
    ]
    for path, headers in sent:
        # when it is sent, then it is refused, whichever of the two would be admitted
        answer = client.get(path, headers=headers)
        assert answer.status_code == 401, (path, headers, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["field"] == "Authorization"
        assert "different credentials" in answer.json()["detail"]
    # and a tracking call with a Segment body is refused the same way
    refused = client.post(
        "/v1/events", json=EVENT, headers=_two_headers(api_key("ingest"), "Bearer x")
    )
    assert refused.status_code == 401


def test_the_same_key_in_both_headers_is_accepted(client, api_key) -> None:
    reader, admin = api_key("read"), api_key("admin")
    assert (
        client.get("/v1/products", headers=_two_headers(reader, f"Bearer {reader}")).status_code
        == 200
    )
    same_basic = {"X-API-Key": reader, **basic_auth(reader)}
    assert client.get("/v1/products", headers=same_basic).status_code == 200
    assert (
        client.get("/v1/keys", headers=_two_headers(admin, f"Bearer  {admin} ")).status_code == 200
    )
    # an empty X-API-Key is no credential: Authorization's key is the one
    assert (
        client.get("/v1/products", headers=_two_headers("", f"Bearer {reader}")).status_code == 200
    )


def _refused_as_two_credentials(answer: Any) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["field"] == "Authorization"
    assert "different credentials" in answer.json()["detail"]


def test_repeated_key_headers_carrying_two_keys_are_refused_in_any_order(client, api_key) -> None:
    # given an admin key and a read key, and requests repeating a key header with both
    admin, reader = api_key("admin"), api_key("read")
    sent: list[list[tuple[str, str]]] = [
        [("X-API-Key", admin), ("X-API-Key", reader)],
        [("X-API-Key", reader), ("X-API-Key", admin)],
        [("Authorization", f"Bearer {admin}"), ("Authorization", f"Bearer {reader}")],
        [("Authorization", f"Bearer {reader}"), ("Authorization", f"Bearer {admin}")],
        [
            ("X-API-Key", admin),
            ("Authorization", f"Bearer {admin}"),
            ("Authorization", f"Bearer {reader}"),
        ],
        [("Authorization", f"Bearer {admin}"), *basic_auth(reader).items()],
        [("Authorization", f"Bearer {admin}"), ("Authorization", "Bearer")],
        [("X-API-Key", admin), ("X-API-Key", "junk")],
    ]
    for headers in sent:
        # when /v1/keys (admin only) is asked with them, then it is refused, whichever is first
        _refused_as_two_credentials(client.get("/v1/keys", headers=headers))


def test_the_same_key_repeated_in_key_headers_is_accepted(client, api_key) -> None:
    admin = api_key("admin")
    sent: list[list[tuple[str, str]]] = [
        [("X-API-Key", admin), ("X-API-Key", admin)],
        [("Authorization", f"Bearer {admin}"), ("Authorization", f"Bearer {admin}")],
        [("X-API-Key", admin), ("X-API-Key", ""), *basic_auth(admin).items()],
        [("X-API-Key", admin), ("Authorization", f"Bearer {admin}"), *basic_auth(admin).items()],
    ]
    for headers in sent:
        assert client.get("/v1/keys", headers=headers).status_code == 200, headers


def test_a_write_key_in_the_body_must_be_the_header_s_key(client, api_key) -> None:
    # given an ingest key and another one, and a Segment track message
    secret, other = api_key("ingest"), api_key("ingest")
    message = {"type": "track", "event": "Viewed", "userId": "u-1"}
    # when the body's writeKey is another key than the header's, then it is refused
    for headers in (basic_auth(secret), {"X-API-Key": secret}, auth(secret)):
        answer = client.post(
            "/v1/track", json={**message, "messageId": "wk-1", "writeKey": other}, headers=headers
        )
        _refused_as_two_credentials(answer)
    batch = {"writeKey": other, "batch": [{**message, "messageId": "wk-2"}]}
    _refused_as_two_credentials(client.post("/v1/batch", json=batch, headers=basic_auth(secret)))
    # and the same key in both is accepted (Segment's SDKs may send it in both)
    same = {**message, "messageId": "wk-3", "writeKey": secret}
    assert client.post("/v1/track", json=same, headers=basic_auth(secret)).status_code == 200


def test_keys_are_not_stored_in_clear(db) -> None:
    # given a new key
    issued = platform.create_api_key(db, name="shop", scopes=[platform.Scope.INGEST])
    # then no column of the stored row holds the secret, or its random part
    row = db.scalar(select(ApiKey).where(ApiKey.id == issued.key.id))
    assert row is not None
    random_part = issued.secret.split("_", 2)[2]
    stored = " ".join(str(value) for value in row.__dict__.values())
    assert random_part not in stored
    assert issued.secret not in stored
    assert len(row.key_hash) == 64
    # and the key still authenticates, as itself
    principal = platform.authenticate_api_key(db, secret=issued.secret)
    assert principal is not None
    assert (principal.id, principal.name, principal.scopes) == (row.id, "shop", ("ingest",))


def test_admin_creates_lists_and_revokes_keys_over_http(client, api_key) -> None:
    admin = api_key("admin")
    created = client.post(
        "/v1/keys", json={"name": "till 7", "scopes": ["ingest"]}, headers=command(admin)
    )
    assert created.status_code == 201
    body = created.json()
    assert body["scopes"] == ["ingest"]
    assert body["secret"].startswith("rk_")
    listed = client.get("/v1/keys", headers=auth(admin)).json()
    assert [k["name"] for k in listed if k["id"] == body["id"]] == ["till 7"]
    assert all("secret" not in k for k in listed)
    revoked = client.delete(f"/v1/keys/{body['id']}", headers=auth(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    event = {**EVENT, "event_id": "evt-after-revoke"}
    assert client.post("/v1/events", json=event, headers=auth(body["secret"])).status_code == 401


def test_a_key_s_orders_from_tracking_switch_is_set_at_creation_and_changed_alone(
    client, api_key
) -> None:
    # given a tracking key made for a shop that posts its orders to /v1/orders
    admin = auth(api_key("admin"))
    created = client.post(
        "/v1/keys",
        json={"name": "site", "scopes": ["ingest"], "orders_from_tracking": False},
        headers=command(admin),
    ).json()
    assert created["orders_from_tracking"] is False
    client.patch(f"/v1/keys/{created['id']}", json={"rate_limit": "50/second"}, headers=admin)

    # when only the switch is turned on
    changed = client.patch(
        f"/v1/keys/{created['id']}", json={"orders_from_tracking": True}, headers=admin
    )

    # then it is on, and the key's own limit set before is kept
    assert changed.status_code == 200, changed.text
    assert changed.json()["orders_from_tracking"] is True
    assert changed.json()["rate_limit"] == "50/second"
    # and an unknown key or a non-boolean is refused naming the field
    unknown = client.patch("/v1/keys/key_nope", json={"orders_from_tracking": True}, headers=admin)
    assert (unknown.status_code, unknown.json()["field"]) == (404, "key_id")
    loose = client.patch(
        f"/v1/keys/{created['id']}", json={"orders_from_tracking": "yes"}, headers=admin
    )
    assert (loose.status_code, loose.json()["field"]) == (422, "orders_from_tracking")


def test_key_request_with_unknown_scope_is_422(client, api_key) -> None:
    response = client.post(
        "/v1/keys", json={"name": "x", "scopes": ["superuser"]}, headers=auth(api_key("admin"))
    )
    assert response.status_code == 422
    assert response.json()["field"] == "scopes.0"
