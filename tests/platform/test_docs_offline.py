"""The API reference pages (/docs, /redoc) in a real headless Chromium that may not leave the
machine: every asset comes from the npm packages installed at set-up, never from a CDN."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from rapport.main import create_app
from rapport.platform.settings import Settings

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# Building the OpenAPI document and rendering some 200 operations takes seconds on a busy
# machine.
RENDERED_WITHIN_MS = 60_000


def _stay_on_loopback(page: Any) -> list[str]:
    """Abort every request for another host; return the list they are recorded in. (The
    pages' Content-Security-Policy stops ReDoc's logo from cdn.redoc.ly in the browser, before
    any request is made: it never reaches this route.)"""
    left: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            request_route.continue_()
        else:
            left.append(url)
            request_route.abort()

    page.route("**/*", route)
    return left


def _screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("RAPPORT_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def test_swagger_ui_and_redoc_render_the_operations_without_leaving_the_machine(
    page, live_server
) -> None:
    # given a browser whose requests to any other host are aborted
    left = _stay_on_loopback(page)
    # when an operator opens the API reference
    answer = page.goto(f"{live_server.base_url}/docs", timeout=RENDERED_WITHIN_MS)
    # then Swagger UI lists the operations by tag, from local files only
    page.locator("#operations-tag-events").wait_for(timeout=RENDERED_WITHIN_MS)
    assert page.get_by_text("Track Batch").first.is_visible()
    _screenshot(page, "docs.png")
    assert left == []
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    # and so does ReDoc
    answer = page.goto(f"{live_server.base_url}/redoc", timeout=RENDERED_WITHIN_MS)
    heading = page.get_by_role("heading", name="Track Batch").first
    heading.wait_for(state="attached", timeout=RENDERED_WITHIN_MS)
    assert page.get_by_text("segment compatibility").first.is_visible()
    _screenshot(page, "redoc.png")
    assert left == []
    assert "img-src 'self' data:" in answer.headers["content-security-policy"]


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'docs.db'}",
        secret_key="test-secret-key-not-for-production",
        data_dir=tmp_path,
        **changes,
    )


def test_docs_say_how_to_install_the_assets_when_npm_did_not(tmp_path) -> None:
    # given a server whose front-end packages were never installed
    settings = _settings(tmp_path, vendor_static_dir=tmp_path / "node_modules")
    with TestClient(create_app(settings, run_worker=False)) as client:
        for path in ("/docs", "/redoc"):
            # when the API reference is opened
            answer = client.get(path)
            # then it says what is missing and how to install it, and where the document is
            assert answer.status_code == 503
            assert "./scripts/setup.sh" in answer.text
            assert "npm" in answer.text
            assert 'href="/openapi.json"' in answer.text
        # and the document itself is still served
        assert client.get("/openapi.json").status_code == 200


def test_docs_pages_name_only_local_files(tmp_path) -> None:
    with TestClient(create_app(_settings(tmp_path), run_worker=False)) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200
            assert "http://" not in page.text
            assert "https://" not in page.text
            assets = re.findall(r"/static/vendor/[^\"' ]+", page.text)
            assert assets
            for asset in assets:
                assert client.get(asset).status_code == 200, asset
