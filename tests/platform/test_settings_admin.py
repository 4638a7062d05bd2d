"""The settings pages over HTTP: API keys (create with the secret once, inline errors,
revoke, orders from tracking) and background jobs (counts, filters, pages)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rapport.platform import clock, jobs
from rapport.platform import service as platform
from tests.conftest import auth

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


@pytest.fixture
def signed_in(client: Any, db: Session) -> str:
    """A signed-in admin; returns the session's CSRF token."""
    platform.create_admin_user(db, email="ops@example.com", password=PASSWORD)
    token = _csrf(client.get("/admin/login").text)
    client.post(
        "/admin/login",
        data={"email": "ops@example.com", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    return _csrf(client.get("/admin/settings/keys").text)


def test_settings_pages_need_a_signed_in_admin(client: Any) -> None:
    for path in ("/admin/settings/keys", "/admin/settings/jobs"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/admin/login")


def test_a_created_key_is_shown_once_and_works(client: Any, db: Session, signed_in: str) -> None:
    # when a key is created on the page
    created = client.post(
        "/admin/settings/keys",
        data={"csrf_token": signed_in, "name": "Till in Lyon", "scopes": ["read", "write"]},
    )
    assert created.status_code == 201
    secret = re.search(r'data-testid="new-key-secret"[^>]*value="(rk_[^"]+)"', created.text)
    assert secret is not None
    assert "only time it is shown" in created.text
    # then it is stored with what the form said (the box left unticked: no tracked orders)
    (key,) = [k for k in platform.list_api_keys(db) if k.name == "Till in Lyon"]
    assert key.scopes == ["read", "write"]
    assert key.orders_from_tracking is False
    # and the secret works, while the list never shows it again
    assert client.get("/v1/feedback/surveys", headers=auth(secret.group(1))).status_code == 200
    listing = client.get("/admin/settings/keys").text
    assert key.id in listing
    assert secret.group(1) not in listing


def test_a_key_without_name_or_scope_is_refused_inline(
    client: Any, db: Session, signed_in: str
) -> None:
    answer = client.post(
        "/admin/settings/keys",
        data={"csrf_token": signed_in, "name": "  ", "orders_from_tracking": "true"},
    )
    assert answer.status_code == 422
    assert 'data-field-error="name"' in answer.text
    assert 'data-field-error="scopes"' in answer.text
    assert platform.list_api_keys(db) == []


def test_revoking_asks_first_then_the_key_is_refused(
    client: Any, db: Session, signed_in: str
) -> None:
    issued = platform.create_api_key(db, name="Old app", scopes=[platform.Scope.READ])
    confirm = client.get(f"/admin/settings/keys/{issued.key.id}/revoke")
    assert confirm.status_code == 200
    assert "Revoke the key" in confirm.text
    assert platform.get_api_key(db, key_id=issued.key.id).revoked_at is None
    done = client.post(
        f"/admin/settings/keys/{issued.key.id}/revoke",
        data={"csrf_token": signed_in},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert platform.get_api_key(db, key_id=issued.key.id).revoked_at is not None
    assert client.get("/v1/feedback/surveys", headers=auth(issued.secret)).status_code == 401


def test_revoking_needs_the_csrf_token(client: Any, db: Session, signed_in: str) -> None:
    issued = platform.create_api_key(db, name="Shop", scopes=[platform.Scope.READ])
    client.post(f"/admin/settings/keys/{issued.key.id}/revoke", data={})
    assert platform.get_api_key(db, key_id=issued.key.id).revoked_at is None


def test_orders_from_tracking_is_switched_on_the_page(
    client: Any, db: Session, signed_in: str
) -> None:
    issued = platform.create_api_key(
        db, name="Shop server", scopes=[platform.Scope.INGEST, platform.Scope.WRITE]
    )
    path = f"/admin/settings/keys/{issued.key.id}/orders-from-tracking"
    client.post(path, data={"csrf_token": signed_in, "enabled": "false"})
    assert platform.get_api_key(db, key_id=issued.key.id).orders_from_tracking is False
    page = client.post(path, data={"csrf_token": signed_in, "enabled": "true"})
    assert platform.get_api_key(db, key_id=issued.key.id).orders_from_tracking is True
    assert "Orders from tracking for Shop server: on</p>" in page.text


def test_orders_from_tracking_says_which_scopes_it_needs(
    client: Any, db: Session, signed_in: str
) -> None:
    # given keys with the switch on and each mix of scopes, and one switched off
    wanted = {
        "Server": ([platform.Scope.INGEST, platform.Scope.WRITE], True, "on"),
        "Ops": ([platform.Scope.ADMIN], True, "on"),
        "Pages": ([platform.Scope.INGEST], True, "on, but needs write scope"),
        "Backoffice": ([platform.Scope.WRITE], True, "on, but needs ingest scope"),
        "Reports": ([platform.Scope.READ], True, "on, but needs ingest and write scopes"),
        "Quiet": ([platform.Scope.INGEST, platform.Scope.WRITE], False, "off"),
    }
    ids = {
        name: platform.create_api_key(
            db, name=name, scopes=scopes, orders_from_tracking=switched_on
        ).key.id
        for name, (scopes, switched_on, _state) in wanted.items()
    }
    # when the keys page is opened
    page = client.get("/admin/settings/keys").text
    # then each key's row says what its switch does with its scopes
    for name, (_scopes, _on, state) in wanted.items():
        row = re.search(rf'data-key-id="{ids[name]}".*?</tr>', page, re.S)
        assert row is not None
        cell = re.search(r'data-testid="orders-from-tracking">([^<]*)<', row.group(0))
        assert cell is not None
        assert cell.group(1).strip() == state, name


def _rows(html: str) -> list[str]:
    return re.findall(r'data-job-id="(\d+)"', html)


def test_jobs_are_counted_filtered_and_paged(client: Any, db: Session, signed_in: str) -> None:
    # given 60 exports done, 3 failed and one queued for later
    for number in range(60):
        done = jobs.enqueue(db, kind="test.export", payload={"n": number})
        done.status, done.finished_at = "done", clock.now()
    for _ in range(3):
        failed = jobs.enqueue(db, kind="test.import")
        failed.status, failed.last_error = "failed", "ValueError: column 3 is not a date"
    jobs.enqueue(db, kind="test.export", run_at=clock.now() + timedelta(hours=2))
    db.commit()
    page = client.get("/admin/settings/jobs").text
    assert re.search(r'data-testid="job-count-done".*?>60<', page, re.S)
    assert len(_rows(page)) == 50
    assert "Rows 1\u201350 of 64" in page
    second = client.get("/admin/settings/jobs", params={"page": 2}).text
    assert len(_rows(second)) == 14
    failed_only = client.get("/admin/settings/jobs", params={"status": "failed"}).text
    assert len(_rows(failed_only)) == 3
    assert "column 3 is not a date" in failed_only
    queued_exports = client.get(
        "/admin/settings/jobs", params={"status": "queued", "kind": "test.export"}
    ).text
    assert len(_rows(queued_exports)) == 1
    assert client.get("/admin/settings/jobs", params={"status": "lost"}).status_code == 422


def test_a_running_job_shows_its_worker_and_heartbeat_age(
    client: Any, db: Session, signed_in: str
) -> None:
    # given a job running on one worker that beat 40 s ago, and one whose worker went quiet
    # 5 minutes ago
    now = clock.now()
    beating = jobs.enqueue(db, kind="test.export")
    beating.status, beating.locked_by = "running", "shop-1:4242:9f3a61c0"
    beating.started_at, beating.heartbeat_at = now - timedelta(hours=1), now - timedelta(seconds=40)
    quiet = jobs.enqueue(db, kind="test.import")
    quiet.status, quiet.locked_by = "running", "shop-2:77:0b1c2d3e"
    quiet.started_at, quiet.heartbeat_at = now - timedelta(minutes=6), now - timedelta(minutes=5)
    db.commit()
    # when the jobs page is opened
    page = client.get("/admin/settings/jobs", params={"status": "running"}).text
    # then each row names its worker and how long ago it beat, the quiet one marked stale
    workers = re.findall(r'data-testid="job-worker"[^>]*>(.*?)</td>', page, re.S)
    assert len(workers) == 2
    shown = {re.sub(r"<[^>]+>", " ", cell).split()[0]: " ".join(cell.split()) for cell in workers}
    assert "heartbeat 4" in shown["shop-1:4242:9f3a61c0"]  # 40 s, or 41 s on a slow run
    assert "stale" not in shown["shop-1:4242:9f3a61c0"]
    assert "heartbeat 5 min ago, stale" in shown["shop-2:77:0b1c2d3e"]
