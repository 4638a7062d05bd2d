"""A request whose URL or headers are too long is refused by Rapport with problem+json (414,
431) naming what makes it so, below the HTTP server's own limits, which answer in plain text
before Rapport sees the request: asked of a real server, as a client meets it."""

from __future__ import annotations

import httpx2 as httpx

from rapport.platform.middleware import MAX_HEADER_BYTES, MAX_URL_BYTES
from tests.conftest import LiveServer, auth


def test_a_url_over_the_limit_is_414_naming_the_long_parameter(live_server: LiveServer) -> None:
    # given a cart of 2,000 SKUs in the query string: about 20 KB, under the server's 64 KB
    cart = "&".join(f"cart=SKU-{n:05d}" for n in range(2_000))
    url = f"{live_server.base_url}/v1/recommendations?placement=home&{cart}"
    assert MAX_URL_BYTES < len(url) < 65_535

    # when it is asked for (no key needed to be told)
    response = httpx.get(url, headers=auth("rk_unknown"))

    # then the answer is a problem saying how long the URL is, what Rapport takes and which
    # parameter takes the room
    assert response.status_code == 414
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://rapport.dev/problems/uri-too-long"
    assert problem["field"] == "cart"
    assert f"at most {MAX_URL_BYTES:,}" in problem["detail"]
    assert problem["instance"] == "/v1/recommendations"


def test_a_url_within_the_limit_reaches_the_api(live_server: LiveServer) -> None:
    # given a URL just under the limit
    base = f"{live_server.base_url}/v1/recommendations?placement=home&cart="
    path_and_query = base.removeprefix(live_server.base_url)
    url = base + "x" * (MAX_URL_BYTES - len(path_and_query))

    # when it is sent without a valid key, the key check answers it
    assert httpx.get(url, headers=auth("rk_unknown")).status_code == 401


def test_a_long_path_is_414_naming_the_path(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.base_url}/v1/customers/{'C' * 9_000}")

    assert response.status_code == 414
    assert response.json()["field"] == "path"
    # and the long path is not echoed back whole: instance is its first 200 characters
    assert response.json()["instance"] == f"/v1/customers/{'C' * 9_000}"[:200]
    assert len(response.content) < 1_000


def test_headers_over_the_limit_are_431_naming_the_longest(live_server: LiveServer) -> None:
    # given a cookie larger than every header Rapport reads together
    cookie = "session=" + "c" * MAX_HEADER_BYTES

    # when it comes with a request
    response = httpx.get(f"{live_server.base_url}/v1/stores", headers={"Cookie": cookie})

    # then the answer names the header
    assert response.status_code == 431
    problem = response.json()
    assert problem["type"] == "https://rapport.dev/problems/request-header-fields-too-large"
    assert problem["field"] == "Cookie"
    assert f"at most {MAX_HEADER_BYTES:,}" in problem["detail"]
