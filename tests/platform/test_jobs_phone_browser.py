"""The background jobs page on a phone (390 px): each job is one block, its worker and
heartbeat on the screen, where the worker column lay beyond the screen's edge in a table to
scroll sideways."""

from __future__ import annotations

import os
from typing import Any

import pytest

from rapport.platform import clock, jobs
from rapport.platform import service as platform
from rapport.platform.db import open_session
from tests.conftest import LiveServer, sign_in_as

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
WORKER = "worker-host-7:4242:8b1f3c2a"


def test_a_running_jobs_worker_is_on_a_phones_screen(page: Any, live_server: LiveServer) -> None:
    # given a running job with its worker and heartbeat, and a failed one
    with open_session(live_server.database_url) as db:
        platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
        running = jobs.enqueue(db, kind="loyalty.expire_points")
        running.status, running.locked_by = "running", WORKER
        running.started_at = running.heartbeat_at = clock.now()
        failed = jobs.enqueue(db, kind="customers.import")
        failed.status, failed.last_error = "failed", "ValueError: column 3 is not a date"
        db.commit()
    sign_in_as(page, live_server.base_url, "ops@example.com", PASSWORD)
    # when the jobs page opens on a 390 px phone
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.base_url}/admin/settings/jobs")
    shots = os.environ.get("RAPPORT_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/jobs-390.png", full_page=True)
    # then the worker and its heartbeat lie inside the screen, under the column's name, and
    # the page does not scroll sideways
    worker = page.locator(f'tr[data-job-id="{running.id}"] [data-testid="job-worker"]')
    box = worker.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= 390, box
    assert WORKER in worker.inner_text()
    assert "heartbeat" in worker.inner_text()
    label = worker.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"Worker: "'
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    wrap_width = page.locator(".table-wrap").first.evaluate("wrap => wrap.scrollWidth")
    assert wrap_width <= 390
