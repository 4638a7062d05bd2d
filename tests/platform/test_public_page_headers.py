"""The pages customers open from a message without signing in (a survey at ``/s/{token}``, an
unsubscribe confirmation at ``/u/{token}``) send the admin's security headers, with
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` as their URLs carry a token,
and their stylesheets come from Rapport's own origin, which the policy allows."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rapport.campaigns.delivery.rendering import SAMPLE_TOKEN
from rapport.platform.admin import CONTENT_SECURITY_POLICY

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/s/not-a-token", 404),
        ("POST", "/s/not-a-token", 404),
        ("GET", f"/u/{SAMPLE_TOKEN}", 200),
        ("POST", f"/u/{SAMPLE_TOKEN}", 200),
        ("GET", "/u/not-a-token", 404),
    ],
)
def test_a_public_page_sends_the_security_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert {name: answer.headers.get(name) for name in EXPECTED} == EXPECTED
    # no inline style the policy would block: the page's look is a file of Rapport's own
    assert "<style" not in answer.text
    assert 'rel="stylesheet" href="/static/' in answer.text


def test_the_public_pages_stylesheets_are_served(client: TestClient) -> None:
    for name in ("survey.css", "unsubscribe.css"):
        sheet = client.get(f"/static/{name}")
        assert sheet.status_code == 200
        assert sheet.headers["content-type"].startswith("text/css")


def test_the_api_and_the_admin_keep_their_own_headers(client: TestClient) -> None:
    assert "content-security-policy" not in client.get("/healthz").headers
    assert client.get("/admin/login").headers["referrer-policy"] == "same-origin"
