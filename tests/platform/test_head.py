"""HEAD answers as GET would, without the body, on both databases: the same status,
headers and length, the same key check, and no write."""

from __future__ import annotations

from tests.conftest import auth
from tests.orders.factories import seed_catalog


def test_head_answers_as_get_without_the_body(client, db, api_key) -> None:
    # given a catalogue and a read key
    seed_catalog(db)
    reader = auth(api_key("read"))
    # when a client asks for the products' headers only
    got = client.get("/v1/products", headers=reader)
    head = client.head("/v1/products", headers=reader)
    # then it is the GET's answer without its body
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))


def test_head_checks_the_key_and_the_path_as_get_does(client, api_key) -> None:
    assert client.head("/v1/products").status_code == 401
    assert client.head("/v1/products", headers=auth(api_key("ingest"))).status_code == 403
    assert client.head("/v1/products/NOPE", headers=auth(api_key("read"))).status_code == 404
    assert client.head("/healthz").status_code == 200
