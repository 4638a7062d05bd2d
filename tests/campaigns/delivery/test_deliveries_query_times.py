"""``GET /v1/deliveries`` reads ``since`` and ``until`` as every endpoint reads a moment: with
its offset. One without (a naive time, a day alone) is a 422 naming the parameter, as
``/v1/loyalty/analytics/membership`` answers, where it was read as UTC."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth


@pytest.mark.parametrize("parameter", ["since", "until"])
@pytest.mark.parametrize("value", ["2026-12-01T08:00:00", "2026-12-01"])
def test_a_moment_without_its_offset_is_refused(
    client: TestClient, api_key: Callable[..., str], parameter: str, value: str
) -> None:
    reader = auth(api_key("read"))
    for path in ("/v1/deliveries", "/v1/loyalty/analytics/membership"):
        # when a moment is sent without its offset
        refused = client.get(path, params={parameter: value}, headers=reader)

        # then it is refused, naming the parameter, the same on both endpoints
        assert refused.status_code == 422, (path, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        error = refused.json()["errors"][0]
        assert (error["field"], error["code"]) == (parameter, "timezone_aware"), path


@pytest.mark.parametrize("value", ["2026-12-01T08:00:00Z", "2026-12-01T09:00:00+01:00"])
def test_a_moment_with_its_offset_is_read(
    client: TestClient, api_key: Callable[..., str], value: str
) -> None:
    reader = auth(api_key("read"))
    answer = client.get("/v1/deliveries", params={"since": value, "until": value}, headers=reader)
    assert answer.status_code == 200, answer.text
    assert answer.json()["deliveries"] == []
