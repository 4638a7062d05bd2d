"""Bodies every JSON endpoint reads as the tracking endpoints do (``platform.bodies``): text
that is not UTF-8, nesting too deep and bad JSON are ``400 malformed-body`` naming ``body`` and
saying where; a gzip or deflate body is inflated, within the size limit; another
``Content-Encoding`` is ``415`` naming the header. Nothing is stored for a refused body."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from rapport.customers import service as customers
from rapport.events import service as events
from tests.conftest import auth, command

MALFORMED = "https://rapport.dev/problems/malformed-body"


def _customer(client, headers: dict[str, str], content: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/customers",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


def test_text_that_is_not_utf8_is_400_naming_body_and_where(client, api_key, db) -> None:
    # given a body whose bytes are not UTF-8 (0xc3 begins a character 0x28 does not continue)
    body = b'{"external_id":"A\xc3\x28"}'

    # when it is sent to an ordinary endpoint and to a tracking one
    ordinary = _customer(client, command(api_key("write")), body)
    tracking = client.post(
        "/v1/events",
        content=b'{"event_id":"e-\xc3\x28"}',
        headers={**auth(api_key("ingest")), "Content-Type": "application/json"},
    )

    # then both say the body is not UTF-8 and at which byte, and nothing is stored
    for response, position in ((ordinary, 17), (tracking, 15)):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == MALFORMED
        assert problem["field"] == "body"
        assert problem["detail"].startswith(
            f"The request body is not valid UTF-8: byte 0xc3 at position {position} "
        )
    assert customers.count_customers(db) == 0
    assert events.count_events(db) == 0


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_nesting_too_deep_is_400_saying_so(client, api_key, db, depth: int) -> None:
    # given JSON nested deeper than any request takes: 1,000 levels exhausts Python's
    # recursion limit (but not orjson's), 30,000 both
    body = b'{"external_id": "C-1", "attributes": ' + b"[" * depth + b"]" * depth + b"}"

    # when it is sent
    response = _customer(client, command(api_key("write")), body)

    # then the answer says it is nested too deeply, naming the body
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["type"] == MALFORMED
    assert problem["field"] == "body"
    assert problem["detail"].startswith(
        "The request body is not valid JSON: it is nested too deeply"
    )
    assert customers.count_customers(db) == 0


def test_json_that_does_not_parse_says_where(client, api_key, db) -> None:
    # when a body breaks off in the middle
    response = _customer(client, command(api_key("write")), b'{"external_id": "C-1",')

    # then the answer says where, in the words the tracking endpoints use
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == MALFORMED
    assert problem["field"] == "body"
    assert problem["detail"].startswith("The request body is not valid JSON: ")
    assert "line 1 column 23 (char 22)" in problem["detail"]
    assert customers.count_customers(db) == 0


@pytest.mark.parametrize("coding", ["gzip", "deflate", "x-gzip"])
def test_a_compressed_body_is_read_as_sent(client, api_key, db, coding: str) -> None:
    # given a customer compressed as the SDKs compress tracking
    body = orjson.dumps({"external_id": "C-7", "email": "c7@example.com"})
    squeezed = zlib.compress(body) if coding == "deflate" else gzip.compress(body)

    # when it is sent with its Content-Encoding to an ordinary endpoint
    headers = {**command(api_key("write")), "Content-Encoding": coding}
    response = _customer(client, headers, squeezed)

    # then it is read as the JSON it holds
    assert response.status_code == 201, response.text
    created = client.get("/v1/customers/C-7", headers=auth(api_key("read")))
    assert created.json()["email"] == "c7@example.com"


def test_a_body_that_inflates_past_the_limit_is_413(client, api_key, db, settings) -> None:
    # given a small gzip body that inflates past the size limit
    padding = " " * (settings.max_body_bytes + 1)
    squeezed = gzip.compress(b'{"external_id": "C-8"' + padding.encode() + b"}")
    assert len(squeezed) < 10_000

    # when it is sent
    headers = {**command(api_key("write")), "Content-Encoding": "gzip"}
    response = _customer(client, headers, squeezed)

    # then it is refused as too large once decompressed
    assert response.status_code == 413
    problem = response.json()
    assert problem["field"] == "body"
    assert "once decompressed" in problem["detail"]
    assert customers.count_customers(db) == 0


def test_a_corrupt_stream_is_400_naming_body(client, api_key, db) -> None:
    # when a body says gzip but is not
    headers = {**command(api_key("write")), "Content-Encoding": "gzip"}
    response = _customer(client, headers, b'{"external_id": "C-9"}')

    # then the answer says so
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == MALFORMED
    assert problem["field"] == "body"
    assert "not valid gzip data" in problem["detail"]
    assert customers.count_customers(db) == 0


def test_an_unknown_encoding_is_415_naming_the_header(client, api_key, db) -> None:
    # when a body comes in a coding Rapport does not read, on an ordinary endpoint and a
    # tracking one
    ordinary = _customer(
        client, {**command(api_key("write")), "Content-Encoding": "br"}, b"\x0b\x02\x80{}"
    )
    tracking = client.post(
        "/v1/events",
        content=b"\x00\x01",
        headers={**auth(api_key("ingest")), "Content-Encoding": "br"},
    )

    # then both are 415 naming Content-Encoding and the codings taken, and nothing is stored
    for response in (ordinary, tracking):
        assert response.status_code == 415, response.text
        problem = response.json()
        assert problem["type"] == "https://rapport.dev/problems/unsupported-media-type"
        assert problem["field"] == "Content-Encoding"
        assert "'br' is not supported" in problem["detail"]
        assert "gzip or deflate" in problem["detail"]
    assert customers.count_customers(db) == 0


def test_a_hot_command_reading_its_own_body_reads_it_the_same_way(client, api_key, db) -> None:
    # given a member, and loyalty's earn, which reads its own body (no FastAPI model)
    writer = api_key("write")
    client.post("/v1/customers", json={"external_id": "C-20"}, headers=command(writer))
    earn = "/v1/loyalty/members/C-20/earn"
    json_headers = {**command(writer), "Content-Type": "application/json"}

    # when it is sent gzip-compressed, it is read as the JSON it holds
    squeezed = gzip.compress(orjson.dumps({"points": 12, "reason": "Order"}))
    earned = client.post(
        earn, content=squeezed, headers={**json_headers, "Content-Encoding": "gzip"}
    )
    assert earned.status_code == 201, earned.text

    # and text that is not UTF-8, or another coding, is refused as everywhere
    bad = client.post(earn, content=b'{"points": 1, "reason": "\xff"}', headers=json_headers)
    assert bad.status_code == 400
    assert bad.json()["field"] == "body"
    assert bad.json()["detail"].startswith(
        "The request body is not valid UTF-8: byte 0xff at position 25 "
    )
    brotli = client.post(
        earn, content=b"\x0b\x02\x80{}", headers={**command(writer), "Content-Encoding": "br"}
    )
    assert brotli.status_code == 415
    assert brotli.json()["field"] == "Content-Encoding"
    balance = client.get("/v1/loyalty/members/C-20", headers=auth(api_key("read")))
    assert balance.json()["balance"] == 12


@pytest.mark.parametrize("depth", [250, 1_100])
def test_a_hot_command_nests_as_deeply_as_any_body(client, api_key, db, depth: int) -> None:
    # given a member, and a body nested ``depth`` levels in a field earn and redeem do not take
    # (250 is past pydantic's own JSON parser's limit of about 200, 1,100 past orjson's 1,024)
    writer = api_key("write")
    client.post("/v1/customers", json={"external_id": "C-21"}, headers=command(writer))
    nested = b"[" * depth + b"]" * depth
    json_headers = {**command(writer), "Content-Type": "application/json"}

    # when it is sent to earn, to redeem and to an endpoint FastAPI reads
    answers = [
        client.post(
            f"/v1/loyalty/members/C-21/{verb}",
            content=b'{"points": 1, "reason": "Order", "order_id": ' + nested + b"}",
            headers=json_headers,
        )
        for verb in ("earn", "redeem")
    ]
    answers.append(
        client.post(
            "/v1/orders",
            content=b'{"order_id": "O-1", "customer_id": "C-21", "x": ' + nested + b"}",
            headers=json_headers,
        )
    )

    # then all answer alike: a field refused (422) while the body parses, else too deep (400)
    for response in answers:
        if depth == 250:
            assert response.status_code == 422, response.text
            assert response.json()["type"] == "https://rapport.dev/problems/validation-error"
        else:
            assert response.status_code == 400, response.text
            assert response.json()["type"] == MALFORMED
            assert response.json()["field"] == "body"
            assert response.json()["detail"].startswith(
                "The request body is not valid JSON: it is nested too deeply"
            )
    balance = client.get("/v1/loyalty/members/C-21", headers=auth(api_key("read")))
    assert balance.json()["balance"] == 0


def test_a_byte_order_mark_before_the_json_is_read_past_by_every_endpoint(
    client, api_key, db
) -> None:
    # given bodies that start with a UTF-8 byte order mark (RFC 8259 lets a parser ignore
    # it), to an endpoint FastAPI reads, to earn (which reads its own) and to the tracking
    # batches (Rapport's and Segment's)
    bom = b"\xef\xbb\xbf"
    writer, ingest = api_key("write"), api_key("ingest")
    json_headers = {**command(writer), "Content-Type": "application/json"}
    created = _customer(client, json_headers, bom + b'{"external_id": "C-22"}')
    earned = client.post(
        "/v1/loyalty/members/C-22/earn",
        content=bom + b'{"points": 5, "reason": "Order"}',
        headers={**command(writer), "Content-Type": "application/json"},
    )
    event = {"type": "page_viewed", "channel": "web", "customer_id": "C-22"}
    event["occurred_at"] = "2026-03-01T09:00:00Z"
    batch = client.post(
        "/v1/events/batch",
        content=bom + orjson.dumps({"events": [{**event, "event_id": "bom-1"}]}),
        headers={**auth(ingest), "Content-Type": "application/json"},
    )
    segment = client.post(
        "/v1/batch",
        content=bom
        + orjson.dumps({"batch": [{"type": "track", "event": "Viewed", "userId": "C-22"}]}),
        headers={**auth(ingest), "Content-Type": "application/json"},
    )

    # then each is read as the JSON after the mark
    assert (created.status_code, earned.status_code) == (201, 201), earned.text
    assert batch.status_code in (200, 201), batch.text
    assert batch.json()["accepted"] == 1, batch.text
    assert segment.status_code == 200, segment.text
    assert segment.json()["accepted"] == 1, segment.text


VALIDATION = "https://rapport.dev/problems/validation-error"


def test_a_key_sent_twice_in_one_object_is_422_naming_it_at_every_endpoint(
    client, api_key, db
) -> None:
    # given a member, and bodies that hold a key twice in one object (a JSON parser keeps one
    # of the two values without a word: which one differs from parser to parser)
    writer, ingest = api_key("write"), api_key("ingest")
    client.post("/v1/customers", json={"external_id": "C-30"}, headers=command(writer))
    events_before = events.count_events(db)
    json_headers = {**command(writer), "Content-Type": "application/json"}
    event = b'{"type": "page_viewed", "channel": "web", "customer_id": "C-30", '
    event += b'"occurred_at": "2026-03-01T09:00:00Z", "event_id": "dup-1"'

    # when they are sent to earn (reads its own body), to endpoints FastAPI reads (plain and
    # gzip-compressed, the repeated key nested) and to the tracking batches
    answers = {
        "body.points": client.post(
            "/v1/loyalty/members/C-30/earn",
            content=b'{"points": 5, "reason": "Order", "points": 500}',
            headers=json_headers,
        ),
        "body.external_id": _customer(
            client, json_headers, b'{"external_id": "C-31", "external_id": "C-32"}'
        ),
        "body.attributes.tier": client.post(
            "/v1/customers",
            content=gzip.compress(
                b'{"external_id": "C-33", "attributes": {"tier": "a", "tier": "b"}}'
            ),
            headers={**json_headers, "Content-Encoding": "gzip"},
        ),
        "body.events.0.channel": client.post(
            "/v1/events/batch",
            content=b'{"events": [' + event + b', "channel": "app"}]}',
            headers={**auth(ingest), "Content-Type": "application/json"},
        ),
        "body.batch.1.userId": client.post(
            "/v1/batch",
            content=b'{"batch": [{"type": "track", "event": "A", "userId": "C-30"}, '
            b'{"type": "track", "event": "B", "userId": "C-30", "userId": "C-31"}]}',
            headers={**auth(ingest), "Content-Type": "application/json"},
        ),
    }

    # then each is 422 naming the key where it is repeated, and nothing is stored
    for field, response in answers.items():
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == VALIDATION
        assert problem["field"] == field.removeprefix("body.")
        key = field.rsplit(".", 1)[-1]
        assert problem["errors"] == [
            {
                "field": field.removeprefix("body."),
                "location": "body",
                "pointer": "/" + field.removeprefix("body.").replace(".", "/"),
                "message": f"The key '{key}' appears more than once in this object; "
                "send each key once",
                "code": "duplicate_key",
            }
        ]
    balance = client.get("/v1/loyalty/members/C-30", headers=auth(api_key("read")))
    assert balance.json()["balance"] == 0
    assert customers.count_customers(db) == 1
    assert events.count_events(db) == events_before
