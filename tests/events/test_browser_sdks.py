"""Segment's browser SDK (analytics.js) and mobile SDKs as they send: the short paths
(``/v1/t`` … ``/v1/b``), the key as the body's ``writeKey`` with ``Content-Type: text/plain``,
and CORS on the tracking routes only."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rapport.events.models import DeadLetter, Event
from rapport.main import create_app
from rapport.platform.db import get_db, get_writing_db
from rapport.platform.settings import Settings
from tests.conftest import auth
from tests.events.factories import basic_auth

TEXT = {"Content-Type": "text/plain"}
SHOP = "http://shop.example"


def stored(db) -> list[tuple[str, str, dict]]:  # type: ignore[no-untyped-def]
    rows = db.execute(select(Event.event_id, Event.type, Event.context).order_by(Event.position))
    return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    ("path", "message", "type_"),
    [
        ("/v1/t", {"type": "track", "event": "Product Viewed"}, "product_viewed"),
        ("/v1/i", {"type": "identify", "traits": {"plan": "pro"}}, "identified"),
        ("/v1/p", {"type": "page", "name": "Home"}, "page_viewed"),
        ("/v1/s", {"type": "screen", "name": "Basket"}, "screen_viewed"),
        ("/v1/a", {"type": "alias", "previousId": "anon-1"}, "aliased"),
        ("/v1/g", {"type": "group", "groupId": "g-1"}, "grouped"),
    ],
)
def test_analytics_js_posts_each_call_to_its_short_path_with_the_key_in_the_body(
    client, api_key, db, path, message, type_
) -> None:
    # given a call as analytics.js sends it: no Authorization header, the write key in the
    # body, the body as text/plain (no CORS preflight)
    body = {**message, "userId": "u-1", "messageId": f"m{path}", "writeKey": api_key("ingest")}

    # when it is posted to apiHost + the first letter of its type
    response = client.post(path, content=orjson.dumps(body), headers=TEXT)

    # then it is stored as the long route stores it, and the key is nowhere in the event
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    ((event_id, stored_type, context),) = stored(db)
    assert (event_id, stored_type) == (f"m{path}", type_)
    assert body["writeKey"] not in orjson.dumps(context).decode()


def test_a_batch_comes_to_v1_b_from_the_browser_and_from_a_phone(client, api_key, db) -> None:
    secret = api_key("ingest")
    message = {"type": "track", "event": "Cart Viewed", "userId": "u-1"}
    # given analytics.js's batching (writeKey beside the batch and in each message) ...
    browser = {
        "writeKey": secret,
        "batch": [{**message, "messageId": "web-1", "writeKey": secret}],
        "sentAt": "2026-06-01T12:00:00Z",
    }
    # ... and analytics-swift / analytics-kotlin (basic auth, JSON)
    phone = {"batch": [{**message, "messageId": "app-1"}]}

    # when both post to /v1/b
    first = client.post("/v1/b", content=orjson.dumps(browser), headers=TEXT)
    second = client.post("/v1/b", json=phone, headers=basic_auth(secret))

    # then both are stored
    assert (first.status_code, first.json()["accepted"]) == (200, 1), first.text
    assert (second.status_code, second.json()["accepted"]) == (200, 1), second.text
    assert [row[0] for row in stored(db)] == ["web-1", "app-1"]


def test_a_rejected_message_is_kept_without_its_write_key(client, api_key, db) -> None:
    # given a batch from analytics.js whose message is refused
    secret = api_key("ingest")
    body = {"writeKey": secret, "batch": [{"type": "track", "userId": "u-1", "writeKey": secret}]}

    # when it is sent
    response = client.post("/v1/b", content=orjson.dumps(body), headers=TEXT)

    # then the refusal is kept, but not the key
    assert response.json()["rejected"] == 1
    (letter,) = db.scalars(select(DeadLetter))
    assert letter.field == "event"
    assert letter.raw is not None
    assert "u-1" in letter.raw
    assert secret not in letter.raw


@pytest.mark.parametrize(
    ("case", "scopes", "status", "field"),
    [
        ("unknown key", None, 401, "writeKey"),
        ("a key without the ingest scope", ("read",), 403, "writeKey"),
    ],
)
def test_a_body_write_key_is_checked_as_a_header_key_is(
    client, api_key, db, case, scopes, status, field
) -> None:
    secret = api_key(*scopes) if scopes else "rk_not-a-key"
    body = {"type": "track", "event": "A B", "userId": "u", "writeKey": secret}

    response = client.post("/v1/t", content=orjson.dumps(body), headers=TEXT)

    assert response.status_code == status, case
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert secret not in response.text
    assert stored(db) == []


def test_a_header_key_beside_another_body_key_and_no_key_are_401(client, api_key, db) -> None:
    body = {"type": "track", "event": "A B", "userId": "u", "writeKey": api_key("ingest")}
    # a header with another key than the body's is refused as two credentials, before its
    # scope is judged, and the refusal says which two it found
    refused = client.post("/v1/track", json=body, headers=auth(api_key("read")))
    assert (refused.status_code, refused.json()["field"]) == (401, "Authorization")
    assert refused.json()["detail"].startswith(
        "The body's writeKey and the Authorization header carry different credentials"
    )
    assert stored(db) == []
    # no key anywhere
    missing = client.post("/v1/t", json={"type": "track", "event": "A B", "userId": "u"})
    assert (missing.status_code, missing.json()["field"]) == (401, "Authorization")
    # the native routes never read a body key
    native = client.post(
        "/v1/events/batch", content=orjson.dumps({"events": [], "writeKey": body["writeKey"]})
    )
    assert native.status_code == 401
    assert stored(db) == []


def test_a_gzipped_text_body_with_its_write_key(client, api_key, db) -> None:
    import gzip

    body = {"type": "track", "event": "A B", "userId": "u", "writeKey": api_key("ingest")}
    response = client.post(
        "/v1/t",
        content=gzip.compress(orjson.dumps(body)),
        headers={**TEXT, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text


def test_cors_preflight_on_the_tracking_routes_only(client) -> None:
    preflight = {"Origin": SHOP, "Access-Control-Request-Method": "POST"}
    # a tracking route answers the browser's preflight for any page, never with credentials
    for path in ("/v1/track", "/v1/t", "/v1/batch", "/v1/b", "/v1/events"):
        answer = client.options(
            path, headers={**preflight, "Access-Control-Request-Headers": "authorization"}
        )
        assert answer.status_code == 200, path
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in answer.headers
    # and its answers say any page may read them
    answer = client.post("/v1/track", json={}, headers={"Origin": SHOP})
    assert (answer.status_code, answer.headers["access-control-allow-origin"]) == (401, "*")
    # no other route says anything to a browser
    for path in ("/v1/customers", "/admin/events/rejected"):
        answer = client.options(path, headers=preflight)
        assert "access-control-allow-origin" not in answer.headers, path
        got = client.get(path, headers={"Origin": SHOP})
        assert "access-control-allow-origin" not in got.headers, path


def test_analytics_next_sends_its_key_as_basic_auth_after_a_preflight(client, api_key, db) -> None:
    # given analytics-next 1.84's request: the write key as basic auth, a text/plain body, and
    # on a retry X-Retry-Count; the Authorization header makes the browser ask first
    key = api_key("ingest")
    asked = client.options(
        "/v1/b",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
    )
    assert asked.status_code == 200, asked.text
    allowed = asked.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "x-retry-count"):
        assert header in allowed, header

    # when it posts a batch so
    body = {"batch": [{"type": "track", "event": "A B", "userId": "u", "messageId": "n-1"}]}
    sent = client.post(
        "/v1/b",
        content=orjson.dumps(body),
        headers={**TEXT, **basic_auth(key), "Origin": SHOP, "X-Retry-Count": "1"},
    )

    # then it is stored, and the page may read the answer
    assert sent.status_code == 200, sent.text
    assert sent.headers["access-control-allow-origin"] == "*"
    assert [event_id for event_id, _, _ in stored(db)] == ["n-1"]


def test_allowed_origins_are_a_setting(settings: Settings) -> None:
    # given an operator who lets only the shop's own pages send
    only_shop = settings.model_copy(update={"tracking_allowed_origins": f"{SHOP}, https://m.shop"})
    with TestClient(create_app(only_shop, run_worker=False)) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = client.options("/v1/t", headers={**preflight, "Origin": SHOP})
        other = client.options("/v1/t", headers={**preflight, "Origin": "https://evil.example"})
    # then the shop is answered with its own origin, another page is refused by name
    assert (allowed.status_code, allowed.headers["access-control-allow-origin"]) == (200, SHOP)
    assert other.status_code == 400
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["field"] == "Origin"
    assert "access-control-allow-origin" not in other.headers

    # and with none allowed, nothing is answered to a browser
    closed = settings.model_copy(update={"tracking_allowed_origins": "none"})
    with TestClient(create_app(closed, run_worker=False)) as client:
        answer = client.options("/v1/t", headers={**preflight, "Origin": SHOP})
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("value", ["shop.example", "https://shop.example/path", "ftp://x"])
def test_an_allowed_origin_must_be_an_origin(value) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        Settings(tracking_allowed_origins=value)


def test_a_listed_origin_list_refuses_other_pages_simple_requests_too(
    settings: Settings, api_key, db
) -> None:
    # given an operator who lets only the shop's own pages send
    only_shop = settings.model_copy(update={"tracking_allowed_origins": SHOP})
    closed = settings.model_copy(update={"tracking_allowed_origins": "none"})
    key = api_key("ingest")

    def identify(user_id: str) -> bytes:
        message = {"writeKey": key, "type": "identify", "userId": user_id, "traits": {"x": 1}}
        return orjson.dumps(message)

    def answering_through_db(settings: Settings) -> TestClient:
        application = create_app(settings, run_worker=False)
        application.dependency_overrides[get_db] = lambda: db
        application.dependency_overrides[get_writing_db] = lambda: db
        return TestClient(application)

    with answering_through_db(only_shop) as client:
        # when another site's page posts text/plain (no preflight) with the key in its body
        evil = client.post(
            "/v1/i", content=identify("EVIL-1"), headers={**TEXT, "Origin": "https://evil.example"}
        )
        # the shop's page, and a server (no Origin), are taken as before
        shop = client.post("/v1/i", content=identify("SHOP-1"), headers={**TEXT, "Origin": SHOP})
        server = client.post("/v1/i", content=identify("SRV-1"), headers=TEXT)
    # then the other page is 403 naming Origin and nothing of it is stored
    assert evil.status_code == 403
    assert evil.headers["content-type"] == "application/problem+json"
    assert evil.json()["field"] == "Origin"
    assert (shop.status_code, server.status_code) == (200, 200)
    db.expire_all()
    assert sorted(row[0] for row in db.execute(select(Event.user_id))) == ["SHOP-1", "SRV-1"]

    # and with none allowed, every request carrying an Origin is refused, others are taken
    with answering_through_db(closed) as client:
        page = client.post("/v1/i", content=identify("PAGE-1"), headers={**TEXT, "Origin": SHOP})
        app_call = client.post("/v1/i", content=identify("APP-1"), headers=TEXT)
    assert (page.status_code, page.json()["field"]) == (403, "Origin")
    assert app_call.status_code == 200
    db.expire_all()
    assert "PAGE-1" not in {row[0] for row in db.execute(select(Event.user_id))}


def test_a_segment_body_that_cannot_be_read_is_400_not_401(client, api_key, db) -> None:
    key = api_key("ingest")
    raw = b'{"writeKey":"' + key.encode() + b'","type":"track","event":"A b","anonymousId":"a\xff"}'
    for path in ("/v1/t", "/v1/track", "/v1/b"):
        answer = client.post(path, content=raw, headers=TEXT)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == "body"
        assert key not in answer.text
    broken = client.post("/v1/t", content=b'{"writeKey": ', headers=TEXT)
    assert (broken.status_code, broken.json()["field"]) == (400, "body")
    assert stored(db) == []


@pytest.mark.parametrize("write_key", [123, "", "   ", None, ["k"]])
def test_a_write_key_that_is_not_a_key_is_401_naming_it(client, db, write_key) -> None:
    body = {"writeKey": write_key, "type": "track", "event": "A b", "userId": "u"}
    answer = client.post("/v1/t", content=orjson.dumps(body), headers=TEXT)
    assert answer.status_code == 401, answer.text
    assert answer.json()["field"] == "writeKey"
    assert stored(db) == []


def test_a_segment_call_without_any_key_mentions_the_write_key(client, db) -> None:
    body = {"type": "track", "event": "A b", "userId": "u"}
    answer = client.post("/v1/t", content=orjson.dumps(body), headers=TEXT)
    assert (answer.status_code, answer.json()["field"]) == (401, "Authorization")
    assert "writeKey" in answer.json()["detail"]
    assert answer.headers["www-authenticate"]
