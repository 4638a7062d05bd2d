"""Goodwill points per customer over a rolling window: the program's cap, what a refusal says,
the customer page's form and the program settings form that show it, and two grants at once
(real commits across connections, on both backends)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty import service as loyalty
from rapport.platform.db import open_session
from rapport.platform.errors import Conflict
from tests.loyalty.factories import frozen_clock, make_customer
from tests.platform.admin_forms import csrf_token


def _give(db: Session, customer_id: str, points: int) -> loyalty.Posted:
    return loyalty.give_goodwill(
        db, customer_id=customer_id, points=points, reason="Goodwill: Late delivery", actor="a@b"
    )


def test_goodwill_is_capped_per_customer_over_the_window(db: Session) -> None:
    # given the default window (20,000 points in any 30 days) and 10,000 given twice, ten
    # days apart (the per-grant cap)
    moment = frozen_clock()  # 1 March 2026, 09:00
    customer_id = make_customer(db)
    assert (
        loyalty.get_program(db).goodwill_window_points,
        loyalty.get_program(db).goodwill_window_days,
    ) == (20_000, 30)
    _give(db, customer_id, 10_000)
    moment.advance(timedelta(days=10))
    _give(db, customer_id, 10_000)
    # when one point more is asked
    with pytest.raises(Conflict) as refused:
        _give(db, customer_id, 500)
    # then it is refused naming points, saying what is left and from when it can be given
    assert refused.value.field == "points"
    assert refused.value.detail == (
        f"Goodwill for {customer_id} is capped at 20,000 points in any 30 days: 20,000 given "
        "in the last 30 days, so 0 more can be given now; the 500 asked can be given from "
        "31 Mar 2026, 09:00 UTC"
    )
    assert refused.value.extra == {
        "goodwill_left": 0,
        "goodwill_free_from": "2026-03-31T09:00:00+00:00",
    }
    assert loyalty.balance(db, customer_id=customer_id) == 20_000
    # and once the first grant has left the window, its room is back
    moment.advance(timedelta(days=20, seconds=1))
    assert loyalty.goodwill_room(db, customer_id=customer_id).left == 10_000
    _give(db, customer_id, 10_000)
    # while points given otherwise (earned, adjusted through the API) do not count
    loyalty.adjust(db, customer_id=customer_id, points=5_000, reason="Carried over", actor="api:x")
    assert loyalty.goodwill_room(db, customer_id=customer_id).given == 20_000


def test_a_smaller_window_set_by_the_program_is_kept(db: Session) -> None:
    frozen_clock()
    loyalty.configure_program(db, goodwill_window_points=1_500, goodwill_window_days=7)
    customer_id = make_customer(db)
    _give(db, customer_id, 1_000)
    with pytest.raises(Conflict) as refused:
        _give(db, customer_id, 600)
    assert "capped at 1,500 points in any 7 days" in refused.value.detail
    assert "so 500 more can be given now; the 600 asked can be given from 8 Mar 2026" in (
        refused.value.detail
    )
    with pytest.raises(Conflict) as never:
        _give(db, customer_id, 2_000)
    assert "the window never holds 2,000" in never.value.detail


def test_two_grants_at_once_do_not_pass_the_window_together(committed_url: str) -> None:
    # given a window of 10,000 points and a customer with no goodwill yet
    with open_session(committed_url) as db:
        loyalty.configure_program(db, goodwill_window_points=10_000)
        customer_id = make_customer(db)
        loyalty.earn(db, customer_id=customer_id, points=10, reason="Order")
    outcomes: list[str] = []
    start = threading.Barrier(4)
    lock = threading.Lock()

    def give() -> None:
        with open_session(committed_url) as db:
            start.wait()
            try:
                _give(db, customer_id, 6_000)
            except Conflict:
                outcome = "refused"
            except BaseException as error:
                outcome = repr(error)
            else:
                outcome = "given"
            with lock:
                outcomes.append(outcome)

    # when four agents give 6,000 at the same moment
    threads = [threading.Thread(target=give) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then one is given, the others refused, and the ledger is sound
    assert sorted(outcomes) == ["given", "refused", "refused", "refused"]
    with open_session(committed_url) as db:
        assert loyalty.balance(db, customer_id=customer_id) == 6_010
        assert loyalty.goodwill_room(db, customer_id=customer_id).given == 6_000
        assert loyalty.invariant_violations(db) == []


def test_the_goodwill_form_shows_the_window_and_refuses_beyond_it(
    admin: TestClient, db: Session
) -> None:
    # given a customer given 15,000 goodwill points this month
    frozen_clock()
    customer_id = make_customer(db)
    _give(db, customer_id, 10_000)
    _give(db, customer_id, 5_000)
    panel = admin.get(f"/admin/loyalty/customers/{customer_id}/panel").text
    assert "15,000 given in the last 30 days" in panel
    assert "<strong>5,000</strong> left now" in panel
    # when an agent gives 6,000 more
    answer = admin.post(
        f"/admin/loyalty/customers/{customer_id}/goodwill",
        data={
            "csrf_token": csrf_token(panel),
            "points": "6000",
            "reason": "Late delivery",
            "note": "",
            "token": "g-window",
        },
        headers={"HX-Request": "true"},
    )
    # then it is refused at the points field saying what is left, and nothing is given
    assert answer.status_code == 422
    assert 'data-field-error="points"' in answer.text
    assert "so 5,000 more can be given now" in answer.text
    db.expire_all()
    assert loyalty.balance(db, customer_id=customer_id) == 15_000


def test_the_program_settings_form_shows_and_saves_the_goodwill_window(
    admin: TestClient, db: Session
) -> None:
    page = admin.get("/admin/loyalty").text
    assert 'name="goodwill_window_points"' in page
    assert 'value="20000"' in page
    assert 'name="goodwill_window_days"' in page
    saved = admin.post(
        "/admin/loyalty/program",
        data={
            "csrf_token": csrf_token(page),
            "goodwill_window_points": "8000",
            "goodwill_window_days": "14",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    db.expire_all()
    program = loyalty.get_program(db)
    assert (program.goodwill_window_points, program.goodwill_window_days) == (8_000, 14)
    refused = admin.post(
        "/admin/loyalty/program",
        data={"csrf_token": csrf_token(page), "goodwill_window_days": "0"},
    )
    assert refused.status_code == 422
    assert "Goodwill window: a whole number of days from 1 to 365" in refused.text
