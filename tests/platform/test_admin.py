"""Admin sign-in over HTTP: CSRF, wrong password, redirects, sign-out."""

from __future__ import annotations

import re

import pytest

from rapport.platform import service as platform

PASSWORD = "correct horse battery"


@pytest.fixture
def admin_user(db):  # type: ignore[no-untyped-def]
    return platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def _sign_in(client, *, password: str = PASSWORD, next_path: str = "/admin"):  # type: ignore[no-untyped-def]
    """Open the sign-in page and post its form; returns (CSRF token used, response)."""
    token = _csrf(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={
            "email": "ops@example.com",
            "password": password,
            "csrf_token": token,
            "next": next_path,
        },
        follow_redirects=False,
    )
    return token, response


def test_overview_redirects_to_login_when_signed_out(client) -> None:
    response = client.get("/admin", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin"


def test_login_without_csrf_token_is_refused(client, admin_user) -> None:
    client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"email": "ops@example.com", "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert response.json()["field"] == "csrf_token"
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_wrong_password_shows_error_and_stays_signed_out(client, admin_user) -> None:
    _token, response = _sign_in(client, password="not the password")
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sign_in_shows_overview_and_sign_out_ends_session(client, admin_user) -> None:
    token, response = _sign_in(client)
    assert response.status_code == 303
    overview = client.get("/admin")
    assert overview.status_code == 200
    assert 'data-testid="counts"' in overview.text
    # the session gets a new CSRF token at sign-in
    new_token = _csrf(overview.text)
    assert new_token != token
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 403
    client.post("/admin/logout", data={"csrf_token": new_token})
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_next_parameter_cannot_redirect_off_site(client, admin_user) -> None:
    _token, response = _sign_in(client, next_path="https://evil.example")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin"
