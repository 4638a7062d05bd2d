"""The settings pages in Chromium: an operator creates an API key, copies its secret (shown
once), uses it, revokes it; the background jobs list is filtered and paged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rapport.platform import clock, jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _sign_in(page: Any, server: LiveServer, path: str) -> None:
    with open_session(server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
    sign_in_as(page, server.base_url, "ops@example.com", PASSWORD, at=path)


def _surveys(server: LiveServer, secret: str) -> int:
    answer = httpx.get(
        f"{server.base_url}/v1/feedback/surveys", headers={"Authorization": f"Bearer {secret}"}
    )
    return answer.status_code


def test_a_key_is_created_shown_once_used_and_revoked(page: Any, live_server: LiveServer) -> None:
    _sign_in(page, live_server, "/admin/settings/keys")
    # when the operator creates a key that may read
    page.get_by_label("Name").fill("Reporting tool")
    page.get_by_role("checkbox", name="read").check()
    page.get_by_role("button", name="Create key").click()
    # then its secret is shown, with the warning that this is the only time
    created = page.get_by_test_id("new-key")
    assert "Copy its secret now" in created.inner_text()
    secret = page.get_by_test_id("new-key-secret").input_value()
    assert secret.startswith("rk_")
    # and the secret works against the API
    assert _surveys(live_server, secret) == 200
    # and the list shows the key but never the secret again
    page.goto(f"{live_server.base_url}/admin/settings/keys")
    assert secret not in page.content()
    row = page.locator("tr", has_text="Reporting tool")
    assert "read" in row.inner_text()
    # when it is revoked, after confirming
    row.get_by_role("link", name="Revoke").click()
    page.get_by_test_id("confirm-revoke").click()
    page.wait_for_url(f"{live_server.base_url}/admin/settings/keys")
    assert "revoked" in page.get_by_test_id("message").inner_text()
    assert "Revoked" in page.locator("tr", has_text="Reporting tool").inner_text()
    # then the API refuses it
    assert _surveys(live_server, secret) == 401


def test_jobs_are_filtered_by_status_and_paged(page: Any, live_server: LiveServer) -> None:
    with open_session(live_server.database_url) as db:
        for number in range(55):
            done = jobs.enqueue(db, kind="test.export", payload={"n": number})
            done.status, done.finished_at = "done", clock.now()
        failed = jobs.enqueue(db, kind="test.import")
        failed.status, failed.last_error = "failed", "ValueError: column 3 is not a date"
        db.commit()
    _sign_in(page, live_server, "/admin/settings/jobs")
    assert page.get_by_test_id("job-count-done").inner_text().strip().endswith("55")
    rows = page.get_by_test_id("jobs").locator("tbody tr")
    assert rows.count() == 50
    # the next page has the rest
    page.get_by_role("link", name="Next →").first.click()
    assert rows.count() == 6
    # filtering on failed jobs shows the one, with its error
    page.goto(f"{live_server.base_url}/admin/settings/jobs")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=failed**")
    assert rows.count() == 1
    assert "test.import" in rows.first.inner_text()
    rows.first.locator("summary").click()
    assert "column 3 is not a date" in rows.first.inner_text()
