"""Compressed tracking bodies: ``Content-Encoding: gzip`` and ``deflate`` on every ingestion
endpoint, the size limit on the decompressed body, and clear refusals otherwise."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI

from rapport.events import api as events_api
from rapport.events import service as events
from rapport.platform import clock
from tests.events.factories import basic_auth

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EVENT = {
    "event_id": "e-1",
    "type": "page_viewed",
    "customer_id": "u-1",
    "channel": "web",
    "occurred_at": "2026-06-01T11:59:00Z",
}
SEGMENT_TRACK = {"userId": "u-1", "event": "Cart Viewed", "messageId": "m-1"}


DOCS = Path(__file__).resolve().parents[2] / "docs"


def raw_deflate(data: bytes) -> bytes:
    squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return squeezer.compress(data) + squeezer.flush()


CODINGS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # RFC 9110's deflate: a zlib stream
    "raw deflate": raw_deflate,  # what some clients send as deflate
}


def endpoints() -> list[tuple[str, dict[str, object], int]]:
    """Each ingestion endpoint with a body it stores as one event (ids differ per call)."""
    event = {**EVENT, "event_id": "e-2"}
    return [
        ("/v1/events", EVENT, 201),
        ("/v1/events/batch", {"events": [event]}, 200),
        ("/v1/track", SEGMENT_TRACK, 200),
        ("/v1/identify", {"userId": "u-1", "traits": {"plan": "pro"}, "messageId": "m-2"}, 200),
        ("/v1/page", {"userId": "u-1", "name": "Home", "messageId": "m-3"}, 200),
        ("/v1/screen", {"userId": "u-1", "name": "Basket", "messageId": "m-4"}, 200),
        ("/v1/alias", {"userId": "u-1", "previousId": "anon-1", "messageId": "m-5"}, 200),
        ("/v1/group", {"userId": "u-1", "groupId": "g-1", "messageId": "m-6"}, 200),
        ("/v1/batch", {"batch": [{"type": "track", **SEGMENT_TRACK, "messageId": "m-7"}]}, 200),
    ]


def send(client, key: str, path: str, body: object, coding: str):  # type: ignore[no-untyped-def]
    return client.post(
        path,
        content=CODINGS[coding](orjson.dumps(body)),
        headers={
            **basic_auth(key),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip" if coding == "gzip" else "deflate",
        },
    )


def test_every_ingestion_endpoint_takes_gzip(client, api_key, db) -> None:
    # given one body per ingestion endpoint, gzipped as RudderStack's SDKs send them
    clock.set_clock(lambda: NOW)
    key = api_key("ingest")

    # when each is sent with Content-Encoding: gzip
    answers = [(path, send(client, key, path, body, "gzip")) for path, body, _ in endpoints()]

    # then each is stored as if it had been sent plain
    expected = [(path, code) for path, _, code in endpoints()]
    assert [(path, response.status_code) for path, response in answers] == expected
    assert events.count_events(db) == len(expected)


@pytest.mark.parametrize("coding", ["deflate", "raw deflate"])
def test_deflate_in_both_forms(client, api_key, db, coding) -> None:
    # given a Segment batch compressed as a zlib stream, or as raw deflate (some clients)
    clock.set_clock(lambda: NOW)
    body = {"batch": [{"type": "track", **SEGMENT_TRACK}]}

    # when it is sent with Content-Encoding: deflate
    response = send(client, api_key("ingest"), "/v1/batch", body, coding)

    # then it is stored
    assert (response.status_code, response.json()["accepted"]) == (200, 1)
    assert events.count_events(db) == 1


def test_a_small_bomb_is_refused_for_its_decompressed_size(client, api_key, db) -> None:
    # given 16 KB of gzip that inflates to 16 MiB (the batch limit is 1 MiB)
    bomb = gzip.compress(b'{"batch": [' + b" " * (16 * 1024 * 1024) + b"]}", compresslevel=9)
    assert len(bomb) < 20_000

    # when it is sent to the batch endpoint
    response = client.post(
        "/v1/batch",
        content=bomb,
        headers={**basic_auth(api_key("ingest")), "Content-Encoding": "gzip"},
    )

    # then it is a 413 naming the body, and nothing is stored
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "body"
    assert "decompressed" in problem["detail"]
    assert events.count_events(db) == 0


@pytest.mark.parametrize(("path", "key"), [("/v1/batch", "batch"), ("/v1/events/batch", "events")])
def test_a_compressed_batch_of_over_1000_messages_is_422_naming_its_list(
    client, api_key, db, path, key
) -> None:
    # given 1,001 messages, gzipped (small: empty ones)
    body = {key: [{}] * 1001}

    # when the batch is sent
    response = send(client, api_key("ingest"), path, body, "gzip")

    # then the whole batch is refused naming its list, as the tracking docs say
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["field"], problem["errors"][0]["code"]) == (key, "too_long")
    assert events.count_events(db) == 0
    limits = (DOCS / "tracking.md").read_text()
    row = next(line for line in limits.splitlines() if "1,000 messages" in line)
    assert "`422`" in row, row
    assert f"`{key}`" in row, row


def test_a_corrupt_stream_says_what_to_do(client, api_key, db) -> None:
    # given a body that claims gzip but is cut short, and one that is not gzip at all
    cut = gzip.compress(orjson.dumps(SEGMENT_TRACK))[:-6]
    plain = orjson.dumps(SEGMENT_TRACK)

    # when each is sent
    answers = [
        client.post(
            "/v1/track",
            content=body,
            headers={**basic_auth(api_key("ingest")), "Content-Encoding": "gzip"},
        )
        for body in (cut, plain)
    ]

    # then each is a 400 naming the body, saying how to send it instead
    for response in answers:
        assert response.status_code == 400
        problem = response.json()
        assert problem["field"] == "body"
        assert "not valid gzip data" in problem["detail"]
        assert "send it uncompressed without Content-Encoding" in problem["detail"]
    assert events.count_events(db) == 0


def test_an_unknown_encoding_is_415(client, api_key, db) -> None:
    # when a body comes in a coding Rapport does not read
    response = client.post(
        "/v1/events",
        content=b"\x00\x01",
        headers={**basic_auth(api_key("ingest")), "Content-Encoding": "br"},
    )

    # then the answer names the header and says which codings it takes
    assert response.status_code == 415
    problem = response.json()
    assert problem["field"] == "Content-Encoding"
    assert "gzip or deflate" in problem["detail"]


def test_the_encodings_are_in_the_api_reference() -> None:
    # given the OpenAPI document of the tracking routes (built as the app builds it)
    application = FastAPI()
    application.include_router(events_api.router)

    # when it is read
    paths = application.openapi()["paths"]

    # then every ingestion route says it takes compressed bodies, and documents the refusals
    for path in [endpoint for endpoint, _, _ in endpoints()]:
        operation = paths[path]["post"]
        assert "Content-Encoding: gzip" in operation["description"], path
        assert {"400", "413", "415"} <= set(operation["responses"]), path
