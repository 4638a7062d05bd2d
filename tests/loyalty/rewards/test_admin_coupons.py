"""The admin "Issue coupons" form issues its set once however often it is sent: a one-time
token per rendering is the command's Idempotency-Key (scoped to the admin), as the goodwill,
coupon and return forms have it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from rapport.loyalty.models import Coupon
from rapport.loyalty.rewards import coupons as reward_coupons
from rapport.platform import clock
from rapport.platform.errors import Conflict
from tests.platform.admin_forms import page_form, post_form, typed


def _campaign_form(admin: TestClient, rule: str, count: str) -> list[tuple[str, str]]:
    page = admin.get("/admin/loyalty/coupons").text
    fields = page_form(page, action="/admin/loyalty/coupons")
    return typed(typed(typed(fields, "rule", rule), "value", "5.00"), "count", count)


def _issued(db: Session, rule: str) -> int:
    db.expire_all()
    return db.query(Coupon).filter(Coupon.rule == rule).count()


def test_the_coupons_form_sent_twice_issues_its_set_once(admin: TestClient, db: Session) -> None:
    # given the coupons form, filled in for a set of three
    fields = _campaign_form(admin, "spring-flyer", "3")

    # when it is sent twice (a double click, a reload after sending)
    first = post_form(admin, "/admin/loyalty/coupons", fields)
    second = post_form(admin, "/admin/loyalty/coupons", fields)

    # then three coupons were issued, not six
    assert first.status_code == 303
    assert second.status_code == 303
    assert _issued(db, "spring-flyer") == 3
    # and the second sending says so
    said = admin.get(second.headers["location"]).text
    assert "Issued 3 coupons for spring-flyer (the form was sent twice" in said

    # and a fresh page's form issues another set
    fields = _campaign_form(admin, "spring-flyer", "2")
    assert post_form(admin, "/admin/loyalty/coupons", fields).status_code == 303
    assert _issued(db, "spring-flyer") == 5


def test_the_coupons_form_without_its_one_time_token_issues_nothing(
    admin: TestClient, db: Session
) -> None:
    fields = [
        (name, value)
        for name, value in _campaign_form(admin, "summer-flyer", "2")
        if name != "token"
    ]

    answer = post_form(admin, "/admin/loyalty/coupons", fields)

    assert answer.status_code == 422
    found = re.search(r'data-field-error="rule">([^<]*)<', answer.text)
    assert found is not None
    assert found.group(1) == "This form has expired; open the coupons page again"
    assert _issued(db, "summer-flyer") == 0


def test_the_coupons_form_is_sent_once_by_the_browser(admin: TestClient) -> None:
    page = admin.get("/admin/loyalty/coupons").text

    assert re.search(r'<form [^>]*data-testid="coupon-campaign-form"[^>]*data-submit-once', page)
    assert '<script src="/static/submit-once.js"></script>' in page


def test_a_set_failing_midway_issues_none_of_it_and_the_form_sent_again_issues_it_all(
    admin: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a coupon under a code, and the form filled in for a set of four whose third
    # coupon can only draw that code (the set fails at its third coupon)
    taken = reward_coupons.create_campaign_coupon(
        db, rule="taken", kind="amount", value=100, expires_at=clock.now() + timedelta(days=9)
    ).code
    draws = iter(["AAAACCCCDD", "AAAACCCCDE", *[taken] * 5])
    monkeypatch.setattr(reward_coupons, "new_code", lambda: next(draws))
    fields = _campaign_form(admin, "autumn-flyer", "4")

    # when it is sent
    failed = post_form(admin, "/admin/loyalty/coupons", fields)

    # then none of the set was issued, not the two before the failure either
    assert failed.status_code == 500
    assert _issued(db, "autumn-flyer") == 0

    # and when the same form is sent again (its token the same Idempotency-Key) and draws well
    monkeypatch.undo()
    again = post_form(admin, "/admin/loyalty/coupons", fields)
    once_more = post_form(admin, "/admin/loyalty/coupons", fields)

    # then the whole set is issued, once, and the third sending answers the same set
    assert (again.status_code, once_more.status_code) == (303, 303)
    assert _issued(db, "autumn-flyer") == 4
    said = admin.get(once_more.headers["location"]).text
    assert "Issued 4 coupons for autumn-flyer (the form was sent twice" in said


def test_a_set_refused_at_a_coupon_rolls_back_what_the_caller_wrote_with_it(db: Session) -> None:
    # given a set whose hook (the step that stores the form's answer) fails once all are written
    def refuse(_session: Session, coupons: list[Coupon]) -> None:
        assert len(coupons) == 3
        raise Conflict("answer could not be stored")

    # when it is issued
    with pytest.raises(Conflict):
        reward_coupons.issue_campaign_coupons(
            db,
            count=3,
            rule="winter-flyer",
            kind="percent",
            value=10,
            expires_at=clock.now() + timedelta(days=9),
            before_commit=refuse,
        )

    # then nothing of it is issued
    assert _issued(db, "winter-flyer") == 0
