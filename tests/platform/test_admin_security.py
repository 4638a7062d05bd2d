"""Admin sign-in safety over HTTP: sessions end on the server, Secure cookies over HTTPS,
security headers on every admin answer, and backoff then lockout after wrong passwords per
account and per address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.main import create_app
from rapport.platform import clock
from rapport.platform import service as platform
from rapport.platform.db import get_db
from rapport.platform.settings import Settings
from tests.app_routes import every_route
from tests.platform.admin_forms import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_token, sign_in

COOKIE = "rapport_admin"


@pytest.fixture
def admin_user(db: Session) -> None:
    platform.create_admin_user(db, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)


@pytest.fixture
def frozen() -> clock.FrozenClock:
    # Near real time: the cookie's own signature carries a real timestamp.
    stopped = clock.FrozenClock(datetime.now(UTC))
    clock.set_clock(stopped)
    return stopped


def _client(app: FastAPI, **options: object) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, **options)  # type: ignore[arg-type]


def _app(settings: Settings, db: Session, **changes: object) -> FastAPI:
    application = create_app(settings.model_copy(update=changes), run_worker=False)
    application.dependency_overrides[get_db] = lambda: db
    return application


def _signed_in(client: TestClient) -> bool:
    return client.get("/admin", follow_redirects=False).status_code == 200


# ------------------------------------------------------------------------------ sessions


def test_a_copied_cookie_stops_working_at_sign_out(app: FastAPI, admin_user: None) -> None:
    # given a signed-in admin whose cookie someone copied
    with _client(app) as browser, _client(app) as thief:
        assert sign_in(browser).status_code == 303
        thief.cookies.set(COOKIE, browser.cookies[COOKIE])
        assert _signed_in(thief)
        # when the admin signs out
        browser.post("/admin/logout", data={"csrf_token": csrf_token(browser.get("/admin").text)})
        # then the copied cookie no longer signs anyone in
        assert not _signed_in(thief)
        assert not _signed_in(browser)


def test_a_new_password_ends_every_session(app: FastAPI, db: Session, admin_user: None) -> None:
    # given a signed-in admin
    with _client(app) as browser:
        sign_in(browser)
        assert _signed_in(browser)
        # when the password is changed on the server
        platform.set_admin_password(db, email=ADMIN_EMAIL, password="another long password")
        # then the session is over
        assert not _signed_in(browser)


def test_a_session_expires_on_the_server(
    app: FastAPI, settings: Settings, admin_user: None, frozen: clock.FrozenClock
) -> None:
    # given a signed-in admin
    with _client(app) as browser:
        sign_in(browser)
        # when the session's lifetime passes
        frozen.advance(timedelta(seconds=settings.session_max_age_seconds - 1))
        assert _signed_in(browser)
        frozen.advance(timedelta(seconds=2))
        # then the server no longer accepts it
        assert not _signed_in(browser)


# ------------------------------------------------------------------------------ cookies


def _cookie_header(client: TestClient) -> str:
    page = client.get("/admin/login")
    return page.headers["set-cookie"]


def test_cookie_is_secure_over_https(app: FastAPI) -> None:
    with _client(app, base_url="https://testserver") as client:
        assert "secure" in _cookie_header(client).lower()


def test_cookie_is_not_secure_over_plain_http_by_default(app: FastAPI) -> None:
    with _client(app) as client:
        header = _cookie_header(client).lower()
    assert "secure" not in header
    assert "httponly" in header
    assert "samesite=strict" in header


def test_cookie_is_secure_when_the_operator_says_so(settings: Settings, db: Session) -> None:
    with _client(_app(settings, db, secure_cookies=True)) as client:
        assert "secure" in _cookie_header(client).lower()


# ------------------------------------------------------------------------------ headers


def _admin_paths(app: FastAPI) -> list[str]:
    return sorted(
        {
            re.sub(r"\{[^}]+\}", "x", path)
            for path, route in every_route(app.routes)
            if path.startswith("/admin") and "GET" in (getattr(route, "methods", None) or set())
        }
    )


def test_every_admin_answer_carries_the_security_headers(app: FastAPI, admin_user: None) -> None:
    with _client(app) as client:
        answers = [client.get("/admin", follow_redirects=False)]  # a redirect to sign in
        answers.append(client.post("/admin/logout"))  # a CSRF refusal
        sign_in(client)
        paths = _admin_paths(app)
        assert len(paths) > 10
        answers += [client.get(path, follow_redirects=False) for path in paths]
    for answer in answers:
        headers = answer.headers
        where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
        csp = headers.get("content-security-policy", "")
        path = answer.request.url.path
        if path.startswith("/admin/feedback/surveys/") and path.endswith("/preview"):
            # The survey preview is the customer's page, framed by the survey form: it may be
            # framed by Rapport's own pages only, and may run nothing at all.
            assert "default-src 'none'" in csp, where
            assert "script-src" not in csp, where
            assert "frame-ancestors 'self'" in csp, where
            assert headers.get("x-frame-options") == "SAMEORIGIN", where
            continue
        assert "frame-ancestors 'none'" in csp, where
        assert "default-src 'self'" in csp, where
        assert "script-src 'self'" in csp, where
        assert "unsafe-inline" not in csp, where
        assert headers.get("x-frame-options") == "DENY", where
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "same-origin", where


def test_the_api_does_not_get_the_admin_cookie_or_headers(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert "set-cookie" not in answer.headers
    assert "content-security-policy" not in answer.headers


# ------------------------------------------------------------------------------ login limits


def _try(client: TestClient, email: str, password: str) -> Any:
    return sign_in(client, email=email, password=password)


def test_an_account_is_locked_after_repeated_wrong_passwords(
    app: FastAPI, admin_user: None, frozen: clock.FrozenClock
) -> None:
    with _client(app) as client:
        # given five wrong passwords for the account
        for _ in range(5):
            assert _try(client, ADMIN_EMAIL, "wrong password").status_code == 401
        # when a sixth follows
        sixth = _try(client, ADMIN_EMAIL, "wrong password")
        # then the account waits 30 seconds, and the answer says so
        assert sixth.status_code == 429
        assert sixth.headers["retry-after"] == "30"
        until = (frozen() + timedelta(seconds=30)).strftime("%H:%M:%S")
        assert f"Try again in 30 seconds (at {until} UTC)" in sixth.text
        # and even the right password is refused until then
        assert _try(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 429
        # when the wait is over, another wrong password doubles it
        frozen.advance(timedelta(seconds=31))
        seventh = _try(client, ADMIN_EMAIL, "wrong password")
        assert seventh.status_code == 429
        assert seventh.headers["retry-after"] == "60"
        # and after that wait the right password signs in and starts the count afresh
        frozen.advance(timedelta(seconds=61))
        assert _try(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303
        assert _try(client, ADMIN_EMAIL, "wrong password").status_code == 401


def test_the_account_lock_holds_from_every_address_and_process(
    app: FastAPI, settings: Settings, db: Session, admin_user: None, frozen: clock.FrozenClock
) -> None:
    # given wrong passwords for one account, each from a different address
    for number in range(6):
        with _client(app, client=(f"203.0.113.{number}", 40000)) as client:
            _try(client, ADMIN_EMAIL, "wrong password")
    # when the right password comes from yet another address, to another server process
    other_process = _app(settings, db)
    with _client(other_process, client=("198.51.100.7", 40000)) as client:
        answer = _try(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    # then the lock is shared: the account waits
    assert answer.status_code == 429
    assert "Too many wrong passwords" in answer.text


def test_an_address_is_locked_after_many_wrong_passwords_for_any_accounts(
    app: FastAPI, admin_user: None, frozen: clock.FrozenClock
) -> None:
    with _client(app, client=("192.0.2.9", 40000)) as guesser:
        # given twenty wrong passwords from one address, each for a different account
        for number in range(20):
            assert _try(guesser, f"guess{number}@example.com", "x").status_code == 401
        # when a twenty-first comes, for yet another account
        answer = _try(guesser, "guess20@example.com", "x")
        # then that address waits, whatever account it tries next
        assert answer.status_code == 429
        assert answer.headers["retry-after"] == "30"
        assert _try(guesser, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 429
    # while the account itself is fine from another address
    with _client(app, client=("192.0.2.10", 40000)) as colleague:
        assert _try(colleague, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 303


def test_the_wait_is_capped_at_the_lockout(
    app: FastAPI, admin_user: None, frozen: clock.FrozenClock
) -> None:
    # given a long run of wrong passwords, each tried once the last wait was over
    with _client(app) as client:
        answer = None
        for _ in range(14):
            answer = _try(client, ADMIN_EMAIL, "wrong password")
            frozen.advance(timedelta(hours=2))
        frozen.advance(timedelta(hours=-2))
    # then the last wait is the one-hour lockout
    assert answer is not None
    assert answer.headers["retry-after"] == "3600"


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    yield
    clock.reset_clock()
