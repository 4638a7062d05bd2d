"""A new tier ladder that counts another basis (spend to points) re-places every member at
once, or, for many members, by a job the program's tiers page says is running."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import tasks as loyalty_tasks
from rapport.loyalty.tiers import reviews
from rapport.loyalty.tiers.policy import DEFAULT_TIERS
from rapport.orders import service as orders
from rapport.platform import clock, jobs
from tests.conftest import auth
from tests.loyalty.earning.test_earning import big_order, process
from tests.loyalty.factories import frozen_clock, make_customer
from tests.orders.factories import seed_catalog


def _points_ladder() -> dict[str, Any]:
    """Silver from 300 qualifying points, gold from 1,000."""
    ladder = copy.deepcopy(DEFAULT_TIERS)
    ladder["basis"] = "points"
    tiers = ladder["tiers"]
    assert isinstance(tiers, list)
    tiers[1]["threshold"], tiers[2]["threshold"] = 300, 1000
    return ladder


def _a_member_who_spent_360_euros(db: Session) -> str:
    """Under the default spend ladder (Silver from €500.00), €360.00 leaves them a Member."""
    seed_catalog(db, stock=500)
    member = make_customer(db)
    orders.place_order(db, order=big_order(member, 30))
    process(db)
    return member


def _tier(client: TestClient, headers: dict[str, str], member: str) -> tuple[str, int]:
    shown = client.get(f"/v1/loyalty/members/{member}/tier", headers=headers).json()
    return shown["tier_id"], shown["qualifying_value"]


def test_switching_the_basis_to_points_re_places_every_member_at_once(
    client: TestClient, api_key: Any, db: Session
) -> None:
    frozen_clock()
    headers = auth(api_key("admin", "read"))
    member = _a_member_who_spent_360_euros(db)
    assert _tier(client, headers, member) == ("member", 36000)

    # when the ladder counts qualifying points instead (Silver from 300)
    saved = client.put(
        "/v1/loyalty/program/tiers", json={"document": _points_ladder()}, headers=headers
    )
    assert saved.status_code == 200, saved.text

    # then the member's 360 points count at once: Silver, without any new activity
    assert _tier(client, headers, member) == ("silver", 360)


def test_for_many_members_a_job_re_places_them_and_the_tiers_page_says_so(
    admin: TestClient, client: TestClient, api_key: Any, db: Session, monkeypatch: Any
) -> None:
    frozen_clock()
    headers = auth(api_key("admin", "read"))
    member = _a_member_who_spent_360_euros(db)
    monkeypatch.setattr(reviews, "RECOMPUTE_AT_ONCE", 0)  # more members than are done at once

    # when the ladder counts qualifying points instead
    saved = client.put(
        "/v1/loyalty/program/tiers", json={"document": _points_ladder()}, headers=headers
    )
    assert saved.status_code == 200, saved.text

    # then the tiers page says every member's tier is being recomputed
    page = admin.get("/admin/loyalty/program/tiers/edit")
    assert 'data-testid="tiers-recomputing"' in page.text
    # and once the job has run the member is Silver on their points
    job = jobs.pending(db, kind=reviews.RECOMPUTE_JOB)
    assert job is not None
    loyalty_tasks.recompute_every_tier(db, job.payload)
    assert _tier(client, headers, member) == ("silver", 360)


def test_a_ladder_on_the_same_basis_queues_nothing(
    client: TestClient, api_key: Any, db: Session
) -> None:
    frozen_clock()
    headers = auth(api_key("admin", "read"))
    ladder = copy.deepcopy(DEFAULT_TIERS)
    ladder["window_months"] = 6
    saved = client.put("/v1/loyalty/program/tiers", json={"document": ladder}, headers=headers)
    assert saved.status_code == 200, saved.text
    assert jobs.pending(db, kind=reviews.RECOMPUTE_JOB) is None


def test_the_tiers_page_shows_how_far_the_recomputation_has_come(
    admin: TestClient, client: TestClient, api_key: Any, db: Session, monkeypatch: Any
) -> None:
    frozen_clock()
    headers = auth(api_key("admin", "read"))
    seed_catalog(db, stock=500)
    members = [make_customer(db) for _ in range(3)]
    for member in members:
        orders.place_order(db, order=big_order(member, 3))
    process(db)
    monkeypatch.setattr(reviews, "RECOMPUTE_AT_ONCE", 0)

    # when the ladder counts qualifying points instead, for three members
    saved = client.put(
        "/v1/loyalty/program/tiers", json={"document": _points_ladder()}, headers=headers
    )
    assert saved.status_code == 200, saved.text

    # then, queued, the tiers page says how many members it will review
    status = 'data-testid="tiers-recomputing"'
    page = admin.get("/admin/loyalty/program/tiers/edit").text
    assert "(3 members, queued)" in page.split(status)[1].split("</p>")[0]

    # and once a worker runs it, two members a page, stopped after its first page
    job = jobs.pending(db, kind=reviews.RECOMPUTE_JOB)
    assert job is not None
    job.status = "running"
    db.commit()
    heard: list[tuple[int, int]] = []

    def record(done: int, total: int) -> None:
        heard.append((done, total))
        if done == 3:
            raise RuntimeError("the worker stopped")
        reviews.record_recompute_progress(db, done, total)

    try:
        reviews.recompute_tiers(db, at=clock.now(), page=2, progress=record)
    except RuntimeError:
        db.rollback()
    assert heard == [(0, 3), (2, 3), (3, 3)]

    # it says the members done of all of them, as committed
    page = admin.get("/admin/loyalty/program/tiers/edit").text
    said = page.split(status)[1].split("</p>")[0]
    assert "2 of 3 members done" in said
    assert '<progress value="2" max="3"' in said
    # and the job run again to its end (the worker's handler) says all of them
    loyalty_tasks.recompute_every_tier(db, job.payload)
    page = admin.get("/admin/loyalty/program/tiers/edit").text
    assert "3 of 3 members done" in page.split(status)[1].split("</p>")[0]
